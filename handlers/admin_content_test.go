package handlers_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"herald/models"
	"herald/stories"
)

// acAudit returns the audit entries with this action.
func (h *harness) acAudit(action string) []models.AuditEntry {
	h.t.Helper()
	es, err := h.store.AuditEntries(context.Background(), models.AuditFilter{Action: action})
	if err != nil {
		h.t.Fatal(err)
	}
	return es
}

// acStory returns the story with this canonical URL, or nil.
func (h *harness) acStory(u string) *models.Story {
	h.t.Helper()
	list, err := h.store.AdminStories(context.Background(), models.AdminStoryFilter{Limit: 500})
	if err != nil {
		h.t.Fatal(err)
	}
	for i := range list {
		if list[i].URL == u {
			return &list[i]
		}
	}
	return nil
}

func (h *harness) acIngest(u, title string, published time.Time, origin string, sections ...string) *models.Story {
	h.t.Helper()
	st, _, err := h.stories.Ingest(context.Background(), stories.Input{
		URL: u, Title: title, Sections: sections, PublishedAt: published, Origin: origin,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func acWant(t *testing.T, r response, status int, parts ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %.600s", r.status, status, r.body)
	}
	for _, p := range parts {
		if !strings.Contains(r.body, p) {
			t.Errorf("body lacks %q", p)
		}
	}
}

func TestAdminContentStoryForm(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		c, csrf := h.adminClient("editor")

		acWant(t, h.do(c, http.MethodGet, "/admin/stories/new", "", "", nil), http.StatusOK, `name="csrf_token"`, `for="url"`)

		// Everything wrong at once: each field says what.
		bad := url.Values{"url": {"not a url"}, "title": {""}, "published_at": {"yesterday"},
			"image_url": {"javascript:alert(1)"}, "author": {"Ann Example"}}
		r := h.adminPost(c, csrf, "/admin/stories", bad)
		acWant(t, r, http.StatusUnprocessableEntity,
			`id="url-error"`, `id="title-error"`, `id="sections-error"`, `id="published_at-error"`, `id="image_url-error"`,
			`aria-invalid="true" aria-describedby="url-error"`, `value="not a url"`, `value="Ann Example"`, `value="yesterday"`)

		// An unknown section is a field message, not a 500.
		r = h.adminPost(c, csrf, "/admin/stories", url.Values{"url": {"https://news.example.com/a"}, "title": {"A"}, "sections": {"nope"}})
		acWant(t, r, http.StatusUnprocessableEntity, `id="sections-error"`, "unknown section")

		// A story more than a day ahead is refused by the service, shown by the field.
		r = h.adminPost(c, csrf, "/admin/stories", url.Values{"url": {"https://news.example.com/a"}, "title": {"A"},
			"sections": {"world"}, "published_at": {"2027-01-01T09:00"}})
		acWant(t, r, http.StatusUnprocessableEntity, `id="published_at-error"`, "future")

		// Added: sanitised, origin editor, filed under its sections.
		good := url.Values{"url": {"HTTPS://News.Example.com/politics/vote#top"}, "title": {"The <b>vote</b>"},
			"summary":  {`<p>Result <script>alert(1)</script><a href="https://x.example/">here</a></p>`},
			"sections": {"politics-uk", "world"}, "published_at": {"2026-11-25T08:30"},
			"image_url": {"https://img.example.com/v.jpg"}, "author": {"Ann"}}
		r = h.adminPost(c, csrf, "/admin/stories", good)
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/admin/stories" {
			t.Fatalf("add: %d %s %.300s", r.status, r.header.Get("Location"), r.body)
		}
		st := h.acStory("https://news.example.com/politics/vote")
		if st == nil {
			t.Fatal("story not stored under its canonical URL")
		}
		if st.Origin != models.OriginEditor || st.Title != "The vote" || strings.Contains(st.Summary, "script") ||
			!st.PublishedAt.Equal(time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)) || st.Author != "Ann" {
			t.Errorf("stored %+v", st)
		}
		if got := h.acAudit("story.create"); len(got) != 1 || got[0].Target != fmt.Sprintf("story:%d", st.ID) {
			t.Errorf("audit story.create = %+v", got)
		}

		// The list shows it, with its sections and origin.
		acWant(t, h.do(c, http.MethodGet, "/admin/stories", "", "", nil), http.StatusOK,
			"The vote", "Politics UK, World", "editor", `href="https://news.example.com/politics/vote"`)

		// The same URL again updates, never duplicates.
		again := url.Values{"url": {"https://news.example.com/politics/vote"}, "title": {"The vote: result"}, "sections": {"world"}}
		r = h.adminPost(c, csrf, "/admin/stories", again)
		if r.status != http.StatusSeeOther {
			t.Fatalf("add again: %d %.300s", r.status, r.body)
		}
		list, _ := h.store.AdminStories(context.Background(), models.AdminStoryFilter{})
		if len(list) != 1 || list[0].Title != "The vote: result" || list[0].ID != st.ID {
			t.Fatalf("after adding the same URL: %+v", list)
		}

		// Edit: the form shows the story; saving changes it.
		path := fmt.Sprintf("/admin/stories/%d", st.ID)
		acWant(t, h.do(c, http.MethodGet, path, "", "", nil), http.StatusOK, `value="The vote: result"`, `value="2026-11-25T08:30"`)
		edit := url.Values{"url": {"https://news.example.com/politics/vote"}, "title": {"Edited title"},
			"sections": {"politics-uk"}, "published_at": {"2026-11-25T08:30"}, "summary": {"Short."}}
		r = h.adminPost(c, csrf, path, edit)
		if r.status != http.StatusSeeOther {
			t.Fatalf("edit: %d %.300s", r.status, r.body)
		}
		got, _ := h.store.StoryByID(context.Background(), st.ID)
		secs, _ := h.store.StorySectionIDs(context.Background(), []int64{st.ID})
		if got.Title != "Edited title" || got.Summary != "Short." || len(secs[st.ID]) != 1 {
			t.Errorf("after edit: %+v sections %v", got, secs)
		}
		if n := len(h.acAudit("story.edit")); n != 2 { // the re-add and the edit
			t.Errorf("story.edit entries = %d, want 2", n)
		}

		// Editing to another story's URL is a field message.
		other := h.acIngest("https://news.example.com/other", "Other", time.Time{}, models.OriginAPI, "world")
		edit.Set("url", other.URL)
		acWant(t, h.adminPost(c, csrf, path, edit), http.StatusUnprocessableEntity, `id="url-error"`, "another story")

		// Bad ids are 404.
		for _, p := range []string{"/admin/stories/0", "/admin/stories/abc", "/admin/stories/999999"} {
			if r := h.do(c, http.MethodGet, p, "", "", nil); r.status != http.StatusNotFound {
				t.Errorf("GET %s: %d", p, r.status)
			}
		}
		if r := h.adminPost(c, csrf, "/admin/stories/999999", edit); r.status != http.StatusNotFound {
			t.Errorf("POST unknown story: %d", r.status)
		}
		if r := h.adminPost(c, csrf, "/admin/stories/999999/hide", nil); r.status != http.StatusNotFound {
			t.Errorf("hide unknown story: %d", r.status)
		}
	})
}

func TestAdminContentHideExcludesFromDigests(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		c, csrf := h.adminClient("editor")
		ctx := context.Background()
		now := h.clock.Now()
		keep := h.acIngest("https://news.example.com/keep", "Keep", now.Add(-time.Hour), models.OriginAPI, "politics-uk")
		hide := h.acIngest("https://news.example.com/hide", "Hide", now.Add(-30*time.Minute), models.OriginAPI, "politics-uk")

		r := h.adminPost(c, csrf, fmt.Sprintf("/admin/stories/%d/hide", hide.ID), url.Values{"back": {"/admin/stories?origin=api"}})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/admin/stories?origin=api" {
			t.Fatalf("hide: %d %q", r.status, r.header.Get("Location"))
		}
		ids := func() []int64 {
			list, err := h.store.NewStoriesFor(ctx, models.DigestDaily, now.Add(-24*time.Hour), 100)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, st := range list {
				out = append(out, st.ID)
			}
			return out
		}
		if got := ids(); len(got) != 1 || got[0] != keep.ID {
			t.Fatalf("digest candidates after hide = %v, want only %d", got, keep.ID)
		}
		acWant(t, h.do(c, http.MethodGet, "/admin/stories?hidden=hidden", "", "", nil), http.StatusOK, "Hide", `s-hidden`)
		if r := h.do(c, http.MethodGet, "/admin/stories?hidden=visible", "", "", nil); strings.Contains(r.body, ">Hide</a>") {
			t.Error("the hidden story is listed as not hidden")
		}

		// An open redirect through "back" is refused.
		r = h.adminPost(c, csrf, fmt.Sprintf("/admin/stories/%d/unhide", hide.ID), url.Values{"back": {"https://evil.example/admin/stories"}})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/admin/stories" {
			t.Fatalf("unhide: %d %q", r.status, r.header.Get("Location"))
		}
		if got := ids(); len(got) != 2 {
			t.Fatalf("digest candidates after unhide = %v", got)
		}
		if len(h.acAudit("story.hide")) != 1 || len(h.acAudit("story.unhide")) != 1 {
			t.Error("hide/unhide not audited")
		}
		// GET never changes state: there is no GET route to hide.
		if r := h.do(c, http.MethodGet, fmt.Sprintf("/admin/stories/%d/hide", hide.ID), "", "", nil); r.status == http.StatusOK || r.status == http.StatusSeeOther {
			t.Errorf("GET hide answered %d", r.status)
		}
	})
}

var acStoryLink = regexp.MustCompile(`<a href="(https://news\.example\.com/[^"]+)" rel="noopener`)

func TestAdminContentStoryFiltersAndPages(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		c, _ := h.adminClient("admin")
		base := h.clock.Now().Add(-100 * time.Hour)
		for i := 0; i < 53; i++ {
			h.acIngest(fmt.Sprintf("https://news.example.com/p%02d", i), fmt.Sprintf("Politics %d", i),
				base.Add(time.Duration(i)*time.Hour), models.OriginAPI, "politics-uk")
		}
		h.acIngest("https://news.example.com/w1", "World one", base.Add(-time.Hour), models.OriginEditor, "world")
		h.acIngest("https://news.example.com/feed1", "From a feed", base.Add(-2*time.Hour), models.OriginFeed, "world")

		links := func(body string) []string {
			var out []string
			for _, m := range acStoryLink.FindAllStringSubmatch(body, -1) {
				out = append(out, m[1])
			}
			return out
		}
		r := h.do(c, http.MethodGet, "/admin/stories?section=world", "", "", nil)
		if got := links(r.body); len(got) != 2 || got[0] != "https://news.example.com/w1" {
			t.Errorf("section=world: %v", got)
		}
		r = h.do(c, http.MethodGet, "/admin/stories?origin=editor", "", "", nil)
		if got := links(r.body); len(got) != 1 || got[0] != "https://news.example.com/w1" {
			t.Errorf("origin=editor: %v", got)
		}
		r = h.do(c, http.MethodGet, "/admin/stories?origin=feed&section=world", "", "", nil)
		if got := links(r.body); len(got) != 1 || got[0] != "https://news.example.com/feed1" {
			t.Errorf("origin=feed: %v", got)
		}
		// Values that name nothing are dropped, never a 500.
		if r := h.do(c, http.MethodGet, "/admin/stories?origin=x&section=%00&hidden=q&before=zz", "", "", nil); r.status != http.StatusOK {
			t.Errorf("junk filters: %d", r.status)
		}

		// Newest first, 50 a page, keyset "older" link keeps the filter.
		r = h.do(c, http.MethodGet, "/admin/stories?section=politics-uk", "", "", nil)
		first := links(r.body)
		if len(first) != 50 || first[0] != "https://news.example.com/p52" {
			t.Fatalf("first page: %d links, first %v", len(first), first[:1])
		}
		m := regexp.MustCompile(`href="/admin/stories\?([^"]+)">Older stories`).FindStringSubmatch(r.body)
		if m == nil {
			t.Fatal("no older link")
		}
		next := html.UnescapeString(m[1])
		if !strings.Contains(next, "section=politics-uk") {
			t.Errorf("older link %q drops the filter", next)
		}
		r = h.do(c, http.MethodGet, "/admin/stories?"+next, "", "", nil)
		second := links(r.body)
		if len(second) != 3 || second[0] != "https://news.example.com/p02" || strings.Contains(r.body, "Older stories") {
			t.Errorf("second page: %v", second)
		}
	})
}

func TestAdminContentSections(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		c, csrf := h.adminClient("editor")
		acWant(t, h.do(c, http.MethodGet, "/admin/sections", "", "", nil), http.StatusOK, "politics-uk", "Politics UK")

		r := h.adminPost(c, csrf, "/admin/sections", url.Values{"slug": {"Bad Slug"}, "name": {""}, "description": {"About"}})
		acWant(t, r, http.StatusUnprocessableEntity, `id="slug-error"`, `id="name-error"`, `value="Bad Slug"`, ">About</textarea>")

		r = h.adminPost(c, csrf, "/admin/sections", url.Values{"slug": {"business"}, "name": {"Business"}, "description": {"Money."}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("add: %d %.300s", r.status, r.body)
		}
		found, _ := h.store.SectionsBySlug(context.Background(), []string{"business"})
		sec, ok := found["business"]
		if !ok || sec.Name != "Business" || sec.Description != "Money." {
			t.Fatalf("stored %+v", found)
		}
		if len(h.acAudit("section.create")) != 1 {
			t.Error("section.create not audited")
		}

		r = h.adminPost(c, csrf, "/admin/sections", url.Values{"slug": {"business"}, "name": {"Business again"}})
		acWant(t, r, http.StatusUnprocessableEntity, `id="slug-error"`, "Another section has this slug", `value="Business again"`)

		path := fmt.Sprintf("/admin/sections/%d", sec.ID)
		acWant(t, h.do(c, http.MethodGet, path, "", "", nil), http.StatusOK, `value="Business"`, "<code>business</code>")
		acWant(t, h.adminPost(c, csrf, path, url.Values{"name": {strings.Repeat("x", 200)}}), http.StatusUnprocessableEntity, `id="name-error"`)
		// The slug is fixed: a posted one is ignored.
		r = h.adminPost(c, csrf, path, url.Values{"name": {"Business & Money"}, "description": {""}, "slug": {"money"}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("edit: %d %.300s", r.status, r.body)
		}
		got, _ := h.store.SectionByID(context.Background(), sec.ID)
		if got.Name != "Business & Money" || got.Slug != "business" || got.Description != "" {
			t.Errorf("after edit: %+v", got)
		}
		if len(h.acAudit("section.edit")) != 1 {
			t.Error("section.edit not audited")
		}
		for _, p := range []string{"/admin/sections/x", "/admin/sections/424242"} {
			if r := h.do(c, http.MethodGet, p, "", "", nil); r.status != http.StatusNotFound {
				t.Errorf("GET %s: %d", p, r.status)
			}
		}
	})
}

func TestAdminContentFeeds(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		c, csrf := h.adminClient("editor")
		ctx := context.Background()
		acWant(t, h.do(c, http.MethodGet, "/admin/feeds/new", "", "", nil), http.StatusOK, `value="5m"`, "Politics UK")

		cases := []struct {
			name  string
			form  url.Values
			field string
		}{
			{"bad url", url.Values{"url": {"ftp://feeds.example.com/rss"}, "section": {"world"}}, "url"},
			{"no url", url.Values{"url": {""}, "section": {"world"}}, "url"},
			{"unknown section", url.Values{"url": {"https://feeds.example.com/rss"}, "section": {"sport"}}, "section"},
			{"bad map line", url.Values{"url": {"https://feeds.example.com/rss"}, "section": {"world"}, "categories": {"Brexit politics-uk"}}, "categories"},
			{"map to unknown section", url.Values{"url": {"https://feeds.example.com/rss"}, "section": {"world"}, "categories": {"Brexit = nowhere"}}, "categories"},
			{"bad interval", url.Values{"url": {"https://feeds.example.com/rss"}, "section": {"world"}, "poll_interval": {"often"}}, "poll_interval"},
			{"short interval", url.Values{"url": {"https://feeds.example.com/rss"}, "section": {"world"}, "poll_interval": {"10s"}}, "poll_interval"},
		}
		for _, tc := range cases {
			r := h.adminPost(c, csrf, "/admin/feeds", tc.form)
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="`+tc.field+`-error"`) {
				t.Errorf("%s: %d, no %s error: %.400s", tc.name, r.status, tc.field, r.body)
			}
		}
		// Several problems show at once, the typed values kept.
		r := h.adminPost(c, csrf, "/admin/feeds", url.Values{"url": {"nope"}, "section": {""}, "categories": {"a = b = c"}, "poll_interval": {"x"}})
		acWant(t, r, http.StatusUnprocessableEntity, `id="url-error"`, `id="section-error"`, `id="categories-error"`, `id="poll_interval-error"`, `value="nope"`, "a = b = c")
		if feeds, _ := h.store.Feeds(ctx); len(feeds) != 0 {
			t.Fatalf("invalid forms stored %d feeds", len(feeds))
		}

		good := url.Values{"url": {"https://feeds.example.com/rss"}, "section": {"world"},
			"categories": {"Brexit = politics-uk\n\n# comment\nElections = politics-uk\n"}, "poll_interval": {"15m"}}
		r = h.adminPost(c, csrf, "/admin/feeds", good)
		if r.status != http.StatusSeeOther {
			t.Fatalf("add: %d %.400s", r.status, r.body)
		}
		feeds, _ := h.store.Feeds(ctx)
		if len(feeds) != 1 || feeds[0].PollInterval != 900 || stories.CategoryMap(&feeds[0])["brexit"] != "politics-uk" {
			t.Fatalf("stored %+v", feeds)
		}
		f := feeds[0]
		if len(h.acAudit("feed.create")) != 1 {
			t.Error("feed.create not audited")
		}
		acWant(t, h.adminPost(c, csrf, "/admin/feeds", good), http.StatusUnprocessableEntity, `id="url-error"`, "already polls")

		// A failed poll shows in the list.
		polled := h.clock.Now()
		if err := h.store.RecordFeedPoll(ctx, f.ID, models.FeedPoll{Status: models.FeedError, Error: "HTTP 503 from feeds.example.com",
			PolledAt: polled, NextPollAt: polled.Add(30 * time.Minute), Failures: 3}); err != nil {
			t.Fatal(err)
		}
		acWant(t, h.do(c, http.MethodGet, "/admin/feeds", "", "", nil), http.StatusOK,
			"HTTP 503 from feeds.example.com", `class="badge s-error"`, ">3</td>", "15m", "World", "2 categories mapped")

		// Poll now makes it due at once.
		if r := h.adminPost(c, csrf, fmt.Sprintf("/admin/feeds/%d/poll", f.ID), nil); r.status != http.StatusSeeOther {
			t.Fatalf("poll now: %d", r.status)
		}
		due, _ := h.store.DueFeeds(ctx, h.clock.Now(), 10)
		if len(due) != 1 {
			t.Error("the feed is not due after poll now")
		}

		// Edit: the form round-trips the map; a new URL is saved.
		path := fmt.Sprintf("/admin/feeds/%d", f.ID)
		acWant(t, h.do(c, http.MethodGet, path, "", "", nil), http.StatusOK, "brexit = politics-uk\nelections = politics-uk", `value="15m"`)
		edit := url.Values{"url": {"https://feeds.example.com/atom"}, "section": {"politics-uk"}, "categories": {""}, "poll_interval": {"1h"}}
		if r := h.adminPost(c, csrf, path, edit); r.status != http.StatusSeeOther {
			t.Fatalf("edit: %d %.400s", r.status, r.body)
		}
		got, _ := h.store.FeedByID(ctx, f.ID)
		if got.URL != "https://feeds.example.com/atom" || got.PollInterval != 3600 || got.CategoryMap != "" || got.Failures != 0 {
			t.Errorf("after edit: %+v", got)
		}
		if len(h.acAudit("feed.edit")) != 1 {
			t.Error("feed.edit not audited")
		}
		other, err := h.stories.AddFeed(ctx, stories.FeedInput{URL: "https://other.example.com/rss", Section: "world"})
		if err != nil {
			t.Fatal(err)
		}
		edit.Set("url", other.URL)
		acWant(t, h.adminPost(c, csrf, path, edit), http.StatusUnprocessableEntity, `id="url-error"`)
		if r := h.adminPost(c, csrf, "/admin/feeds/987654", edit); r.status != http.StatusNotFound {
			t.Errorf("edit unknown feed: %d", r.status)
		}
		if r := h.adminPost(c, csrf, "/admin/feeds/987654/poll", nil); r.status != http.StatusNotFound {
			t.Errorf("poll unknown feed: %d", r.status)
		}
	})
}

var acTextarea = regexp.MustCompile(`(?s)<textarea class="code-block" id="embed-(html|widget)-politics-uk"[^>]*>(.*?)</textarea>`)

func TestAdminContentEmbed(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		c, _ := h.adminClient("editor")
		base := h.cfg.BaseURL.String()
		r := h.do(c, http.MethodGet, "/admin/embed", "", "", nil)
		acWant(t, r, http.StatusOK, `data-copy="#embed-html-politics-uk"`, `data-copy="#embed-widget-world"`,
			`src="/admin/embed/preview?section=politics-uk&amp;kind=html"`)
		snippets := map[string]string{}
		for _, m := range acTextarea.FindAllStringSubmatch(r.body, -1) {
			snippets[m[1]] = html.UnescapeString(m[2])
		}
		plain, widget := snippets["html"], snippets["widget"]
		for _, want := range []string{`action="` + base + `/subscribe"`, `method="post"`, `name="email"`,
			`name="sections" value="politics-uk"`, `name="frequency"`, `name="consent"`, `name="website"`, base + "/static/herald.css"} {
			if !strings.Contains(plain, want) {
				t.Errorf("plain snippet lacks %q:\n%s", want, plain)
			}
		}
		if strings.Contains(plain, `name="t"`) || strings.Contains(plain, "<script") {
			t.Errorf("plain snippet has a time trap or a script:\n%s", plain)
		}
		if !strings.Contains(widget, `<script src="`+base+`/widget.js" async></script>`) || !strings.Contains(widget, `action="`+base+`/subscribe"`) {
			t.Errorf("widget snippet:\n%s", widget)
		}

		// The preview is a bare page with exactly the snippet.
		for kind, code := range snippets {
			p := h.do(c, http.MethodGet, "/admin/embed/preview?section=politics-uk&kind="+kind, "", "", nil)
			acWant(t, p, http.StatusOK, "<!doctype html>")
			if !strings.Contains(p.body, code) {
				t.Errorf("%s preview does not hold the snippet:\n%s", kind, p.body)
			}
			if strings.Contains(p.body, "admin.css") {
				t.Errorf("%s preview carries the admin layout", kind)
			}
		}
		for _, q := range []string{"section=nope&kind=html", "section=politics-uk&kind=js", ""} {
			if p := h.do(c, http.MethodGet, "/admin/embed/preview?"+q, "", "", nil); p.status != http.StatusNotFound {
				t.Errorf("preview?%s: %d", q, p.status)
			}
		}

		// The plain snippet works as pasted: posting it subscribes.
		form := url.Values{"email": {"reader@example.org"}, "sections": {"politics-uk"}, "frequency": {"daily"},
			"consent": {"yes"}, "website": {""}, "source": {"embed-html:politics-uk"}}
		if r := h.postForm("/subscribe", form); r.status != http.StatusSeeOther {
			t.Fatalf("subscribe from the snippet: %d %.300s", r.status, r.body)
		}
		if h.subscriber("reader@example.org") == nil {
			t.Error("the snippet's post did not sign the reader up")
		}
	})
}

// TestAdminContentBadBytesNever500: whatever bytes a form posts, the answer
// is a page, never a 500 (Postgres refuses NUL and invalid UTF-8 in text).
func TestAdminContentBadBytesNever500(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		c, csrf := h.adminClient("admin")
		junk := "a\x00b\xff\xfe"
		forms := map[string]url.Values{
			"/admin/stories":   {"url": {"https://news.example.com/" + junk}, "title": {junk}, "summary": {junk}, "sections": {junk, "world"}, "author": {junk}, "published_at": {junk}, "image_url": {junk}},
			"/admin/sections":  {"slug": {junk}, "name": {junk}, "description": {junk}},
			"/admin/feeds":     {"url": {"https://feeds.example.com/" + junk}, "section": {junk}, "categories": {junk + " = " + junk}, "poll_interval": {junk}},
			"/admin/keys":      {"name": {junk}, "scopes": {junk}},
			"/admin/stories/1": {"title": {junk}},
		}
		for path, v := range forms {
			if r := h.adminPost(c, csrf, path, v); r.status >= 500 {
				t.Errorf("POST %s: %d", path, r.status)
			}
		}
		// Valid fields around junk still save, cleaned.
		r := h.adminPost(c, csrf, "/admin/sections", url.Values{"slug": {"junk"}, "name": {"Ju\x00nk\xff"}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("section with junk name: %d %.300s", r.status, r.body)
		}
		for _, q := range []string{"/admin/embed/preview?section=%00&kind=html", "/admin/stories?section=%00%FF&origin=%FF", "/admin/embed/preview?section=%FF&kind=widget"} {
			if r := h.do(c, http.MethodGet, q, "", "", nil); r.status >= 500 {
				t.Errorf("GET %s: %d", q, r.status)
			}
		}
	})
}
