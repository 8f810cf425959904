package models

import (
	"context"
	"fmt"
	"time"
)

// SectionStatusCount is how many readers of one status follow a section.
type SectionStatusCount struct {
	SectionID int64
	Status    string
	N         int64
}

// SectionStatusCounts counts the followers of every section by the
// reader's status. It reads every subscription: callers cache it.
func (s *Store) SectionStatusCounts(ctx context.Context) ([]SectionStatusCount, error) {
	var out []SectionStatusCount
	err := s.r.WithContext(ctx).Raw(`SELECT sub.section_id AS section_id, r.status AS status, COUNT(*) AS n
		FROM subscriptions sub JOIN subscribers r ON r.id = sub.subscriber_id
		GROUP BY sub.section_id, r.status`).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("section status counts: %w", err)
	}
	return out, nil
}

// DayCount is how many consent events of a kind happened on a (UTC) day,
// written YYYY-MM-DD.
type DayCount struct {
	Day  string
	Kind string
	N    int64
}

// DailyConsentCounts counts signups, confirmations and unsubscribes per UTC
// day since a time, from the consent ledger.
func (s *Store) DailyConsentCounts(ctx context.Context, since time.Time) ([]DayCount, error) {
	day := "substr(at, 1, 10)" // SQLite keeps times as UTC text
	if s.postgres {
		day = "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
	}
	var out []DayCount
	err := s.r.WithContext(ctx).Raw(`SELECT `+day+` AS day, kind, COUNT(*) AS n FROM consent_events
		WHERE at >= ? AND kind IN (?, ?, ?) GROUP BY `+day+`, kind`,
		since.UTC(), ConsentSignup, ConsentConfirm, ConsentUnsubscribe).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("daily consent counts: %w", err)
	}
	return out, nil
}

// RetryingDeliveries counts (up to limit) deliveries waiting to be tried
// again after an error, and returns the latest error among them: a sign
// that the SMTP server is failing.
func (s *Store) RetryingDeliveries(ctx context.Context, limit int) (int64, string, error) {
	var n int64
	err := s.r.WithContext(ctx).Raw(`SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
		WHERE status = ? AND attempts > 0 LIMIT ?) t`, DeliveryPending, limit).Scan(&n).Error
	if err != nil || n == 0 {
		return n, "", err
	}
	var msg []string
	err = s.r.WithContext(ctx).Model(&Delivery{}).Where("status = ? AND attempts > 0 AND last_error <> ''", DeliveryPending).
		Order("next_attempt_at DESC").Limit(1).Pluck("last_error", &msg).Error
	if len(msg) == 0 {
		return n, "", err
	}
	return n, msg[0], err
}

// RecentDigests returns the newest digests, newest first.
func (s *Store) RecentDigests(ctx context.Context, limit int) ([]Digest, error) {
	var out []Digest
	err := s.r.WithContext(ctx).Order("id DESC").Limit(limit).Find(&out).Error
	return out, err
}

// PausedDigests returns the digests paused now, with their reasons.
func (s *Store) PausedDigests(ctx context.Context) ([]Digest, error) {
	return s.DigestsByStatus(ctx, DigestPaused)
}

// BrokenFeeds returns the feeds whose last poll failed.
func (s *Store) BrokenFeeds(ctx context.Context) ([]Feed, error) {
	var out []Feed
	err := s.r.WithContext(ctx).Where("last_status = ?", "error").Order("id").Find(&out).Error
	return out, err
}
