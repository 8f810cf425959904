package models

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// CreateDeliveries inserts outbox rows in one statement per 500 rows.
func (s *Store) CreateDeliveries(ctx context.Context, ds []*Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	if tx := s.sqlTx(); tx != nil {
		return s.insertDeliveriesSQLite(ctx, tx, ds)
	}
	if err := s.w.WithContext(ctx).CreateInBatches(ds, 500).Error; err != nil {
		return fmt.Errorf("create deliveries: %w", err)
	}
	return nil
}

// ClaimDeliveries leases up to limit due pending deliveries to the caller
// (a digest's only while the digest is sending: paused and cancelled ones
// wait)
// until now+lease, marking them sending and counting the attempt. On
// Postgres the rows are picked with FOR UPDATE SKIP LOCKED, so several
// processes can claim from one queue without taking the same row.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	lock := ""
	if s.postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	// The rows are scanned by hand: GORM's reflection was a noticeable
	// part of each message's cost at thousands of messages a second.
	rows, err := s.w.WithContext(ctx).Raw(`UPDATE deliveries SET status = ?, lease_until = ?, attempts = attempts + 1
		WHERE id IN (SELECT id FROM deliveries WHERE status = ? AND next_attempt_at <= ?
			AND (digest_id IS NULL OR digest_id IN (SELECT id FROM digests WHERE status = ?))
			ORDER BY next_attempt_at, id LIMIT ?`+lock+`)
		RETURNING id, kind, subscriber_id, digest_id, to_address, status, next_attempt_at, attempts,
			lease_until, last_error, message_id, data, created_at, sent_at`,
		DeliverySending, now.Add(lease).UTC(), DeliveryPending, now.UTC(), DigestSending, limit).Rows()
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	defer rows.Close()
	out := make([]Delivery, 0, limit)
	for rows.Next() {
		var d Delivery
		var sub, digest sql.NullInt64
		var lease, sent sql.NullTime
		var to, lastErr, msgID, data sql.NullString
		if err := rows.Scan(&d.ID, &d.Kind, &sub, &digest, &to, &d.Status, &d.NextAttemptAt, &d.Attempts,
			&lease, &lastErr, &msgID, &data, &d.CreatedAt, &sent); err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		if sub.Valid {
			d.SubscriberID = &sub.Int64
		}
		if digest.Valid {
			d.DigestID = &digest.Int64
		}
		if lease.Valid {
			d.LeaseUntil = &lease.Time
		}
		if sent.Valid {
			d.SentAt = &sent.Time
		}
		d.ToAddress, d.LastError, d.MessageID, d.Data = to.String, lastErr.String, msgID.String, data.String
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return out, nil
}

// ReclaimExpiredLeases returns deliveries whose lease ran out (their worker
// died) to pending, and reports how many.
func (s *Store) ReclaimExpiredLeases(ctx context.Context, now time.Time) (int64, error) {
	res := s.w.WithContext(ctx).Model(&Delivery{}).
		Where("status = ? AND lease_until < ?", DeliverySending, now.UTC()).
		Updates(map[string]any{"status": DeliveryPending, "lease_until": nil})
	if res.Error != nil {
		return 0, fmt.Errorf("reclaim leases: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// DeliveryResult is what happened to one claimed delivery.
type DeliveryResult struct {
	ID     int64
	Status string // sent, failed, skipped, or pending for a retry
	Error  string
	// NextAttemptAt is when a retry is due (Status pending).
	NextAttemptAt time.Time
	// GiveBackAttempt undoes the attempt count for a delivery returned
	// unsent (shutdown), so it is not held against the row.
	GiveBackAttempt bool
}

// RecordDeliveryResults writes the results of a batch in one transaction:
// one statement for all sent rows, one per other row.
func (s *Store) RecordDeliveryResults(ctx context.Context, at time.Time, results []DeliveryResult) error {
	if len(results) == 0 {
		return nil
	}
	at = at.UTC()
	return s.Tx(ctx, func(tx *Store) error {
		db := tx.w
		var sent []int64
		for _, r := range results {
			if r.Status == DeliverySent {
				sent = append(sent, r.ID)
				continue
			}
			updates := map[string]any{"status": r.Status, "lease_until": nil, "last_error": truncate(r.Error, 1000)}
			if r.Status == DeliveryPending {
				updates["next_attempt_at"] = r.NextAttemptAt.UTC()
			}
			q := db.Model(&Delivery{}).Where("id = ? AND status = ?", r.ID, DeliverySending)
			if r.GiveBackAttempt {
				if err := db.Exec(`UPDATE deliveries SET status = ?, lease_until = NULL, attempts = attempts - 1 WHERE id = ? AND status = ?`,
					DeliveryPending, r.ID, DeliverySending).Error; err != nil {
					return fmt.Errorf("record delivery: %w", err)
				}
				continue
			}
			if err := q.Updates(updates).Error; err != nil {
				return fmt.Errorf("record delivery: %w", err)
			}
		}
		for start := 0; start < len(sent); start += 500 {
			chunk := sent[start:min(start+500, len(sent))]
			if err := db.Model(&Delivery{}).Where("id IN ? AND status = ?", chunk, DeliverySending).
				Updates(map[string]any{"status": DeliverySent, "sent_at": at, "lease_until": nil, "last_error": ""}).Error; err != nil {
				return fmt.Errorf("record sent deliveries: %w", err)
			}
		}
		return nil
	})
}

// DeliveryByID returns one delivery.
func (s *Store) DeliveryByID(ctx context.Context, id int64) (*Delivery, error) {
	var d Delivery
	if err := s.r.WithContext(ctx).First(&d, id).Error; err != nil {
		return nil, notFound(err)
	}
	return &d, nil
}

// DeliveriesFor returns a subscriber's deliveries, newest first.
func (s *Store) DeliveriesFor(ctx context.Context, subscriberID int64, limit int) ([]Delivery, error) {
	var out []Delivery
	err := s.r.WithContext(ctx).Where("subscriber_id = ?", subscriberID).Order("id DESC").Limit(limit).Find(&out).Error
	return out, err
}

// DeliveryCounts returns how many deliveries have each status.
func (s *Store) DeliveryCounts(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		Status string
		N      int64
	}
	err := s.r.WithContext(ctx).Model(&Delivery{}).Select("status, COUNT(*) AS n").Group("status").Scan(&rows).Error
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, err
}

// SubscribersByID returns subscribers keyed by id.
func (s *Store) SubscribersByID(ctx context.Context, ids []int64) (map[int64]*Subscriber, error) {
	out := make(map[int64]*Subscriber, len(ids))
	for start := 0; start < len(ids); start += 500 {
		var rows []*Subscriber
		if err := s.r.WithContext(ctx).Where("id IN ?", ids[start:min(start+500, len(ids))]).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("subscribers by id: %w", err)
		}
		for _, r := range rows {
			out[r.ID] = r
		}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
