package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"herald/models"
)

func TestStoriesAPI(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		ctx := context.Background()
		key, _, err := h.acc.CreateAPIKey(ctx, "CMS", "*")
		if err != nil {
			t.Fatal(err)
		}
		readOnly, _, err := h.acc.CreateAPIKey(ctx, "reader", "stories:read sections:read")
		if err != nil {
			t.Fatal(err)
		}
		bearer := func(k string) map[string]string { return map[string]string{"Authorization": "Bearer " + k} }
		call := func(method, path, body string, headers map[string]string) response {
			return h.do(nil, method, path, "application/json", body, headers)
		}
		story := `{"url":"https://news.example.com/politics/vote#top","title":"Vote <b>tonight</b>","summary":"<p>MPs <a href=\"/politics\">vote</a><script>x()</script></p>",` +
			`"sections":["politics-uk"],"published_at":"2026-11-25T08:30:00Z","image_url":"/img/vote.jpg","author":"Ann","guid":"cms-1","breaking":true}`

		if r := call(http.MethodPost, "/api/v1/stories", story, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("no key: %d", r.status)
		}
		if r := call(http.MethodGet, "/api/v1/stories", "", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("no key, list: %d", r.status)
		}
		if r := call(http.MethodPost, "/api/v1/stories", story, bearer(readOnly)); r.status != http.StatusForbidden {
			t.Fatalf("read-only key writing: %d %s", r.status, r.body)
		}

		type storyOut struct {
			ID          int64    `json:"id"`
			URL         string   `json:"url"`
			Title       string   `json:"title"`
			Summary     string   `json:"summary"`
			ImageURL    string   `json:"image_url"`
			Sections    []string `json:"sections"`
			Origin      string   `json:"origin"`
			Breaking    bool     `json:"breaking"`
			PublishedAt string   `json:"published_at"`
		}
		r := call(http.MethodPost, "/api/v1/stories", story, bearer(key))
		var created storyOut
		if r.status != http.StatusCreated || json.Unmarshal([]byte(r.body), &created) != nil || created.ID == 0 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		if created.URL != "https://news.example.com/politics/vote" || created.Title != "Vote tonight" || created.Origin != models.OriginAPI ||
			created.Summary != `<p>MPs <a href="https://news.example.com/politics" rel="nofollow noopener">vote</a></p>` ||
			created.ImageURL != "https://news.example.com/img/vote.jpg" || !created.Breaking ||
			created.PublishedAt != "2026-11-25T08:30:00Z" || len(created.Sections) != 1 || created.Sections[0] != "politics-uk" {
			t.Fatalf("created: %+v", created)
		}
		select {
		case id := <-h.newStories:
			if id != created.ID {
				t.Fatalf("OnNew got story %d, want %d", id, created.ID)
			}
		default:
			t.Fatal("OnNew was not called for a new story")
		}

		// The same URL again updates the story: 200, same id, one row.
		r = call(http.MethodPost, "/api/v1/stories",
			`{"url":"https://NEWS.example.com/politics/vote","title":"Vote tonight: result","sections":["politics-uk","world"]}`, bearer(key))
		var updated storyOut
		if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &updated) != nil || updated.ID != created.ID ||
			updated.Title != "Vote tonight: result" || len(updated.Sections) != 2 {
			t.Fatalf("update: %d %s", r.status, r.body)
		}
		select {
		case id := <-h.newStories:
			t.Fatalf("OnNew called for an update (story %d)", id)
		default:
		}
		list, err := h.store.ListStories(ctx, models.StoryFilter{Limit: 100})
		if err != nil || len(list) != 1 {
			t.Fatalf("%d rows for one URL (%v)", len(list), err)
		}

		// Field errors.
		r = call(http.MethodPost, "/api/v1/stories",
			`{"url":"/relative","title":"  ","sections":["nope"],"published_at":"2099-01-01T00:00:00Z"}`, bearer(key))
		var invalid struct {
			Error  string            `json:"error"`
			Fields map[string]string `json:"fields"`
		}
		if r.status != http.StatusUnprocessableEntity || json.Unmarshal([]byte(r.body), &invalid) != nil || invalid.Error == "" ||
			!strings.Contains(invalid.Fields["url"], "absolute http or https") || invalid.Fields["title"] != "is required" ||
			invalid.Fields["sections"] != "unknown section: nope" || !strings.Contains(invalid.Fields["published_at"], "future") {
			t.Fatalf("invalid: %d %s", r.status, r.body)
		}
		r = call(http.MethodPost, "/api/v1/stories", `{"url":"https://news.example.com/x","title":"X","sections":[]}`, bearer(key))
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"sections":"choose at least one section"`) {
			t.Fatalf("no sections: %d %s", r.status, r.body)
		}
		r = call(http.MethodPost, "/api/v1/stories", `{"url":"https://news.example.com/x","title":"X","sections":["world"],"published_at":"yesterday"}`, bearer(key))
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"published_at"`) {
			t.Fatalf("bad time: %d %s", r.status, r.body)
		}
		if r := call(http.MethodPost, "/api/v1/stories", `{"url":`, bearer(key)); r.status != http.StatusBadRequest {
			t.Fatalf("malformed: %d %s", r.status, r.body)
		}
		if r := call(http.MethodPost, "/api/v1/stories", `{"url":"https://news.example.com/x","title":"X","sections":"world"}`, bearer(key)); r.status != http.StatusBadRequest {
			t.Fatalf("wrong type: %d %s", r.status, r.body)
		}

		// Listing, newest first, by section.
		r = call(http.MethodPost, "/api/v1/stories",
			`{"url":"https://news.example.com/world/summit","title":"Summit","sections":["world"],"published_at":"2026-11-25T08:45:00Z"}`, bearer(key))
		if r.status != http.StatusCreated {
			t.Fatalf("second story: %d %s", r.status, r.body)
		}
		var listed struct {
			Stories []storyOut `json:"stories"`
		}
		r = call(http.MethodGet, "/api/v1/stories?limit=10", "", bearer(readOnly))
		if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &listed) != nil || len(listed.Stories) != 2 ||
			listed.Stories[0].Title != "Summit" || listed.Stories[1].ID != created.ID {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		r = call(http.MethodGet, "/api/v1/stories?section=politics-uk", "", bearer(readOnly))
		listed.Stories = nil
		if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &listed) != nil || len(listed.Stories) != 1 || listed.Stories[0].ID != created.ID {
			t.Fatalf("list politics: %d %s", r.status, r.body)
		}
		if r := call(http.MethodGet, "/api/v1/stories?section=nope&limit=0", "", bearer(readOnly)); r.status != http.StatusUnprocessableEntity ||
			!strings.Contains(r.body, `"section"`) || !strings.Contains(r.body, `"limit"`) {
			t.Fatalf("bad list query: %d %s", r.status, r.body)
		}
	})
}

func TestFeedsAPI(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		ctx := context.Background()
		key, _, err := h.acc.CreateAPIKey(ctx, "ops", "feeds:write feeds:read")
		if err != nil {
			t.Fatal(err)
		}
		storiesOnly, _, err := h.acc.CreateAPIKey(ctx, "cms", "stories:write")
		if err != nil {
			t.Fatal(err)
		}
		bearer := func(k string) map[string]string { return map[string]string{"Authorization": "Bearer " + k} }
		call := func(method, body string, headers map[string]string) response {
			return h.do(nil, method, "/api/v1/feeds", "application/json", body, headers)
		}
		feed := `{"url":"https://news.example.com/politics.rss","section":"politics-uk","categories":{"World":"world"},"poll_interval":"5m"}`
		if r := call(http.MethodPost, feed, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("no key: %d", r.status)
		}
		if r := call(http.MethodPost, feed, bearer(storiesOnly)); r.status != http.StatusForbidden {
			t.Fatalf("wrong scope: %d", r.status)
		}
		if r := call(http.MethodGet, "", bearer(storiesOnly)); r.status != http.StatusForbidden {
			t.Fatalf("wrong scope, list: %d", r.status)
		}
		type feedOut struct {
			ID           int64             `json:"id"`
			URL          string            `json:"url"`
			Section      string            `json:"section"`
			Categories   map[string]string `json:"categories"`
			PollInterval string            `json:"poll_interval"`
			LastStatus   string            `json:"last_status"`
			LastPolledAt *string           `json:"last_polled_at"`
		}
		r := call(http.MethodPost, feed, bearer(key))
		var created feedOut
		if r.status != http.StatusCreated || json.Unmarshal([]byte(r.body), &created) != nil || created.ID == 0 ||
			created.Section != "politics-uk" || created.PollInterval != "5m" || created.Categories["world"] != "world" ||
			created.LastStatus != "pending" || created.LastPolledAt != nil {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		if r := call(http.MethodPost, feed, bearer(key)); r.status != http.StatusConflict {
			t.Fatalf("duplicate: %d %s", r.status, r.body)
		}
		r = call(http.MethodPost, `{"url":"notaurl","section":"nope","categories":{"X":"missing"},"poll_interval":"30s"}`, bearer(key))
		var invalid struct {
			Fields map[string]string `json:"fields"`
		}
		if r.status != http.StatusUnprocessableEntity || json.Unmarshal([]byte(r.body), &invalid) != nil ||
			invalid.Fields["url"] == "" || invalid.Fields["section"] == "" || invalid.Fields["categories"] == "" || invalid.Fields["poll_interval"] == "" {
			t.Fatalf("invalid: %d %s", r.status, r.body)
		}
		if r := call(http.MethodPost, `{"url":"https://news.example.com/w.rss","section":"world","poll_interval":"48h"}`, bearer(key)); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("long interval: %d %s", r.status, r.body)
		}
		if r := call(http.MethodPost, `[`, bearer(key)); r.status != http.StatusBadRequest {
			t.Fatalf("malformed: %d", r.status)
		}
		var listed struct {
			Feeds []feedOut `json:"feeds"`
		}
		r = call(http.MethodGet, "", bearer(key))
		if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &listed) != nil || len(listed.Feeds) != 1 ||
			listed.Feeds[0].ID != created.ID || listed.Feeds[0].URL != "https://news.example.com/politics.rss" {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
	})
}
