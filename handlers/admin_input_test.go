package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/models"
	"herald/stories"
)

// nastyValues are things a person (or a broken client) might type.
var nastyValues = []string{
	"", " ", "\x00", "\xff\xfe broken utf-8", strings.Repeat("x", 70_000), "-1", "0", "99999999999999999999",
	"<script>alert(1)</script>", "'; DROP TABLE subscribers; --", "a\r\nBcc: victim@example.com",
	"2026-13-45T25:61", "politics-uk", "daily", "javascript:alert(1)", "%zz",
}

// formFields are the field names the admin forms use.
var formFields = []string{
	"email", "password", "new_password", "new_password_confirm", "current_password", "role", "name", "slug",
	"description", "url", "title", "summary", "sections", "section", "frequency", "frequencies", "published_at",
	"image_url", "author", "subject", "intro", "story", "story_ids", "order", "kind", "at", "to", "addresses",
	"reader", "subscriber", "token", "scopes", "categories", "poll_interval", "send_confirmations", "reason",
}

// TestAdminFormsNeverFailOnInput posts odd values in every field to every
// admin form, on real objects and on ids that name nothing, and opens every
// admin page with odd query parameters: whatever is typed, the answer is
// never a server error.
func TestAdminFormsNeverFailOnInput(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		ctx := context.Background()
		admin, csrf := h.adminClient(models.RoleAdmin)
		ids := seedOneOfEach(t, h)
		seen := 0
		for _, r := range h.server.Routes() {
			if !strings.HasPrefix(r.Path, "/admin") || r.Path == "/admin/logout" || strings.HasPrefix(r.Path, "/admin/setup") || r.Path == "/admin/login" {
				continue
			}
			paths := []string{concrete(r.Path)}
			if strings.Contains(r.Path, ":id") {
				for prefix, id := range ids {
					if strings.HasPrefix(r.Path, prefix+"/:id") {
						paths = append(paths, strings.Replace(r.Path, ":id", strconv.FormatInt(id, 10), 1))
					}
				}
			}
			for _, path := range paths {
				for i, v := range nastyValues {
					if r.Method == http.MethodGet {
						q := url.Values{"q": {v}, "status": {v}, "section": {v}, "before": {v}, "after": {v}, "page": {v},
							"days": {v}, "action": {v}, "kind": {v}, "origin": {v}, "hidden": {v}, "view": {v}, "subscriber": {v}, "format": {v}}
						res := h.do(admin, http.MethodGet, path+"?"+q.Encode(), "", "", nil)
						if res.status >= 500 {
							t.Errorf("GET %s with %q: %d %.200s", path, clipQ(v), res.status, res.body)
						}
						continue
					}
					form := url.Values{}
					for _, f := range formFields {
						form.Set(f, v)
					}
					// Some values in lists, as checkboxes send them.
					form["sections"] = []string{v, "politics-uk"}
					form["story_ids"] = []string{v, strconv.FormatInt(ids["/admin/stories"], 10)}
					res := h.adminPost(admin, csrf, path, form)
					if res.status >= 500 {
						t.Errorf("POST %s with %q (value %d): %d %.200s", path, clipQ(v), i, res.status, res.body)
					}
				}
				seen++
			}
		}
		if seen < 40 {
			t.Fatalf("only %d admin routes were tried", seen)
		}
		// The session still works: nothing above broke the store or the server.
		if r := h.do(admin, http.MethodGet, "/admin", "", "", nil); r.status != http.StatusOK {
			t.Fatalf("dashboard after the walk: %d", r.status)
		}
		_ = ctx
	})
}

func clipQ(v string) string {
	if len(v) > 40 {
		return v[:40] + "…"
	}
	return v
}

// seedOneOfEach makes one object of each kind the admin pages edit, and
// returns their ids by the list page they belong to.
func seedOneOfEach(t *testing.T, h *harness) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	now := h.clock.Now()
	st, _, err := h.stories.Ingest(ctx, stories.Input{URL: "https://news.example.com/one", Title: "One story",
		Summary: "<p>Summary</p>", Sections: []string{"politics-uk"}, PublishedAt: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	d := &models.Digest{Key: "manual:seed", Kind: models.DigestManual, Subject: "Seeded", Status: models.DigestDraft, CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateDigest(ctx, d, []int64{st.ID}); err != nil {
		t.Fatal(err)
	}
	sub := &models.Subscriber{Email: "reader@example.com", EmailNorm: "reader@example.com", Status: models.StatusActive, CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateSubscribers(ctx, []*models.Subscriber{sub}); err != nil {
		t.Fatal(err)
	}
	secs, err := h.store.Sections(ctx)
	if err != nil || len(secs) == 0 {
		t.Fatal(err)
	}
	if err := h.store.CreateSubscriptions(ctx, map[int64][]models.Subscription{sub.ID: {{SectionID: secs[0].ID, Frequency: "daily", CreatedAt: now}}}); err != nil {
		t.Fatal(err)
	}
	feed := &models.Feed{URL: "https://news.example.com/feed.xml", SectionID: secs[0].ID, NextPollAt: now, CreatedAt: now}
	if err := h.store.CreateFeed(ctx, feed); err != nil {
		t.Fatal(err)
	}
	_, key, err := h.acc.CreateAPIKey(ctx, "CMS", "*")
	if err != nil {
		t.Fatal(err)
	}
	editor, err := h.acc.CreateUser(ctx, "desk@example.com", "a long password 1", models.RoleEditor)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]int64{
		"/admin/stories": st.ID, "/admin/digests": d.ID, "/admin/subscribers": sub.ID, "/admin/feeds": feed.ID,
		"/admin/sections": secs[0].ID, "/admin/keys": key.ID, "/admin/users": editor.ID,
	}
}
