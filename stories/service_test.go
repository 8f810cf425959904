package stories_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/models"
	"herald/models/testdb"
	"herald/stories"
)

func newService(store *models.Store, clk *clock, onNew *atomic.Int32) *stories.Service {
	return stories.New(store, stories.Config{Now: clk.Now, OnNew: func(_ context.Context, st *models.Story, ids []int64) {
		if st.ID == 0 || len(ids) == 0 {
			panic("OnNew without a stored story")
		}
		onNew.Add(1)
	}})
}

func TestIngestSanitises(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		ctx := context.Background()
		addSections(t, store, "world")
		var onNew atomic.Int32
		svc := newService(store, newClock(), &onNew)
		st, created, err := svc.Ingest(ctx, stories.Input{
			URL:   "HTTPS://Site.Example:443/news/story?id=7#comments",
			Title: "<b>Big</b>\n  news &amp; <script>alert(1)</script>views\r\n",
			Summary: `<p onclick="steal()" style="color:red">Read <a href="/x" onmouseover="x()">more</a>` +
				`<script>alert("s")</script><style>p{display:none}</style><img src="/i.png">` +
				`<iframe src="https://evil.example/"></iframe> <a href="javascript:alert(2)">js</a>` +
				` <a href="other.html">rel</a> <em>ok</em></p>`,
			ImageURL: "../img/lead.jpg",
			Author:   "<i>Ann</i>  Author",
			Sections: []string{"world"},
		})
		if err != nil || !created {
			t.Fatalf("ingest: %v %v", created, err)
		}
		if st.URL != "https://site.example/news/story?id=7" {
			t.Errorf("url = %q", st.URL)
		}
		if st.Title != "Big news & views" {
			t.Errorf("title = %q", st.Title)
		}
		if st.Author != "Ann Author" {
			t.Errorf("author = %q", st.Author)
		}
		if st.ImageURL != "https://site.example/img/lead.jpg" {
			t.Errorf("image = %q", st.ImageURL)
		}
		for _, bad := range []string{"script", "alert", "style", "onclick", "onmouseover", "steal", "<img", "iframe", "evil", "javascript", "display"} {
			if strings.Contains(st.Summary, bad) {
				t.Errorf("summary keeps %q: %s", bad, st.Summary)
			}
		}
		for _, want := range []string{
			`<a href="https://site.example/x" rel="nofollow noopener">more</a>`,
			`<a href="https://site.example/news/other.html" rel="nofollow noopener">rel</a>`,
			`<em>ok</em>`, `<p>`,
		} {
			if !strings.Contains(st.Summary, want) {
				t.Errorf("summary lacks %s: %s", want, st.Summary)
			}
		}
		if st.Origin != models.OriginAPI || !st.PublishedAt.Equal(newClock().Now()) {
			t.Errorf("origin %q published %v", st.Origin, st.PublishedAt)
		}
		// An image that is not http(s) after resolving is dropped.
		st, _, err = svc.Ingest(ctx, stories.Input{URL: "https://site.example/b", Title: "B", Sections: []string{"world"}, ImageURL: "data:image/png;base64,AAAA"})
		if err != nil || st.ImageURL != "" {
			t.Fatalf("data image kept: %q %v", st.ImageURL, err)
		}
	})
}

func TestIngestValidation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		addSections(t, store, "world")
		clk := newClock()
		var onNew atomic.Int32
		svc := newService(store, clk, &onNew)
		ok := stories.Input{URL: "https://news.example.com/a", Title: "A story", Sections: []string{"world"}}
		tests := []struct {
			name  string
			edit  func(*stories.Input)
			field string
			msg   string
		}{
			{"no url", func(in *stories.Input) { in.URL = " " }, "url", "is required"},
			{"relative url", func(in *stories.Input) { in.URL = "/news/a" }, "url", "absolute http or https"},
			{"ftp url", func(in *stories.Input) { in.URL = "ftp://news.example.com/a" }, "url", "absolute http or https"},
			{"long url", func(in *stories.Input) { in.URL = "https://news.example.com/" + strings.Repeat("a", 2048) }, "url", "at most 2048"},
			{"no title", func(in *stories.Input) { in.Title = "<b> </b>" }, "title", "is required"},
			{"long title", func(in *stories.Input) { in.Title = strings.Repeat("é", 513) }, "title", "at most 512"},
			{"no sections", func(in *stories.Input) { in.Sections = nil }, "sections", "at least one section"},
			{"unknown section", func(in *stories.Input) { in.Sections = []string{"world", "nope"} }, "sections", "unknown section: nope"},
			{"future", func(in *stories.Input) { in.PublishedAt = clk.Now().Add(25 * time.Hour) }, "published_at", "more than a day in the future"},
			{"origin", func(in *stories.Input) { in.Origin = "rumour" }, "origin", "feed, api or editor"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				in := ok
				tc.edit(&in)
				_, _, err := svc.Ingest(context.Background(), in)
				var fe stories.FieldErrors
				if !errors.As(err, &fe) {
					t.Fatalf("want FieldErrors, got %v", err)
				}
				if !strings.Contains(fe[tc.field], tc.msg) {
					t.Fatalf("%s: got %q (all: %v)", tc.field, fe[tc.field], fe)
				}
			})
		}
		// Nearly a day ahead is allowed (embargoes, time zones).
		in := ok
		in.PublishedAt = clk.Now().Add(23 * time.Hour)
		if _, _, err := svc.Ingest(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		if n := len(allStories(t, store)); n != 1 || onNew.Load() != 1 {
			t.Fatalf("%d stories, OnNew %d times", n, onNew.Load())
		}
	})
}

func TestIngestUpsertsByURL(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		ctx := context.Background()
		secs := addSections(t, store, "world", "politics-uk")
		clk := newClock()
		var onNew atomic.Int32
		svc := newService(store, clk, &onNew)
		first, created, err := svc.Ingest(ctx, stories.Input{
			URL: "https://news.example.com/a", Title: "First", Summary: "<p>one</p>", Sections: []string{"world"},
			Author: "Ann", ImageURL: "https://cdn.example.com/1.jpg", Breaking: true,
		})
		if err != nil || !created {
			t.Fatalf("first: %v %v", created, err)
		}
		clk.Add(time.Hour)
		published := clk.Now().Add(-10 * time.Minute)
		again, created, err := svc.Ingest(ctx, stories.Input{
			URL: "https://NEWS.example.com:443/a#top", Title: "First, updated", Summary: "<p>two</p>",
			Sections: []string{"politics-uk", "world"}, Author: "Bob", ImageURL: "/2.jpg", PublishedAt: published,
		})
		if err != nil || created {
			t.Fatalf("again: %v %v", created, err)
		}
		if again.ID != first.ID || again.Title != "First, updated" || again.Summary != "<p>two</p>" || again.Author != "Bob" ||
			again.ImageURL != "https://news.example.com/2.jpg" || !again.PublishedAt.Equal(published) || !again.Breaking {
			t.Fatalf("not updated: %+v", again)
		}
		if got := sectionsOf(t, store, first.ID); !slices.Equal(got, []int64{secs["world"], secs["politics-uk"]}) &&
			!slices.Equal(got, []int64{secs["politics-uk"], secs["world"]}) {
			t.Fatalf("sections = %v", got)
		}
		// The same again changes nothing, not even updated_at.
		clk.Add(time.Hour)
		same, created, err := svc.Ingest(ctx, stories.Input{
			URL: "https://news.example.com/a", Title: "First, updated", Summary: "<p>two</p>",
			Sections: []string{"world", "politics-uk"}, Author: "Bob", ImageURL: "/2.jpg",
		})
		if err != nil || created || !same.UpdatedAt.Equal(again.UpdatedAt) || !same.PublishedAt.Equal(published) {
			t.Fatalf("no-op update: created=%v err=%v updated %v→%v published %v", created, err, again.UpdatedAt, same.UpdatedAt, same.PublishedAt)
		}
		if n := len(allStories(t, store)); n != 1 {
			t.Fatalf("%d rows for one URL", n)
		}
		if onNew.Load() != 1 {
			t.Fatalf("OnNew called %d times", onNew.Load())
		}
	})
}

func TestIngestMatchesGUIDWithinFeed(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		ctx := context.Background()
		addSections(t, store, "world")
		var onNew atomic.Int32
		svc := newService(store, newClock(), &onNew)
		feedA, err := svc.AddFeed(ctx, stories.FeedInput{URL: "https://news.example.com/a.rss", Section: "world"})
		if err != nil {
			t.Fatal(err)
		}
		feedB, err := svc.AddFeed(ctx, stories.FeedInput{URL: "https://news.example.com/b.rss", Section: "world"})
		if err != nil {
			t.Fatal(err)
		}
		in := func(feed *models.Feed, url, title string) stories.Input {
			return stories.Input{URL: url, GUID: "urn:story:1", Title: title, Sections: []string{"world"}, Origin: models.OriginFeed, FeedID: &feed.ID}
		}
		first, created, err := svc.Ingest(ctx, in(feedA, "https://news.example.com/draft-slug", "Draft"))
		if err != nil || !created {
			t.Fatal(created, err)
		}
		moved, created, err := svc.Ingest(ctx, in(feedA, "https://news.example.com/final-slug", "Final"))
		if err != nil || created || moved.ID != first.ID || moved.URL != "https://news.example.com/final-slug" || moved.Title != "Final" {
			t.Fatalf("GUID match: created=%v err=%v %+v", created, err, moved)
		}
		// The same GUID in another feed is another story.
		other, created, err := svc.Ingest(ctx, in(feedB, "https://news.example.com/elsewhere", "Other"))
		if err != nil || !created || other.ID == first.ID {
			t.Fatalf("other feed: created=%v err=%v", created, err)
		}
		if n := len(allStories(t, store)); n != 2 || onNew.Load() != 2 {
			t.Fatalf("%d stories, OnNew %d", n, onNew.Load())
		}
	})
}

func TestIngestConcurrentSameURL(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		addSections(t, store, "world")
		var onNew atomic.Int32
		svc := newService(store, newClock(), &onNew)
		var wg sync.WaitGroup
		var created atomic.Int32
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				_, c, err := svc.Ingest(context.Background(), stories.Input{
					URL: "https://news.example.com/race", Title: fmt.Sprintf("Take %d", i), Sections: []string{"world"},
				})
				if err != nil {
					errs <- err
				}
				if c {
					created.Add(1)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := len(allStories(t, store)); n != 1 || created.Load() != 1 || onNew.Load() != 1 {
			t.Fatalf("%d rows, %d created, OnNew %d", n, created.Load(), onNew.Load())
		}
	})
}

func TestListStories(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		ctx := context.Background()
		secs := addSections(t, store, "world", "sport")
		clk := newClock()
		var onNew atomic.Int32
		svc := newService(store, clk, &onNew)
		base := clk.Now().Add(-10 * time.Hour)
		// Ingested out of order: the list follows publication.
		for _, i := range []int{2, 0, 4, 1, 3} {
			section := "world"
			if i%2 == 1 {
				section = "sport"
			}
			if _, _, err := svc.Ingest(ctx, stories.Input{
				URL: fmt.Sprintf("https://news.example.com/%d", i), Title: fmt.Sprint(i), Sections: []string{section},
				PublishedAt: base.Add(time.Duration(i) * time.Hour), Origin: models.OriginEditor,
			}); err != nil {
				t.Fatal(err)
			}
		}
		titles := func(list []models.Story) string {
			var out []string
			for _, st := range list {
				out = append(out, st.Title)
			}
			return strings.Join(out, ",")
		}
		all := allStories(t, store)
		if got := titles(all); got != "4,3,2,1,0" {
			t.Fatalf("order %s", got)
		}
		page, err := store.ListStories(ctx, models.StoryFilter{Limit: 2, BeforeID: all[1].ID})
		if err != nil || titles(page) != "2,1" {
			t.Fatalf("page after 3: %s %v", titles(page), err)
		}
		world, err := store.ListStories(ctx, models.StoryFilter{SectionID: secs["world"], Origin: models.OriginEditor})
		if err != nil || titles(world) != "4,2,0" {
			t.Fatalf("world: %s %v", titles(world), err)
		}
		none, err := store.ListStories(ctx, models.StoryFilter{Origin: models.OriginFeed})
		if err != nil || len(none) != 0 {
			t.Fatalf("feed origin: %d %v", len(none), err)
		}
		byID, err := store.StoriesByID(ctx, []int64{all[0].ID, all[4].ID, 99999})
		if err != nil || len(byID) != 2 || byID[all[0].ID].Title != "4" {
			t.Fatalf("by id: %v %v", byID, err)
		}
		if _, err := store.StoryByID(ctx, 99999); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("missing story: %v", err)
		}
	})
}
