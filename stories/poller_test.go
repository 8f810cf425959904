package stories_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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

// feedSite serves feeds from memory and remembers what the poller sent.
type feedSite struct {
	mu    sync.Mutex
	feeds map[string]*servedFeed
	srv   *httptest.Server
}

type servedFeed struct {
	body, etag, lastModified, contentType string
	status                                int
	hang                                  bool // answer only when the client gives up
	requests                              []http.Header
	notModified                           int
}

func newFeedSite(t *testing.T) *feedSite {
	fs := &feedSite{feeds: map[string]*servedFeed{}}
	fs.srv = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.srv.Close)
	return fs
}

func (fs *feedSite) serve(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	f, ok := fs.feeds[r.URL.Path]
	if !ok {
		fs.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	f.requests = append(f.requests, r.Header.Clone())
	body, etag, lastMod, ct, status, hang := f.body, f.etag, f.lastModified, f.contentType, f.status, f.hang
	notModified := (etag != "" && r.Header.Get("If-None-Match") == etag) ||
		(etag == "" && lastMod != "" && r.Header.Get("If-Modified-Since") == lastMod)
	if notModified {
		f.notModified++
	}
	fs.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	if status != 0 {
		http.Error(w, "feed broke", status)
		return
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	if lastMod != "" {
		w.Header().Set("Last-Modified", lastMod)
	}
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write([]byte(body))
}

func (fs *feedSite) set(path string, f *servedFeed) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if old, ok := fs.feeds[path]; ok {
		f.requests, f.notModified = old.requests, old.notModified
	}
	fs.feeds[path] = f
}

func (fs *feedSite) requests(path string) []http.Header {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.Clone(fs.feeds[path].requests)
}

func (fs *feedSite) url(path string) string { return fs.srv.URL + path }

type rssItem struct{ title, link, guid, category, pubDate, description string }

func rss(items ...rssItem) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>News</title><link>https://news.example.com/</link>`)
	for _, it := range items {
		fmt.Fprintf(&b, `<item><title>%s</title><link>%s</link><guid isPermaLink="false">%s</guid>`, it.title, it.link, it.guid)
		if it.category != "" {
			fmt.Fprintf(&b, `<category>%s</category>`, it.category)
		}
		if it.pubDate != "" {
			fmt.Fprintf(&b, `<pubDate>%s</pubDate>`, it.pubDate)
		}
		fmt.Fprintf(&b, `<description><![CDATA[%s]]></description></item>`, it.description)
	}
	b.WriteString(`</channel></rss>`)
	return b.String()
}

const atomFeed = `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>World desk</title><id>urn:world</id><updated>2026-11-25T07:00:00Z</updated>
  <entry>
    <title type="html">Summit &lt;em&gt;ends&lt;/em&gt;</title>
    <link rel="alternate" href="https://news.example.com/world/summit"/>
    <id>urn:world:1</id><updated>2026-11-25T07:00:00Z</updated>
    <author><name>Wanda Desk</name></author>
    <summary type="html">&lt;p&gt;Leaders &lt;a href="/world"&gt;met&lt;/a&gt;&lt;/p&gt;</summary>
  </entry>
  <entry>
    <title>Storm passes</title>
    <link rel="alternate" href="https://news.example.com/world/storm"/>
    <id>urn:world:2</id><published>2026-11-24T20:00:00Z</published><updated>2026-11-25T06:00:00Z</updated>
    <content type="html">&lt;p&gt;Calm again.&lt;/p&gt;</content>
  </entry>
</feed>`

func firstRSS() string {
	return rss(
		rssItem{"Vote tonight", "https://news.example.com/politics/vote", "p-1", "Politics", "Wed, 25 Nov 2026 08:00:00 GMT", `<p>MPs <a href="/politics">vote</a></p><script>x()</script>`},
		rssItem{"Match report", "https://news.example.com/sport/match", "s-1", "Football", "Wed, 25 Nov 2026 07:30:00 GMT", "Goals."},
	)
}

type pollFixture struct {
	store  *models.Store
	svc    *stories.Service
	poller *stories.Poller
	clk    *clock
	site   *feedSite
	secs   map[string]int64
	onNew  *atomic.Int32
}

func newPollFixture(t *testing.T, store *models.Store, cfg stories.PollerConfig) *pollFixture {
	f := &pollFixture{store: store, clk: newClock(), site: newFeedSite(t), onNew: &atomic.Int32{}}
	f.secs = addSections(t, store, "world", "politics-uk", "sport")
	f.svc = newService(store, f.clk, f.onNew)
	cfg.Now = f.clk.Now
	f.poller = stories.NewPoller(store, f.svc, cfg)
	return f
}

func (f *pollFixture) addFeed(t *testing.T, in stories.FeedInput) *models.Feed {
	t.Helper()
	feed, err := f.svc.AddFeed(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return feed
}

func (f *pollFixture) feed(t *testing.T, id int64) *models.Feed {
	t.Helper()
	feed, err := f.store.FeedByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return feed
}

func (f *pollFixture) pollDue(t *testing.T, want int) {
	t.Helper()
	n, err := f.poller.PollDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("polled %d feeds, want %d", n, want)
	}
}

func storyByURL(t *testing.T, store *models.Store, url string) *models.Story {
	t.Helper()
	for _, st := range allStories(t, store) {
		if st.URL == url {
			return &st
		}
	}
	t.Fatalf("no story %s", url)
	return nil
}

func TestPollerConditionalGetAndNewItems(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		f := newPollFixture(t, store, stories.PollerConfig{})
		site := f.site
		site.set("/rss", &servedFeed{body: firstRSS(), etag: `"v1"`, contentType: "application/rss+xml"})
		site.set("/atom", &servedFeed{body: atomFeed, lastModified: "Wed, 25 Nov 2026 07:00:00 GMT", contentType: "application/atom+xml"})
		site.set("/broken", &servedFeed{status: http.StatusInternalServerError})
		rssFeed := f.addFeed(t, stories.FeedInput{URL: site.url("/rss"), Section: "world", PollInterval: "5m",
			Categories: map[string]string{"politics": "politics-uk", "Football": "sport"}})
		atom := f.addFeed(t, stories.FeedInput{URL: site.url("/atom"), Section: "world", PollInterval: "5m"})
		broken := f.addFeed(t, stories.FeedInput{URL: site.url("/broken"), Section: "world", PollInterval: "5m"})
		t0 := f.clk.Now()

		// First round: every feed is due.
		f.pollDue(t, 3)
		got := f.feed(t, rssFeed.ID)
		if got.LastStatus != models.FeedOK || got.LastNew != 2 || got.ETag != `"v1"` || got.Failures != 0 ||
			!got.NextPollAt.Equal(t0.Add(5*time.Minute)) || got.LastPolledAt == nil {
			t.Fatalf("rss after first poll: %+v", got)
		}
		got = f.feed(t, atom.ID)
		if got.LastStatus != models.FeedOK || got.LastNew != 2 || got.LastModified == "" {
			t.Fatalf("atom after first poll: %+v", got)
		}
		bad := f.feed(t, broken.ID)
		if bad.LastStatus != models.FeedError || !strings.Contains(bad.LastError, "500") || bad.Failures != 1 ||
			!bad.NextPollAt.Equal(t0.Add(10*time.Minute)) {
			t.Fatalf("broken after first poll: %+v", bad)
		}
		if n := len(allStories(t, store)); n != 4 || f.onNew.Load() != 4 {
			t.Fatalf("%d stories, OnNew %d", n, f.onNew.Load())
		}
		vote := storyByURL(t, store, "https://news.example.com/politics/vote")
		if vote.Origin != models.OriginFeed || vote.FeedID == nil || *vote.FeedID != rssFeed.ID || vote.GUID != "p-1" ||
			!vote.PublishedAt.Equal(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)) ||
			vote.Summary != `<p>MPs <a href="https://news.example.com/politics" rel="nofollow noopener">vote</a></p>` {
			t.Fatalf("vote: %+v", vote)
		}
		if s := sectionsOf(t, store, vote.ID); !slices.Equal(s, []int64{f.secs["politics-uk"]}) {
			t.Fatalf("Politics category went to %v", s)
		}
		if s := sectionsOf(t, store, storyByURL(t, store, "https://news.example.com/sport/match").ID); !slices.Equal(s, []int64{f.secs["sport"]}) {
			t.Fatalf("Football category went to %v", s)
		}
		summit := storyByURL(t, store, "https://news.example.com/world/summit")
		if summit.Title != "Summit ends" || summit.Author != "Wanda Desk" || !strings.Contains(summit.Summary, `href="https://news.example.com/world"`) ||
			!summit.PublishedAt.Equal(time.Date(2026, 11, 25, 7, 0, 0, 0, time.UTC)) {
			t.Fatalf("summit: %+v", summit)
		}
		if s := sectionsOf(t, store, summit.ID); !slices.Equal(s, []int64{f.secs["world"]}) {
			t.Fatalf("unmapped story went to %v", s)
		}
		storm := storyByURL(t, store, "https://news.example.com/world/storm")
		if storm.Summary != "<p>Calm again.</p>" || !storm.PublishedAt.Equal(time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)) {
			t.Fatalf("storm: %+v", storm)
		}

		// Second round: the validators go back and the server answers 304.
		f.clk.Add(5 * time.Minute)
		f.pollDue(t, 2) // the broken feed is backing off
		rssReqs, atomReqs := site.requests("/rss"), site.requests("/atom")
		if len(rssReqs) != 2 || rssReqs[1].Get("If-None-Match") != `"v1"` {
			t.Fatalf("rss second request headers: %v", rssReqs[len(rssReqs)-1])
		}
		if len(atomReqs) != 2 || atomReqs[1].Get("If-Modified-Since") != "Wed, 25 Nov 2026 07:00:00 GMT" {
			t.Fatalf("atom second request headers: %v", atomReqs[len(atomReqs)-1])
		}
		if rssReqs[0].Get("If-None-Match") != "" || rssReqs[0].Get("User-Agent") == "" {
			t.Fatalf("first request: %v", rssReqs[0])
		}
		for _, id := range []int64{rssFeed.ID, atom.ID} {
			if got := f.feed(t, id); got.LastStatus != models.FeedNotModified || got.LastNew != 0 || got.Failures != 0 {
				t.Fatalf("feed %d after 304: %+v", id, got)
			}
		}
		if got := f.feed(t, rssFeed.ID); got.ETag != `"v1"` {
			t.Fatalf("304 lost the ETag: %q", got.ETag)
		}
		if n := len(allStories(t, store)); n != 4 {
			t.Fatalf("%d stories after 304", n)
		}

		// Third round: the RSS feed gains one item; the broken feed is due
		// again and backs off further.
		site.set("/rss", &servedFeed{etag: `"v2"`, contentType: "application/rss+xml", body: rss(
			rssItem{"Result", "https://news.example.com/politics/result", "p-2", "Politics", "Wed, 25 Nov 2026 09:05:00 GMT", "Counted."},
			rssItem{"Vote tonight", "https://news.example.com/politics/vote", "p-1", "Politics", "Wed, 25 Nov 2026 08:00:00 GMT", `<p>MPs <a href="/politics">vote</a></p>`},
			rssItem{"Match report", "https://news.example.com/sport/match", "s-1", "Football", "Wed, 25 Nov 2026 07:30:00 GMT", "Goals."},
		)})
		f.clk.Add(5 * time.Minute)
		f.pollDue(t, 3)
		got = f.feed(t, rssFeed.ID)
		if got.LastStatus != models.FeedOK || got.LastNew != 1 || got.ETag != `"v2"` {
			t.Fatalf("rss after new item: %+v", got)
		}
		if n := len(allStories(t, store)); n != 5 || f.onNew.Load() != 5 {
			t.Fatalf("%d stories, OnNew %d after one new item", n, f.onNew.Load())
		}
		bad = f.feed(t, broken.ID)
		if bad.Failures != 2 || !bad.NextPollAt.Equal(f.clk.Now().Add(20*time.Minute)) {
			t.Fatalf("broken backs off: %+v", bad)
		}

		// Recovery resets the failures.
		site.set("/broken", &servedFeed{body: rss(), contentType: "application/rss+xml"})
		fixed, err := f.poller.PollNow(context.Background(), broken.ID)
		if err != nil || fixed.LastStatus != models.FeedOK || fixed.Failures != 0 || fixed.LastError != "" {
			t.Fatalf("recovered: %+v %v", fixed, err)
		}
	})
}

func TestPollerBrokenFeedsDoNotStopOthers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		f := newPollFixture(t, store, stories.PollerConfig{MaxBody: 4096, Timeout: 500 * time.Millisecond})
		site := f.site
		big := rss(rssItem{"Big", "https://news.example.com/big", "b", "", "", strings.Repeat("x", 8000)})
		site.set("/big", &servedFeed{body: big, contentType: "application/rss+xml"})
		site.set("/invalid", &servedFeed{body: `<rss><channel><item><title>oops`, contentType: "application/rss+xml"})
		site.set("/html", &servedFeed{body: `<html><body>Not a feed</body></html>`, contentType: "text/html"})
		site.set("/slow", &servedFeed{hang: true})
		site.set("/good", &servedFeed{contentType: "application/rss+xml", body: rss(
			rssItem{"", "https://news.example.com/bridge", "u-1", "", "", "<p>The <b>bridge</b> reopened today.</p>"},
			rssItem{"Vote tonight", "https://news.example.com/politics/vote", "p-1", "Politics", "", ""},
		)})
		ids := map[string]int64{}
		for _, path := range []string{"/big", "/invalid", "/html", "/slow", "/good"} {
			ids[path] = f.addFeed(t, stories.FeedInput{URL: site.url(path), Section: "world", PollInterval: "1h"}).ID
		}
		t0 := f.clk.Now()
		f.pollDue(t, 5)
		for path, want := range map[string]string{"/big": "larger than 4096 bytes", "/invalid": "parse feed", "/html": "parse feed", "/slow": "no answer within"} {
			got := f.feed(t, ids[path])
			if got.LastStatus != models.FeedError || !strings.Contains(got.LastError, want) || got.Failures != 1 ||
				!got.NextPollAt.Equal(t0.Add(2*time.Hour)) {
				t.Errorf("%s: status %q error %q failures %d next %v", path, got.LastStatus, got.LastError, got.Failures, got.NextPollAt)
			}
		}
		if good := f.feed(t, ids["/good"]); good.LastStatus != models.FeedOK || good.LastNew != 2 {
			t.Fatalf("good feed: %+v", good)
		}
		if n := len(allStories(t, store)); n != 2 {
			t.Fatalf("%d stories", n)
		}
		// An item without a title is titled with the start of its text, and
		// one without a date is published when first seen.
		if bridge := storyByURL(t, store, "https://news.example.com/bridge"); bridge.Title != "The bridge reopened today." || !bridge.PublishedAt.Equal(t0) {
			t.Fatalf("untitled item: %+v", bridge)
		}
	})
}

func TestPollerClaimsEachFeedOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		f := newPollFixture(t, store, stories.PollerConfig{})
		for i := range 6 {
			path := fmt.Sprintf("/f%d", i)
			f.site.set(path, &servedFeed{body: rss(rssItem{path, "https://news.example.com" + path, path, "", "", ""}), contentType: "application/rss+xml"})
			f.addFeed(t, stories.FeedInput{URL: f.site.url(path), Section: "world"})
		}
		// Three instances on one database, in the same round.
		other1 := stories.NewPoller(store, f.svc, stories.PollerConfig{Now: f.clk.Now})
		other2 := stories.NewPoller(store, f.svc, stories.PollerConfig{Now: f.clk.Now})
		var wg sync.WaitGroup
		var total atomic.Int32
		for _, p := range []*stories.Poller{f.poller, other1, other2} {
			wg.Go(func() {
				n, err := p.PollDue(context.Background())
				if err != nil {
					t.Error(err)
				}
				total.Add(int32(n))
			})
		}
		wg.Wait()
		if total.Load() != 6 {
			t.Fatalf("%d polls of 6 feeds", total.Load())
		}
		for i := range 6 {
			if n := len(f.site.requests(fmt.Sprintf("/f%d", i))); n != 1 {
				t.Fatalf("feed %d fetched %d times", i, n)
			}
		}
		if n := len(allStories(t, store)); n != 6 {
			t.Fatalf("%d stories", n)
		}
	})
}

func TestPollerRun(t *testing.T) {
	store := testdb.New(t)
	f := newPollFixture(t, store, stories.PollerConfig{Tick: 10 * time.Millisecond})
	f.site.set("/rss", &servedFeed{body: firstRSS(), contentType: "application/rss+xml"})
	feed := f.addFeed(t, stories.FeedInput{URL: f.site.url("/rss"), Section: "world"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.poller.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for f.feed(t, feed.ID).LastStatus == "" {
		if time.Now().After(deadline) {
			t.Fatal("Run never polled the due feed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if n := len(allStories(t, store)); n != 2 {
		t.Fatalf("%d stories", n)
	}
}

func TestAddFeedValidation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		f := newPollFixture(t, store, stories.PollerConfig{})
		ctx := context.Background()
		_, err := f.svc.AddFeed(ctx, stories.FeedInput{URL: "ftp://x", Section: "nope", PollInterval: "30s",
			Categories: map[string]string{"Politics": "missing"}})
		fe, ok := err.(stories.FieldErrors)
		if !ok || !strings.Contains(fe["url"], "http") || !strings.Contains(fe["section"], "unknown section: nope") ||
			!strings.Contains(fe["poll_interval"], "between 1m and 24h") || !strings.Contains(fe["categories"], "missing") {
			t.Fatalf("got %v", err)
		}
		for _, bad := range []string{"25h", "soon", "59s"} {
			if _, err := f.svc.AddFeed(ctx, stories.FeedInput{URL: "https://news.example.com/rss", Section: "world", PollInterval: bad}); err == nil {
				t.Fatalf("interval %s accepted", bad)
			}
		}
		feed, err := f.svc.AddFeed(ctx, stories.FeedInput{URL: "https://news.example.com/rss", Section: "world"})
		if err != nil || feed.PollInterval != int(stories.DefaultPollInterval/time.Second) || feed.SectionID != f.secs["world"] {
			t.Fatalf("add: %+v %v", feed, err)
		}
		if _, err := f.svc.AddFeed(ctx, stories.FeedInput{URL: "https://news.example.com/rss", Section: "sport"}); err != stories.ErrFeedExists {
			t.Fatalf("duplicate: %v", err)
		}
	})
}
