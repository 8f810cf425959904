package subscribers

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"herald/models"
)

// CSVHeader is the column order of exports and the columns imports read.
var CSVHeader = []string{"email", "status", "subscriptions", "created_at", "confirmed_at", "source"}

const transferChunk = 1000

// Export writes every subscriber (but erased ones) as CSV, streaming in
// pages so memory stays flat however many there are. It returns the count.
func (s *Service) ExportCSV(ctx context.Context, w io.Writer) (int, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return 0, err
	}
	var after int64
	n := 0
	for {
		page, err := s.store.SubscribersAfter(ctx, after, transferChunk)
		if err != nil {
			return n, err
		}
		if len(page) == 0 {
			break
		}
		ids := make([]int64, len(page))
		for i, sub := range page {
			ids[i] = sub.ID
		}
		subs, err := s.store.SubscriptionsOf(ctx, ids)
		if err != nil {
			return n, err
		}
		for _, sub := range page {
			pairs := make([]string, 0, len(subs[sub.ID]))
			for _, v := range subs[sub.ID] {
				pairs = append(pairs, v.Slug+":"+v.Frequency)
			}
			if err := cw.Write([]string{
				csvSafe(sub.Email), sub.Status, strings.Join(pairs, " "), formatTime(&sub.CreatedAt),
				formatTime(sub.ConfirmedAt), csvSafe(sub.Source),
			}); err != nil {
				return n, err
			}
			n++
		}
		after = page[len(page)-1].ID
		cw.Flush()
		if err := cw.Error(); err != nil {
			return n, err
		}
	}
	cw.Flush()
	return n, cw.Error()
}

// csvSafe defuses values a spreadsheet would run as a formula.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ImportOptions tune ImportCSV.
type ImportOptions struct {
	// SendConfirmations queues an opt-in email to each imported pending row.
	SendConfirmations bool
	// Report receives one line per row that was not imported.
	Report func(line int, msg string)
}

// ImportResult counts what an import did.
type ImportResult struct {
	Imported int
	Skipped  int
	Failed   int
	Queued   int
}

type importRow struct {
	line      int
	typed     string
	norm      string
	status    string
	subs      []models.Subscription
	pairs     string
	names     []string
	freq      string
	created   time.Time
	confirmed *time.Time
	source    string
}

// ImportCSV reads subscribers from CSV (the export's columns, header row
// first; only email is required), streaming and set-based: rows are
// validated one by one and written a thousand per transaction. A bad row is
// reported with its line number and the rest still import. An address that
// is already known or suppressed is skipped, never overwritten.
func (s *Service) ImportCSV(ctx context.Context, r io.Reader, opt ImportOptions) (ImportResult, error) {
	var res ImportResult
	report := opt.Report
	if report == nil {
		report = func(int, string) {}
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return res, fmt.Errorf("import: reading the header row: %w", err)
	}
	get, ok := importColumns(header)
	if !ok {
		return res, errors.New("import: the header row has no \"email\" column")
	}
	bySlug, err := s.sectionsBySlug(ctx)
	if err != nil {
		return res, err
	}
	err = readImportRows(ctx, cr, get, bySlug, s.now(),
		func(line int, msg string) {
			report(line, msg)
			res.Failed++
		},
		func(chunk []*importRow) error {
			n, skipped, queued, err := s.importChunk(ctx, chunk, opt.SendConfirmations, report)
			res.Imported += n
			res.Skipped += skipped
			res.Queued += queued
			return err
		})
	if err != nil {
		return res, err
	}
	if res.Queued > 0 {
		s.cfg.OnEnqueue()
	}
	return res, nil
}

func parseImportRow(rec []string, get func([]string, string) string, bySlug map[string]models.Section, now time.Time) (*importRow, string) {
	typed, norm, err := ParseAddress(get(rec, "email"))
	if err != nil {
		return nil, "email: " + err.Error()
	}
	row := &importRow{typed: typed, norm: norm, source: clip(get(rec, "source"), maxSourceLen), created: now}
	row.status = strings.ToLower(get(rec, "status"))
	switch row.status {
	case "":
		row.status = models.StatusPending
	case models.StatusPending, models.StatusActive, models.StatusUnsubscribed:
	default:
		return nil, fmt.Sprintf("status %q must be pending, active or unsubscribed", clip(row.status, 20))
	}
	if v := get(rec, "created_at"); v != "" {
		t, err := parseCSVTime(v)
		if err != nil {
			return nil, "created_at: " + err.Error()
		}
		row.created = t
	}
	if v := get(rec, "confirmed_at"); v != "" {
		t, err := parseCSVTime(v)
		if err != nil {
			return nil, "confirmed_at: " + err.Error()
		}
		row.confirmed = &t
	}
	if row.status == models.StatusActive && row.confirmed == nil {
		return nil, "status active needs confirmed_at (the proof of consent); import it as pending instead"
	}
	var pairs []string
	for _, p := range strings.Fields(get(rec, "subscriptions")) {
		slug, freq, ok := strings.Cut(p, ":")
		if !ok {
			freq = models.FrequencyDaily
		}
		sec, known := bySlug[slug]
		if !known {
			return nil, fmt.Sprintf("subscriptions: unknown section %q", clip(slug, 40))
		}
		switch freq {
		case models.FrequencyInstant, models.FrequencyDaily, models.FrequencyWeekly:
		default:
			return nil, fmt.Sprintf("subscriptions: frequency %q must be instant, daily or weekly", clip(freq, 20))
		}
		row.subs = append(row.subs, models.Subscription{SectionID: sec.ID, Frequency: freq, CreatedAt: now})
		row.names = append(row.names, sec.Name)
		row.freq = freq
		pairs = append(pairs, slug+":"+freq)
	}
	row.pairs = strings.Join(pairs, " ")
	return row, ""
}

func parseCSVTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC().Truncate(time.Microsecond), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time like 2026-11-25T10:00:00Z", clip(v, 40))
}

// importChunk writes one chunk in one transaction: one statement each for
// the subscribers, their subscriptions, consent events and deliveries.
func (s *Service) importChunk(ctx context.Context, rows []*importRow, confirm bool, report func(int, string)) (imported, skipped, queued int, err error) {
	err = s.store.Tx(ctx, func(tx *models.Store) error {
		imported, skipped, queued = 0, 0, 0
		norms := make([]string, len(rows))
		for i, r := range rows {
			norms[i] = r.norm
		}
		existing, err := tx.LockSubscribers(ctx, norms)
		if err != nil {
			return err
		}
		suppressed, err := tx.Suppressions(ctx, norms)
		if err != nil {
			return err
		}
		now := s.now()
		var fresh []*models.Subscriber
		var keep []*importRow
		for _, r := range rows {
			if existing[r.norm] != nil {
				report(r.line, "already a subscriber; left as it is")
				skipped++
				continue
			}
			if reason, ok := suppressed[r.norm]; ok {
				report(r.line, "suppressed ("+reason+"); not imported")
				skipped++
				continue
			}
			sub := &models.Subscriber{
				Email: r.typed, EmailNorm: r.norm, Status: r.status, Source: r.source,
				CreatedAt: r.created, UpdatedAt: now, ConfirmedAt: r.confirmed,
			}
			if r.status == models.StatusUnsubscribed {
				sub.UnsubscribedAt = &now
			}
			if confirm && r.status == models.StatusPending {
				sub.LastConfirmSentAt, sub.ConfirmDayStart, sub.ConfirmDayCount = &now, &now, 1
			}
			fresh = append(fresh, sub)
			keep = append(keep, r)
		}
		if err := tx.CreateSubscribers(ctx, fresh); err != nil {
			return err
		}
		subs := map[int64][]models.Subscription{}
		events := make([]*models.ConsentEvent, 0, len(fresh))
		var deliveries []*models.Delivery
		for i, sub := range fresh {
			r := keep[i]
			if len(r.subs) > 0 {
				subs[sub.ID] = r.subs
			}
			ev := &models.ConsentEvent{
				SubscriberID: sub.ID, Kind: models.ConsentImport, At: now, SourceURL: r.source,
				Form: "import", Sections: r.pairs,
			}
			if confirm && r.status == models.StatusPending {
				data, _ := json.Marshal(confirmationData{Sections: r.names, Frequency: r.freq, Expires: now.Add(s.cfg.ConfirmTTL).Unix()})
				d := s.delivery(models.KindConfirmation, sub.ID, now, string(data))
				ev.MessageID = d.MessageID
				deliveries = append(deliveries, d)
			}
			events = append(events, ev)
		}
		if err := tx.CreateSubscriptions(ctx, subs); err != nil {
			return err
		}
		if err := tx.AppendFirstConsentEvents(ctx, events); err != nil {
			return err
		}
		if err := tx.CreateDeliveries(ctx, deliveries); err != nil {
			return err
		}
		imported, queued = len(fresh), len(deliveries)
		return nil
	})
	return imported, skipped, queued, err
}

// importColumns reads an import file's header row (names in any case and
// order, a byte-order mark ignored) and returns how to get a named field of
// a row; ok is false without an "email" column.
func importColumns(header []string) (get func(rec []string, name string) string, ok bool) {
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	_, ok = col["email"]
	return func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}, ok
}

// sectionsBySlug returns every section by slug.
func (s *Service) sectionsBySlug(ctx context.Context) (map[string]models.Section, error) {
	secs, err := s.store.Sections(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]models.Section, len(secs))
	for _, sec := range secs {
		out[sec.Slug] = sec
	}
	return out, nil
}

// readImportRows reads an import file's rows after its header row. Good
// rows go to onChunk in chunks of transferChunk; a row that cannot be
// imported (not CSV, a bad field, a repeat of an address within its chunk)
// goes to onBad with its line number. Only one chunk is held, so memory
// stays flat however long the file is; a repeat in a later chunk is the
// chunk handler's to find (in the database, for the import).
func readImportRows(ctx context.Context, cr *csv.Reader, get func([]string, string) string, bySlug map[string]models.Section,
	now time.Time, onBad func(line int, msg string), onChunk func([]*importRow) error) error {
	seen := map[string]int{}
	var chunk []*importRow
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := onChunk(chunk)
		chunk = chunk[:0]
		clear(seen)
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return err
			}
			onBad(pe.Line, "not valid CSV: "+pe.Err.Error())
			continue
		}
		row, msg := parseImportRow(rec, get, bySlug, now)
		if msg == "" {
			if first, dup := seen[row.norm]; dup {
				msg = fmt.Sprintf("duplicate of line %d", first)
			}
		}
		if msg != "" {
			onBad(line, msg)
			continue
		}
		row.line = line
		seen[row.norm] = line
		chunk = append(chunk, row)
		if len(chunk) >= transferChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
