package models

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// DigestFilter selects a page of digests for the admin list.
type DigestFilter struct {
	// Status keeps only digests in this status (empty: every status).
	Status string
	// BeforeID pages towards older digests, AfterID towards newer ones;
	// with neither the page starts at the newest.
	BeforeID int64
	AfterID  int64
	Limit    int
}

// ListDigests returns a page of digests, newest first. Pages are keyed by
// id rather than by offset so that a late page costs what the first does.
func (s *Store) ListDigests(ctx context.Context, f DigestFilter) ([]Digest, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	q := s.r.WithContext(ctx).Model(&Digest{})
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	order := "id DESC"
	switch {
	case f.AfterID > 0:
		// Newer neighbours are read upwards from the key, then turned round.
		q, order = q.Where("id > ?", f.AfterID), "id ASC"
	case f.BeforeID > 0:
		q = q.Where("id < ?", f.BeforeID)
	}
	var out []Digest
	if err := q.Order(order).Limit(f.Limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list digests: %w", err)
	}
	if f.AfterID > 0 {
		slices.Reverse(out)
	}
	return out, nil
}

// CountDigests counts the deliveries of each of these digests by status:
// an ended digest's from its kept final counts, the others' in one grouped
// query that the (digest_id, status) index answers without reading the
// rows. Digests without deliveries are absent.
func (s *Store) CountDigests(ctx context.Context, ids []int64) (map[int64]DigestCounts, error) {
	out := make(map[int64]DigestCounts, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// Ended digests keep their final counts: only the others are counted.
	var final []Digest
	if err := s.r.WithContext(ctx).Select("id", "final_sent", "final_failed", "final_skipped").
		Where("id IN ? AND counts_final = ?", ids, true).Find(&final).Error; err != nil {
		return nil, fmt.Errorf("count digests: %w", err)
	}
	if len(final) > 0 {
		done := make(map[int64]bool, len(final))
		for _, d := range final {
			out[d.ID] = DigestCounts{Sent: d.FinalSent, Failed: d.FinalFailed, Skipped: d.FinalSkipped}
			done[d.ID] = true
		}
		rest := ids[:0:0]
		for _, id := range ids {
			if !done[id] {
				rest = append(rest, id)
			}
		}
		if ids = rest; len(ids) == 0 {
			return out, nil
		}
	}
	var rows []struct {
		DigestID int64
		Status   string
		N        int64
	}
	err := s.r.WithContext(ctx).Model(&Delivery{}).Select("digest_id, status, COUNT(*) AS n").
		Where("digest_id IN ?", ids).Group("digest_id, status").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count digests: %w", err)
	}
	for _, r := range rows {
		c := out[r.DigestID]
		switch r.Status {
		case DeliverySent:
			c.Sent = r.N
		case DeliveryFailed:
			c.Failed = r.N
		case DeliverySkipped:
			c.Skipped = r.N
		default:
			c.Pending += r.N
		}
		out[r.DigestID] = c
	}
	return out, nil
}

// FailedDelivery is a digest delivery that failed for good, with the
// address it was for.
type FailedDelivery struct {
	ID        int64
	Email     string
	LastError string
	Attempts  int
	CreatedAt time.Time
}

// DigestFailures returns up to limit failed deliveries of a digest with an
// id above afterID, in id order (keyset pages).
func (s *Store) DigestFailures(ctx context.Context, digestID, afterID int64, limit int) ([]FailedDelivery, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	var out []FailedDelivery
	err := s.r.WithContext(ctx).Raw(`SELECT d.id, COALESCE(NULLIF(d.to_address, ''), s.email, '') AS email,
			d.last_error, d.attempts, d.created_at
		FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id
		WHERE d.digest_id = ? AND d.status = ? AND d.id > ?
		ORDER BY d.id LIMIT ?`, digestID, DeliveryFailed, afterID, limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("digest failures: %w", err)
	}
	return out, nil
}
