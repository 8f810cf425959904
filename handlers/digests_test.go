package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"herald/models"
)

func TestDigestsAPI(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		ctx := context.Background()
		key, _, _ := h.acc.CreateAPIKey(ctx, "CMS", "*")
		auth := map[string]string{"Authorization": "Bearer " + key}
		call := func(method, path, body string) response {
			return h.do(nil, method, path, "application/json", body, auth)
		}
		if r := h.do(nil, http.MethodPost, "/api/v1/digests", "application/json", `{"kind":"daily"}`, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("no key: %d", r.status)
		}
		// Nothing new: 422 and nothing created.
		r := call(http.MethodPost, "/api/v1/digests", `{"kind":"daily"}`)
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "no new stories") {
			t.Fatalf("empty daily: %d %s", r.status, r.body)
		}
		for _, tt := range []struct{ body, field string }{
			{`{"kind":"hourly"}`, "kind"},
			{`{"kind":"manual"}`, "story_ids"},
			{`{"kind":"manual","story_ids":[999]}`, "story_ids"},
			{`{"kind":"manual","story_ids":[1],"sections":["nope"]}`, "sections"},
		} {
			if r := call(http.MethodPost, "/api/v1/digests", tt.body); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"`+tt.field+`"`) {
				t.Errorf("%s: %d %s", tt.body, r.status, r.body)
			}
		}
		if r := call(http.MethodPost, "/api/v1/digests", `{"kind":`); r.status != http.StatusBadRequest {
			t.Fatalf("malformed: %d", r.status)
		}
		// A reader and a story, then a daily digest of what is new.
		sub := &models.Subscriber{Email: "r@example.com", EmailNorm: "r@example.com", Status: models.StatusActive}
		if err := h.store.CreateSubscribers(ctx, []*models.Subscriber{sub}); err != nil {
			t.Fatal(err)
		}
		secs, _ := h.store.SectionsBySlug(ctx, []string{"politics-uk"})
		sec := secs["politics-uk"].ID
		if err := h.store.CreateSubscriptions(ctx, map[int64][]models.Subscription{sub.ID: {{SectionID: sec, Frequency: "daily"}}}); err != nil {
			t.Fatal(err)
		}
		st := &models.Story{URL: "https://n.example.com/a", Title: "A", Origin: models.OriginAPI, PublishedAt: h.clock.Now(), CreatedAt: h.clock.Now()}
		if _, err := h.store.UpsertStory(ctx, st, []int64{sec}); err != nil {
			t.Fatal(err)
		}
		r = call(http.MethodPost, "/api/v1/digests", `{"kind":"daily","subject":"Morning","intro":"Hello"}`)
		var d struct {
			ID         int64   `json:"id"`
			Status     string  `json:"status"`
			StoryIDs   []int64 `json:"story_ids"`
			Recipients int     `json:"recipients"`
			Pending    int64   `json:"pending"`
			Sent       int64   `json:"sent"`
		}
		if r.status != http.StatusCreated || json.Unmarshal([]byte(r.body), &d) != nil || d.Status != "draft" || len(d.StoryIDs) != 1 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		path := fmt.Sprintf("/api/v1/digests/%d", d.ID)
		for i := 0; i < 2; i++ { // sending twice sends nothing more
			r = call(http.MethodPost, path+"/send", "")
			if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &d) != nil || d.Status != "sending" || d.Recipients != 1 || d.Pending != 1 {
				t.Fatalf("send #%d: %d %s", i+1, r.status, r.body)
			}
		}
		if r := call(http.MethodPost, path+"/pause", ""); r.status != http.StatusOK || !strings.Contains(r.body, `"paused"`) {
			t.Fatalf("pause: %d %s", r.status, r.body)
		}
		if r := call(http.MethodPost, path+"/pause", ""); r.status != http.StatusConflict {
			t.Fatalf("pause twice: %d", r.status)
		}
		if r := call(http.MethodPost, path+"/resume", ""); r.status != http.StatusOK || !strings.Contains(r.body, `"sending"`) {
			t.Fatalf("resume: %d", r.status)
		}
		if r := call(http.MethodPost, path+"/test", `{"to":["editor@example.com"]}`); r.status != http.StatusAccepted {
			t.Fatalf("test: %d %s", r.status, r.body)
		}
		if r := call(http.MethodPost, path+"/test", `{"to":["not an address"]}`); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("test to a bad address: %d", r.status)
		}
		if r := call(http.MethodPost, path+"/cancel", ""); r.status != http.StatusOK || !strings.Contains(r.body, `"cancelled"`) {
			t.Fatalf("cancel: %d", r.status)
		}
		r = call(http.MethodGet, path, "")
		if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &d) != nil || d.Pending != 0 {
			t.Fatalf("get after cancel: %d %s", r.status, r.body)
		}
		if r := call(http.MethodGet, "/api/v1/digests/999", ""); r.status != http.StatusNotFound {
			t.Fatalf("unknown digest: %d", r.status)
		}
		// What the program did is in the audit log, under its key's name;
		// refused and failed calls are not.
		entries, err := h.store.AuditEntries(ctx, models.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i := len(entries) - 1; i >= 0; i-- {
			if !strings.HasPrefix(entries[i].UserEmail, "API key “CMS” (hld_") {
				t.Errorf("audit entry by %q", entries[i].UserEmail)
			}
			got = append(got, entries[i].Action)
		}
		want := "digest.create digest.send digest.send digest.pause digest.resume digest.test digest.cancel"
		if strings.Join(got, " ") != want {
			t.Errorf("audit actions %v, want %s", got, want)
		}
		_ = time.Second
	})
}
