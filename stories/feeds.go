package stories

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"herald/models"
)

// Poll interval bounds and default.
const (
	MinPollInterval     = time.Minute
	MaxPollInterval     = 24 * time.Hour
	DefaultPollInterval = 5 * time.Minute
	maxCategories       = 200
)

// ErrFeedExists is returned by AddFeed for a URL Herald already polls.
var ErrFeedExists = errors.New("stories: a feed with this URL exists")

// FeedInput is a feed to add.
type FeedInput struct {
	URL string
	// Section is the slug of the section stories go to when none of their
	// categories is mapped.
	Section string
	// Categories maps a feed category (matched without regard to case) to
	// a section slug.
	Categories map[string]string
	// PollInterval is a Go duration such as "5m" (default 5m, from 1m to 24h).
	PollInterval string
}

// AddFeed validates in and stores the feed, due for its first poll now.
// Invalid input returns FieldErrors; a URL already present ErrFeedExists.
func (s *Service) AddFeed(ctx context.Context, in FeedInput) (*models.Feed, error) {
	v, err := s.checkFeed(ctx, in)
	if err != nil {
		return nil, err
	}
	now := s.now()
	f := &models.Feed{
		URL: v.url, SectionID: v.section.ID, CategoryMap: v.catJSON,
		PollInterval: int(v.interval / time.Second), NextPollAt: now, CreatedAt: now,
	}
	if err := s.store.CreateFeed(ctx, f); err != nil {
		if models.IsUniqueViolation(err) {
			return nil, ErrFeedExists
		}
		return nil, err
	}
	s.cfg.Logger.InfoContext(ctx, "feed added", slog.Int64("feed_id", f.ID), slog.String("feed_url", f.URL),
		slog.String("section", v.section.Slug))
	return f, nil
}

// CategoryMap decodes a feed's category map (lower-case category → slug).
func CategoryMap(f *models.Feed) map[string]string {
	out := map[string]string{}
	if f.CategoryMap != "" {
		_ = json.Unmarshal([]byte(f.CategoryMap), &out)
	}
	return out
}

// Interval returns a feed's poll interval.
func Interval(f *models.Feed) time.Duration {
	if f.PollInterval <= 0 {
		return DefaultPollInterval
	}
	return time.Duration(f.PollInterval) * time.Second
}

func limit(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}
