package models

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The admin subscriber list must stay fast with millions of rows, on SQLite
// too, without an index built for every filter combination. It pages by id
// (keyset, newest first) and picks how to find a page's rows from what the
// filters select:
//
//   - A filter that selects few rows (an address prefix, or a section with
//     few subscriptions; counted with a capped index probe) supplies the
//     candidate ids, and the other filters are checked on those rows only.
//   - Otherwise every filter matches many rows: the rows are read in id
//     order (through the status index when there is a status filter, which
//     in both databases yields a status's rows in id order) and the other
//     filters are checked as each row passes. Their combination can still
//     be rare (a big section among a common status), so that scan works in
//     id windows and stops after a time budget, and the page says where it
//     stopped so the editor can carry on from there.

// adminSmallSet is the most candidate ids the list takes from one filter.
const adminSmallSet = 5000

// adminScanBudget bounds the time one list request spends scanning windows.
const adminScanBudget = 60 * time.Millisecond

// Window sizes, in ids, of the bounded scan: small first (dense filters fill
// a page at once), doubling up to the largest.
const (
	adminFirstWindow = 8192
	adminMaxWindow   = 65536
)

// SubscriberFilter selects subscribers for the admin list.
type SubscriberFilter struct {
	// Prefix is a prefix of the normalised address ("" for any).
	Prefix string
	// Status is one subscriber status ("" for any).
	Status string
	// SectionID keeps only subscribers of this section (0 for any).
	SectionID int64
	// Before pages to older rows: ids below it. After pages to newer rows:
	// ids above it. At most one is set; neither means the newest page.
	Before, After int64
	// Limit is the page size.
	Limit int
	// SmallSet overrides adminSmallSet, the most candidate ids taken from
	// one selective filter (0: the default; tests lower it to exercise the
	// windowed scan on little data).
	SmallSet int
}

// SubscriberRow is one line of the admin list.
type SubscriberRow struct {
	Subscriber
	Subscriptions []SubscriptionView
}

// SubscriberPage is one page of the admin list, newest first.
type SubscriberPage struct {
	Rows []SubscriberRow
	// Older and Newer are the cursors of the neighbouring pages (the next
	// request's Before and After), 0 when there is none.
	Older, Newer int64
	// Stopped is set when the scan used its time budget before it filled
	// the page: rows beyond StoppedAt may still match, and Older or Newer
	// carries on from there.
	Stopped   bool
	StoppedAt int64
}

// AdminSubscribers returns one page of the admin list.
func (s *Store) AdminSubscribers(ctx context.Context, f SubscriberFilter) (*SubscriberPage, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.SmallSet <= 0 {
		f.SmallSet = adminSmallSet
	}
	asc := f.After > 0 && f.Before == 0
	var (
		ids     []int64
		stopped bool
		edge    int64
		err     error
	)
	cands, small, err := s.smallCandidateSet(ctx, f)
	if err != nil {
		return nil, err
	}
	if small {
		ids, err = s.filterCandidates(ctx, f, cands, asc)
	} else {
		ids, stopped, edge, err = s.scanWindows(ctx, f, asc)
	}
	if err != nil {
		return nil, fmt.Errorf("admin subscribers: %w", err)
	}

	page := &SubscriberPage{Stopped: stopped, StoppedAt: edge}
	more := len(ids) > f.Limit
	if more {
		ids = ids[:f.Limit]
	}
	// ids are in scan order; cursors depend on the direction.
	if asc {
		slices.Reverse(ids)
	}
	switch {
	case asc:
		if more {
			page.Newer = ids[0]
		} else if stopped {
			page.Newer = edge - 1
		}
		if len(ids) > 0 {
			page.Older = ids[len(ids)-1]
		} else {
			page.Older = f.After + 1
		}
	default:
		if more {
			page.Older = ids[len(ids)-1]
		} else if stopped {
			page.Older = edge
		}
		if f.Before > 0 {
			if len(ids) > 0 {
				page.Newer = ids[0]
			} else {
				page.Newer = f.Before - 1
			}
		}
	}
	if len(ids) == 0 {
		return page, nil
	}
	byID, err := s.SubscribersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	subs, err := s.SubscriptionsOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if sub := byID[id]; sub != nil {
			page.Rows = append(page.Rows, SubscriberRow{Subscriber: *sub, Subscriptions: subs[id]})
		}
	}
	return page, nil
}

// prefixRange returns the bounds of the normalised addresses that start
// with p, for a range scan of the unique index on email_norm. U+10FFFF
// sorts after every other character in SQLite's binary order and in
// Postgres's C collation.
func prefixRange(p string) (lo, hi string) { return p, p + "\U0010FFFF" }

// smallCandidateSet returns the ids selected by the most selective filter
// that selects at most f.SmallSet rows, or small=false when none does. Each
// filter is counted first, with LIMIT, on its index alone: a filter that
// selects too many rows costs a short index walk.
func (s *Store) smallCandidateSet(ctx context.Context, f SubscriberFilter) (ids []int64, small bool, err error) {
	probes := []struct {
		on          bool
		count, list string
		args        []any
	}{
		// Both covering scans of the unique index on email_norm.
		{f.Prefix != "", `SELECT COUNT(*) FROM (SELECT 1 FROM subscribers WHERE email_norm >= ? AND email_norm < ? LIMIT ?) AS probe`,
			`SELECT id FROM subscribers WHERE email_norm >= ? AND email_norm < ?`, prefixArgs(f.Prefix)},
		// The count is a covering scan of the section index; the list
		// reads the rows, only when there are few.
		{f.SectionID != 0, `SELECT COUNT(*) FROM (SELECT 1 FROM subscriptions WHERE section_id = ? LIMIT ?) AS probe`,
			`SELECT subscriber_id FROM subscriptions WHERE section_id = ?`, []any{f.SectionID}},
	}
	db := s.r.WithContext(ctx)
	for _, p := range probes {
		if !p.on {
			continue
		}
		var n int
		if err := db.Raw(p.count, append(slices.Clone(p.args), f.SmallSet+1)...).Scan(&n).Error; err != nil {
			return nil, false, fmt.Errorf("admin subscribers: probe: %w", err)
		}
		if n > f.SmallSet {
			continue
		}
		ids, err := s.scanIDs(ctx, p.list, p.args...)
		return ids, err == nil, err
	}
	return nil, false, nil
}

func prefixArgs(p string) []any {
	lo, hi := prefixRange(p)
	return []any{lo, hi}
}

// scanIDs runs a query of one integer column. It scans with database/sql
// directly: GORM's reflection per row was most of the cost of a few
// thousand ids.
func (s *Store) scanIDs(ctx context.Context, q string, args ...any) ([]int64, error) {
	rows, err := s.r.WithContext(ctx).Raw(q, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// conditions returns the WHERE terms and arguments of every filter, written
// so that no index serves the prefix and section terms: they are checked
// row by row on rows another index already found.
func conditions(f SubscriberFilter) ([]string, []any) {
	var where []string
	var args []any
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, f.Status)
	}
	if f.Prefix != "" {
		where = append(where, "substr(email_norm, 1, ?) = ?")
		args = append(args, utf8.RuneCountInString(f.Prefix), f.Prefix)
	}
	if f.SectionID != 0 {
		// Served by the unique (subscriber_id, section_id) index: one probe.
		where = append(where, "EXISTS (SELECT 1 FROM subscriptions x WHERE x.subscriber_id = subscribers.id AND x.section_id = ?)")
		args = append(args, f.SectionID)
	}
	return where, args
}

// filterCandidates checks the filters on candidate ids, in chunks taken in
// list order, until it has Limit+1 matches.
func (s *Store) filterCandidates(ctx context.Context, f SubscriberFilter, cands []int64, asc bool) ([]int64, error) {
	kept := cands[:0]
	for _, id := range cands {
		if (f.Before == 0 || id < f.Before) && id > f.After {
			kept = append(kept, id)
		}
	}
	slices.Sort(kept)
	kept = slices.Compact(kept)
	if !asc {
		slices.Reverse(kept)
	}
	where, args := conditions(f)
	where = append(where, "id IN ?")
	order := "id DESC"
	if asc {
		order = "id"
	}
	var out []int64
	// The first chunk is one page: when the other filters pass most
	// candidates (or there are none), one small query fills the page.
	size := f.Limit + 1
	for start := 0; start < len(kept) && len(out) <= f.Limit; start += size {
		if start > 0 {
			size = 500
		}
		chunk := kept[start:min(start+size, len(kept))]
		q := "SELECT id FROM subscribers WHERE " + strings.Join(where, " AND ") + " ORDER BY " + order + " LIMIT ?"
		got, err := s.scanIDs(ctx, q, append(slices.Clone(args), chunk, f.Limit+1-len(out))...)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// scanWindows reads rows in id order, window by window, until it has
// Limit+1 matches, reaches the end, or spends adminScanBudget. It returns
// the matching ids, whether it stopped early, and where: the lowest id
// scanned (descending) or one past the highest (ascending).
func (s *Store) scanWindows(ctx context.Context, f SubscriberFilter, asc bool) ([]int64, bool, int64, error) {
	db := s.r.WithContext(ctx)
	where, args := conditions(f)
	// With no filter other than the status one, the driving index alone
	// yields the page in order: one bounded query, no windows needed.
	plain := f.Prefix == "" && f.SectionID == 0

	var maxID int64
	if err := db.Raw(`SELECT COALESCE(MAX(id), 0) FROM subscribers`).Scan(&maxID).Error; err != nil {
		return nil, false, 0, err
	}
	// The scan covers ids in [lo, hi).
	lo, hi := int64(1), maxID+1
	if f.Before > 0 {
		hi = min(hi, f.Before)
	}
	if asc {
		lo = f.After + 1
	}
	start := time.Now()
	window := int64(adminFirstWindow)
	var out []int64
	for lo < hi && len(out) <= f.Limit {
		wlo, whi := lo, hi
		if !plain {
			if asc {
				whi = min(hi, lo+window)
			} else {
				wlo = max(lo, hi-window)
			}
		}
		order := "id DESC"
		if asc {
			order = "id"
		}
		terms := append(slices.Clone(where), "id >= ?", "id < ?")
		q := "SELECT id FROM subscribers WHERE " + strings.Join(terms, " AND ") + " ORDER BY " + order + " LIMIT ?"
		got, err := s.scanIDs(ctx, q, append(slices.Clone(args), wlo, whi, f.Limit+1-len(out))...)
		if err != nil {
			return nil, false, 0, err
		}
		out = append(out, got...)
		if asc {
			lo = whi
		} else {
			hi = wlo
		}
		window = min(window*2, adminMaxWindow)
		if len(out) <= f.Limit && lo < hi && time.Since(start) > adminScanBudget {
			if asc {
				return out, true, lo, nil
			}
			return out, true, hi, nil
		}
	}
	return out, false, 0, nil
}

// AdminSectionBySlug returns the section with this slug.
func (s *Store) AdminSectionBySlug(ctx context.Context, slug string) (*Section, error) {
	var sec Section
	if err := s.r.WithContext(ctx).Where("slug = ?", slug).First(&sec).Error; err != nil {
		return nil, notFound(err)
	}
	return &sec, nil
}

// KnownAddresses returns which of these normalised addresses belong to a
// subscriber already (a read, for the import preview; the import itself
// locks them).
func (s *Store) KnownAddresses(ctx context.Context, norms []string) (map[string]bool, error) {
	out := make(map[string]bool, len(norms))
	for start := 0; start < len(norms); start += 500 {
		var got []string
		if err := s.r.WithContext(ctx).Model(&Subscriber{}).Where("email_norm IN ?", norms[start:min(start+500, len(norms))]).
			Pluck("email_norm", &got).Error; err != nil {
			return nil, fmt.Errorf("known addresses: %w", err)
		}
		for _, n := range got {
			out[n] = true
		}
	}
	return out, nil
}
