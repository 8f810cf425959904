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

// Update rewrites the story id from an editor's form: validated and
// sanitised as Ingest does, origin and feed kept. Invalid input, or a URL
// another story has, returns FieldErrors; an unknown id models.ErrNotFound.
func (s *Service) Update(ctx context.Context, id int64, in Input) (*models.Story, error) {
	in.Origin, in.FeedID = models.OriginEditor, nil
	st, sectionIDs, err := s.validate(ctx, in)
	if err != nil {
		return nil, err
	}
	err = s.store.UpdateStoryByID(ctx, id, st, sectionIDs)
	if errors.Is(err, models.ErrStoryURLTaken) {
		return nil, FieldErrors{"url": "another story has this address"}
	}
	if err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(ctx, "story edited", slog.Int64("story_id", st.ID))
	return st, nil
}

// SetHidden hides a story from digests, or shows it again. Digests not
// yet composed leave it out; one already composed drops it when rendered.
func (s *Service) SetHidden(ctx context.Context, id int64, hidden bool) error {
	return s.store.SetStoryHidden(ctx, id, hidden, s.now())
}

// feedFields is a FeedInput that passed validation.
type feedFields struct {
	url       string
	section   models.Section
	catJSON   string
	interval  time.Duration
	catTarget map[string]string
}

// CheckFeed validates in as AddFeed and UpdateFeed do, without storing
// anything, so a form can show every field's problem at once.
func (s *Service) CheckFeed(ctx context.Context, in FeedInput) error {
	_, err := s.checkFeed(ctx, in)
	return err
}

// checkFeed holds the rules of AddFeed and UpdateFeed.
func (s *Service) checkFeed(ctx context.Context, in FeedInput) (*feedFields, error) {
	fe := FieldErrors{}
	out := &feedFields{url: strings.TrimSpace(in.URL), interval: DefaultPollInterval, catTarget: map[string]string{}}
	switch {
	case out.url == "":
		fe["url"] = "is required"
	case len(out.url) > maxURLLen:
		fe["url"] = "must be at most 2048 characters"
	case resolveHTTP(nil, out.url) == "":
		fe["url"] = errNotHTTPURL.Error()
	}
	if p := strings.TrimSpace(in.PollInterval); p != "" {
		d, err := time.ParseDuration(p)
		switch {
		case err != nil:
			fe["poll_interval"] = "must be a duration such as 5m or 1h"
		case d < MinPollInterval || d > MaxPollInterval:
			fe["poll_interval"] = "must be between 1m and 24h"
		default:
			out.interval = d.Truncate(time.Second)
		}
	}
	slug := strings.TrimSpace(in.Section)
	for cat, target := range in.Categories {
		cat, target = strings.ToLower(PlainText(cat)), strings.TrimSpace(target)
		if cat == "" || target == "" {
			fe["categories"] = "must map category names to section slugs"
			continue
		}
		out.catTarget[cat] = target
	}
	if len(out.catTarget) > maxCategories {
		fe["categories"] = fmt.Sprintf("at most %d categories", maxCategories)
	}
	slugs := []string{slug}
	for _, target := range out.catTarget {
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
		out.section = sec
	}
	var unknown []string
	for _, target := range out.catTarget {
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
	if len(out.catTarget) > 0 {
		b, err := json.Marshal(out.catTarget)
		if err != nil {
			return nil, err
		}
		out.catJSON = string(b)
	}
	return out, nil
}

// UpdateFeed changes a feed's URL, section, category map and interval,
// with AddFeed's rules. A URL another feed has is ErrFeedExists; an
// unknown id models.ErrNotFound.
func (s *Service) UpdateFeed(ctx context.Context, id int64, in FeedInput) (*models.Feed, error) {
	ff, err := s.checkFeed(ctx, in)
	if err != nil {
		return nil, err
	}
	err = s.store.UpdateFeed(ctx, id, models.FeedChange{
		URL: ff.url, SectionID: ff.section.ID, CategoryMap: ff.catJSON, PollInterval: int(ff.interval / time.Second),
	}, s.now())
	if models.IsUniqueViolation(err) {
		return nil, ErrFeedExists
	}
	if err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(ctx, "feed edited", slog.Int64("feed_id", id), slog.String("feed_url", ff.url),
		slog.String("section", ff.section.Slug))
	return s.store.FeedByID(ctx, id)
}

// ParseCategoryLines reads a category map written one mapping a line, as
// "category = section-slug"; blank lines and lines starting with # are
// skipped. The error says which line is wrong and how.
func ParseCategoryLines(text string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cat, slug, ok := strings.Cut(line, "=")
		cat, slug = strings.TrimSpace(cat), strings.TrimSpace(slug)
		if !ok || cat == "" || slug == "" || strings.Contains(slug, "=") {
			return nil, fmt.Errorf("line %d: write it as category = section-slug", i+1)
		}
		key := strings.ToLower(cat)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("line %d: %q is mapped twice", i+1, clipRunes(cat, 40))
		}
		out[key] = slug
	}
	if len(out) > maxCategories {
		return nil, fmt.Errorf("at most %d categories", maxCategories)
	}
	return out, nil
}

// CategoryLines writes a feed's category map as ParseCategoryLines reads
// it, sorted by category.
func CategoryLines(f *models.Feed) string {
	m := CategoryMap(f)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + " = " + m[k] + "\n")
	}
	return b.String()
}

// Check validates in as Ingest does, without storing anything, so a form
// can show every field's problem at once. Invalid input returns FieldErrors.
func (s *Service) Check(ctx context.Context, in Input) error {
	_, _, err := s.validate(ctx, in)
	return err
}
