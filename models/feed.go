package models

import (
	"context"
	"fmt"
	"time"
)

// Feed poll statuses.
const (
	FeedOK          = "ok"
	FeedNotModified = "not-modified"
	FeedError       = "error"
)

// CreateFeed adds a feed; a URL already polled is reported by
// IsUniqueViolation.
func (s *Store) CreateFeed(ctx context.Context, f *Feed) error {
	if err := s.w.WithContext(ctx).Create(f).Error; err != nil {
		return fmt.Errorf("create feed: %w", err)
	}
	return nil
}

// FeedByID returns one feed.
func (s *Store) FeedByID(ctx context.Context, id int64) (*Feed, error) {
	var f Feed
	if err := s.r.WithContext(ctx).First(&f, id).Error; err != nil {
		return nil, notFound(err)
	}
	return &f, nil
}

// Feeds lists every feed, oldest first.
func (s *Store) Feeds(ctx context.Context) ([]Feed, error) {
	var out []Feed
	if err := s.r.WithContext(ctx).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list feeds: %w", err)
	}
	return out, nil
}

// DueFeeds returns up to limit feeds whose next poll is due at now, the
// most overdue first. Claim one with ClaimFeed before polling it.
func (s *Store) DueFeeds(ctx context.Context, now time.Time, limit int) ([]Feed, error) {
	var out []Feed
	err := s.r.WithContext(ctx).Where("next_poll_at <= ?", now.UTC()).
		Order("next_poll_at, id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("due feeds: %w", err)
	}
	return out, nil
}

// ClaimFeed takes a due feed for one poller: it moves the feed's next poll
// to until, but only if the poll was still due at now. It reports whether
// this caller won the feed; another instance that claimed it first makes
// the update match no row.
func (s *Store) ClaimFeed(ctx context.Context, id int64, now, until time.Time) (bool, error) {
	res := s.w.WithContext(ctx).Model(&Feed{}).
		Where("id = ? AND next_poll_at <= ?", id, now.UTC()).
		Update("next_poll_at", until.UTC())
	if res.Error != nil {
		return false, fmt.Errorf("claim feed: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// FeedPoll is the outcome of one poll of a feed.
type FeedPoll struct {
	Status     string // FeedOK, FeedNotModified or FeedError
	Error      string
	New        int
	PolledAt   time.Time
	NextPollAt time.Time
	Failures   int
	// ETag and LastModified replace the stored validators when not empty.
	ETag         string
	LastModified string
}

// RecordFeedPoll stores the outcome of a poll on the feed's row.
func (s *Store) RecordFeedPoll(ctx context.Context, id int64, p FeedPoll) error {
	polled := p.PolledAt.UTC()
	updates := map[string]any{
		"last_status":    p.Status,
		"last_error":     clipString(p.Error, 1024),
		"last_new":       p.New,
		"last_polled_at": &polled,
		"next_poll_at":   p.NextPollAt.UTC(),
		"failures":       p.Failures,
	}
	if p.ETag != "" {
		updates["e_tag"] = clipString(p.ETag, 512)
	}
	if p.LastModified != "" {
		updates["last_modified"] = clipString(p.LastModified, 128)
	}
	res := s.w.WithContext(ctx).Model(&Feed{}).Where("id = ?", id).Updates(updates)
	if res.Error != nil {
		return fmt.Errorf("record feed poll: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// clipString cuts s to at most n bytes without splitting a UTF-8 sequence.
func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
