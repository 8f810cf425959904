// Package stories brings published stories into Herald: from the CMS over
// the API, from an editor, and from RSS and Atom feeds polled with
// conditional GETs. Every story is validated, its summary sanitised, and
// de-duplicated by canonical URL (and, within a feed, by GUID).
package stories

import (
	"context"
	"errors"
	"fmt"
	"herald/fielderr"
	"log/slog"
	"strings"
	"time"

	"github.com/microcosm-cc/bluemonday"

	"herald/models"
)

// Limits on a story's fields.
const (
	maxURLLen     = 2048
	maxTitleLen   = 512 // characters
	maxAuthorLen  = 256 // characters
	maxGUIDLen    = 1024
	maxSummaryLen = 256 << 10 // bytes of HTML as sent
	maxSections   = 50
	maxFuture     = 24 * time.Hour
)

// FieldErrors maps an input field to a message for the person.
type FieldErrors = fielderr.Errors

// Config configures the Service.
type Config struct {
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// OnNew, when set, is called after the commit of every newly created
	// story (never for an update) with the story and its section ids.
	OnNew func(ctx context.Context, s *models.Story, sectionIDs []int64)
}

// Service validates, sanitises and stores stories.
type Service struct {
	store  *models.Store
	cfg    Config
	policy *bluemonday.Policy
}

// New returns a Service on store.
func New(store *models.Store, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, cfg: cfg, policy: summaryPolicy()}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Input is one story as it arrives.
type Input struct {
	URL   string
	GUID  string
	Title string
	// Summary is HTML; it is sanitised before it is stored.
	Summary string
	// Sections are section slugs.
	Sections []string
	// PublishedAt zero means now (for a new story) or unchanged (for an update).
	PublishedAt time.Time
	ImageURL    string
	Author      string
	// Origin is models.OriginFeed, OriginAPI or OriginEditor (default API).
	Origin   string
	FeedID   *int64
	Breaking bool
}

// Ingest validates in and stores it: a new story (created is true), or an
// update of the story with the same canonical URL, or of the same feed's
// story with the same GUID. Invalid input returns FieldErrors.
func (s *Service) Ingest(ctx context.Context, in Input) (*models.Story, bool, error) {
	st, sectionIDs, err := s.validate(ctx, in)
	if err != nil {
		return nil, false, err
	}
	created, err := s.store.UpsertStory(ctx, st, sectionIDs)
	if err != nil {
		return nil, false, fmt.Errorf("ingest story: %w", err)
	}
	log := s.cfg.Logger.With(slog.Int64("story_id", st.ID), slog.String("origin", st.Origin))
	if created {
		log.InfoContext(ctx, "story created", slog.String("url", st.URL))
		if s.cfg.OnNew != nil {
			s.cfg.OnNew(ctx, st, sectionIDs)
		}
	} else {
		log.DebugContext(ctx, "story updated", slog.String("url", st.URL))
	}
	return st, created, nil
}

// validate checks in and returns the story to store and its section ids.
func (s *Service) validate(ctx context.Context, in Input) (*models.Story, []int64, error) {
	now := s.now()
	fe := FieldErrors{}

	canon, err := CanonicalURL(in.URL)
	if err != nil {
		fe["url"] = err.Error()
	}

	origin := in.Origin
	switch origin {
	case "":
		origin = models.OriginAPI
	case models.OriginAPI, models.OriginEditor, models.OriginFeed:
	default:
		fe["origin"] = "must be feed, api or editor"
	}

	title := PlainText(in.Title)
	switch n := len([]rune(title)); {
	case title == "":
		fe["title"] = "is required"
	case n > maxTitleLen && origin == models.OriginFeed:
		// A feed cannot be asked to fix its titles; keep the story.
		title = clipRunes(title, maxTitleLen-1) + "…"
	case n > maxTitleLen:
		fe["title"] = fmt.Sprintf("must be at most %d characters", maxTitleLen)
	}

	if len(in.Summary) > maxSummaryLen {
		fe["summary"] = fmt.Sprintf("must be at most %d KB of HTML", maxSummaryLen>>10)
	}

	published := in.PublishedAt
	if !published.IsZero() {
		published = published.UTC().Truncate(time.Microsecond)
		if published.After(now.Add(maxFuture)) {
			fe["published_at"] = "must not be more than a day in the future"
		}
	}

	sectionIDs, msg, err := s.sectionIDs(ctx, in.Sections)
	if err != nil {
		return nil, nil, err
	}
	if msg != "" {
		fe["sections"] = msg
	}
	if in.FeedID != nil && origin != models.OriginFeed {
		fe["feed_id"] = "is only for stories from a feed"
	}
	if len(fe) > 0 {
		return nil, nil, fe
	}

	st := &models.Story{
		URL:         canon,
		GUID:        clipBytes(strings.TrimSpace(in.GUID), maxGUIDLen),
		Title:       title,
		Summary:     s.SanitizeSummary(in.Summary, canon),
		ImageURL:    imageURL(in.ImageURL, canon),
		Author:      clipRunes(PlainText(in.Author), maxAuthorLen),
		Origin:      origin,
		FeedID:      in.FeedID,
		Breaking:    in.Breaking,
		PublishedAt: published,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	return st, sectionIDs, nil
}

// sectionIDs resolves slugs; msg is a message for the reader when they are
// missing or unknown.
func (s *Service) sectionIDs(ctx context.Context, slugs []string) (ids []int64, msg string, err error) {
	seen := map[string]bool{}
	var clean []string
	for _, slug := range slugs {
		slug = strings.TrimSpace(slug)
		if slug != "" && !seen[slug] {
			seen[slug] = true
			clean = append(clean, slug)
		}
	}
	switch {
	case len(clean) == 0:
		return nil, "choose at least one section", nil
	case len(clean) > maxSections:
		return nil, fmt.Sprintf("at most %d sections", maxSections), nil
	}
	found, err := s.store.SectionsBySlug(ctx, clean)
	if err != nil {
		return nil, "", fmt.Errorf("look up sections: %w", err)
	}
	var unknown []string
	for _, slug := range clean {
		sec, ok := found[slug]
		if !ok {
			unknown = append(unknown, clipRunes(slug, 40))
			continue
		}
		ids = append(ids, sec.ID)
	}
	if len(unknown) > 0 {
		return nil, "unknown section: " + strings.Join(limit(unknown, 3), ", "), nil
	}
	return ids, "", nil
}

// IsFieldErrors reports whether err is (or wraps) FieldErrors.
func IsFieldErrors(err error) bool {
	var fe FieldErrors
	return errors.As(err, &fe)
}
