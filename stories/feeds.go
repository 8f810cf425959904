package stories

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
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
	fe := FieldErrors{}
	feedURL := strings.TrimSpace(in.URL)
	switch {
	case feedURL == "":
		fe["url"] = "is required"
	case len(feedURL) > maxURLLen:
		fe["url"] = "must be at most 2048 characters"
	case resolveHTTP(nil, feedURL) == "":
		fe["url"] = errNotHTTPURL.Error()
	}

	interval := DefaultPollInterval
	if p := strings.TrimSpace(in.PollInterval); p != "" {
		d, err := time.ParseDuration(p)
		switch {
		case err != nil:
			fe["poll_interval"] = "must be a duration such as 5m or 1h"
		case d < MinPollInterval || d > MaxPollInterval:
			fe["poll_interval"] = "must be between 1m and 24h"
		default:
			interval = d.Truncate(time.Second)
		}
	}

	var section models.Section
	slug := strings.TrimSpace(in.Section)
	cats := map[string]string{}
	for cat, target := range in.Categories {
		cat, target = strings.ToLower(PlainText(cat)), strings.TrimSpace(target)
		if cat == "" || target == "" {
			fe["categories"] = "must map category names to section slugs"
			continue
		}
		cats[cat] = target
	}
	if len(cats) > maxCategories {
		fe["categories"] = fmt.Sprintf("at most %d categories", maxCategories)
	}
	slugs := []string{slug}
	for _, target := range cats {
		slugs = append(slugs, target)
	}
	found, err := s.store.SectionsBySlug(ctx, slugs)
	if err != nil {
		return nil, fmt.Errorf("look up sections: %w", err)
	}
	switch sec, ok := found[slug]; {
	case slug == "":
		fe["section"] = "is required"
	case !ok:
		fe["section"] = "unknown section: " + clipRunes(slug, 40)
	default:
		section = sec
	}
	var unknown []string
	for _, target := range cats {
		if _, ok := found[target]; !ok {
			unknown = append(unknown, clipRunes(target, 40))
		}
	}
	if len(unknown) > 0 && fe["categories"] == "" {
		sort.Strings(unknown)
		fe["categories"] = "unknown section: " + strings.Join(limit(unknown, 3), ", ")
	}
	if len(fe) > 0 {
		return nil, fe
	}

	var catJSON string
	if len(cats) > 0 {
		b, err := json.Marshal(cats)
		if err != nil {
			return nil, err
		}
		catJSON = string(b)
	}
	now := s.now()
	f := &models.Feed{
		URL: feedURL, SectionID: section.ID, CategoryMap: catJSON,
		PollInterval: int(interval / time.Second), NextPollAt: now, CreatedAt: now,
	}
	if err := s.store.CreateFeed(ctx, f); err != nil {
		if models.IsUniqueViolation(err) {
			return nil, ErrFeedExists
		}
		return nil, err
	}
	s.cfg.Logger.InfoContext(ctx, "feed added", slog.Int64("feed_id", f.ID), slog.String("feed_url", f.URL),
		slog.String("section", section.Slug))
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
