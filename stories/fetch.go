package stories

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mmcdole/gofeed"

	"herald/models"
)

// pollOutcome is a poll's result before it is recorded.
type pollOutcome struct {
	models.FeedPoll
	items, skipped int
}

func failed(format string, args ...any) pollOutcome {
	return pollOutcome{FeedPoll: models.FeedPoll{Status: models.FeedError, Error: fmt.Sprintf(format, args...)}}
}

// poll fetches f (conditionally) and ingests its items.
func (p *Poller) poll(ctx context.Context, f *models.Feed, log *slog.Logger) pollOutcome {
	parsed, validators, notModified, err := p.fetch(ctx, f)
	switch {
	case err != nil:
		return failed("%s", err)
	case notModified:
		return pollOutcome{FeedPoll: models.FeedPoll{Status: models.FeedNotModified}}
	}
	out := pollOutcome{FeedPoll: models.FeedPoll{Status: models.FeedOK, ETag: validators.etag, LastModified: validators.lastModified}}
	route, err := p.router(ctx, f)
	if err != nil {
		out.Status, out.Error = models.FeedError, err.Error()
		return out
	}
	base, _ := url.Parse(f.URL)
	// Feeds list the newest first; ingest the oldest first so ids follow
	// publication.
	items := slices.Clone(parsed.Items)
	slices.Reverse(items)
	feedID := f.ID
	for _, item := range items {
		if item == nil {
			continue
		}
		out.items++
		in, ok := itemInput(item, base, route)
		if !ok {
			out.skipped++
			log.DebugContext(ctx, "feed item without a link skipped", slog.String("guid", item.GUID))
			continue
		}
		in.FeedID = &feedID
		_, created, err := p.svc.Ingest(ctx, in)
		switch {
		case IsFieldErrors(err):
			out.skipped++
			log.WarnContext(ctx, "feed item skipped", slog.String("url", in.URL), slog.String("error", err.Error()))
		case err != nil:
			out.Status, out.Error = models.FeedError, "store items: "+err.Error()
			return out
		case created:
			out.New++
		}
	}
	return out
}

type validators struct{ etag, lastModified string }

// fetch GETs the feed with its stored validators and parses it; a 304
// reports notModified. The whole fetch is bounded by the poll timeout and
// the body by MaxBody.
func (p *Poller) fetch(ctx context.Context, f *models.Feed) (*gofeed.Feed, validators, bool, error) {
	var v validators
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return nil, v, false, fmt.Errorf("bad feed URL: %w", err)
	}
	req.Header.Set("User-Agent", p.cfg.UserAgent)
	req.Header.Set("Accept", "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")
	if f.ETag != "" {
		req.Header.Set("If-None-Match", f.ETag)
	}
	if f.LastModified != "" {
		req.Header.Set("If-Modified-Since", f.LastModified)
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, v, false, fmt.Errorf("no answer within %s", p.cfg.Timeout)
		}
		return nil, v, false, fmt.Errorf("fetch: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil, v, true, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, v, false, fmt.Errorf("the feed answered HTTP %d", resp.StatusCode)
	case resp.ContentLength > p.cfg.MaxBody:
		return nil, v, false, fmt.Errorf("the feed is larger than %d bytes", p.cfg.MaxBody)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.cfg.MaxBody+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, v, false, fmt.Errorf("the feed did not arrive within %s", p.cfg.Timeout)
		}
		return nil, v, false, fmt.Errorf("read feed: %w", err)
	}
	if int64(len(body)) > p.cfg.MaxBody {
		return nil, v, false, fmt.Errorf("the feed is larger than %d bytes", p.cfg.MaxBody)
	}
	parsed, err := gofeed.NewParser().Parse(bytes.NewReader(body))
	if err != nil {
		return nil, v, false, fmt.Errorf("parse feed: %w", err)
	}
	v.etag = resp.Header.Get("ETag")
	v.lastModified = resp.Header.Get("Last-Modified")
	return parsed, v, false, nil
}

// sectionRouter picks the sections of a feed item from its categories.
type sectionRouter struct {
	fallback   string
	categories map[string]string // lower-case category → existing slug
}

func (r sectionRouter) sections(categories []string) []string {
	var out []string
	for _, c := range categories {
		if slug, ok := r.categories[strings.ToLower(PlainText(c))]; ok && !slices.Contains(out, slug) {
			out = append(out, slug)
		}
	}
	if len(out) == 0 {
		return []string{r.fallback}
	}
	return out
}

// router loads the sections f's items may go to. Mapped sections deleted
// since the feed was added are ignored; a deleted default section fails
// the poll.
func (p *Poller) router(ctx context.Context, f *models.Feed) (sectionRouter, error) {
	all, err := p.store.Sections(ctx)
	if err != nil {
		return sectionRouter{}, fmt.Errorf("load sections: %w", err)
	}
	r := sectionRouter{categories: map[string]string{}}
	slugs := map[string]bool{}
	for _, sec := range all {
		slugs[sec.Slug] = true
		if sec.ID == f.SectionID {
			r.fallback = sec.Slug
		}
	}
	if r.fallback == "" {
		return r, errors.New("the feed's section no longer exists")
	}
	for cat, slug := range CategoryMap(f) {
		if slugs[slug] {
			r.categories[cat] = slug
		}
	}
	return r, nil
}

// untitledLen is how much of its text titles an item that has no title.
const untitledLen = 120

// itemInput turns a feed item into an Input; ok is false for an item
// without a usable link.
func itemInput(item *gofeed.Item, base *url.URL, route sectionRouter) (Input, bool) {
	link := resolveHTTP(base, item.Link)
	if link == "" {
		for _, l := range item.Links {
			if link = resolveHTTP(base, l); link != "" {
				break
			}
		}
	}
	if link == "" && strings.Contains(item.GUID, "://") {
		link = resolveHTTP(base, item.GUID) // an RSS permalink GUID
	}
	if link == "" {
		return Input{}, false
	}
	in := Input{
		URL:      link,
		GUID:     item.GUID,
		Title:    item.Title,
		Summary:  item.Description,
		Sections: route.sections(item.Categories),
		Origin:   models.OriginFeed,
		Author:   itemAuthor(item),
		ImageURL: itemImage(item),
	}
	if strings.TrimSpace(in.Summary) == "" {
		in.Summary = item.Content
	}
	if PlainText(in.Title) == "" {
		// RSS allows items with only a description; title them with its start.
		text := PlainText(in.Summary)
		if in.Title = clipRunes(text, untitledLen); in.Title != text {
			in.Title += "…"
		}
	}
	// Without either time, PublishedAt stays zero: now for a new story,
	// unchanged for a known one.
	switch {
	case item.PublishedParsed != nil:
		in.PublishedAt = *item.PublishedParsed
	case item.UpdatedParsed != nil:
		in.PublishedAt = *item.UpdatedParsed
	}
	return in, true
}

func itemAuthor(item *gofeed.Item) string {
	for _, a := range item.Authors {
		if a != nil && a.Name != "" {
			return a.Name
		}
	}
	if item.DublinCoreExt != nil && len(item.DublinCoreExt.Creator) > 0 {
		return item.DublinCoreExt.Creator[0]
	}
	return ""
}

func itemImage(item *gofeed.Item) string {
	if item.Image != nil && item.Image.URL != "" {
		return item.Image.URL
	}
	for _, e := range item.Enclosures {
		if e != nil && strings.HasPrefix(e.Type, "image/") {
			return e.URL
		}
	}
	return ""
}
