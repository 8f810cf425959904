package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"herald/accounts"
	"herald/models"
	"herald/models/testdb"
)

// apiCall sends an authenticated JSON request to a running Herald.
func apiCall(t *testing.T, key, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStoriesToMailboxes runs the whole product on one database: a story
// pushed by the CMS becomes an instant alert for "as it happens" readers;
// a daily digest made and sent through the API reaches the daily reader,
// whose one-click unsubscribe link works; the digest ends as sent.
func TestStoriesToMailboxes(t *testing.T) {
	for _, kind := range testdb.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			h := startHerald(t, testdb.DSN(t, kind), nil)
			ctx := context.Background()
			st := h.app.store
			key, _, err := accounts.New(st, accounts.Config{}).CreateAPIKey(ctx, "CMS", "*")
			if err != nil {
				t.Fatal(err)
			}
			secs, _ := st.SectionsBySlug(ctx, []string{"politics-uk"})
			sec := secs["politics-uk"].ID
			for email, freq := range map[string]string{"instant@example.com": "instant", "daily@example.com": "daily"} {
				sub := &models.Subscriber{Email: email, EmailNorm: email, Status: models.StatusActive}
				if err := st.CreateSubscribers(ctx, []*models.Subscriber{sub}); err != nil {
					t.Fatal(err)
				}
				if err := st.CreateSubscriptions(ctx, map[int64][]models.Subscription{sub.ID: {{SectionID: sec, Frequency: freq}}}); err != nil {
					t.Fatal(err)
				}
			}
			code, body := apiCall(t, key, http.MethodPost, h.url+"/api/v1/stories",
				`{"url":"https://news.example.com/politics/vote","title":"Commons backs the bill","summary":"<p>MPs voted <script>x()</script>late.</p>","sections":["politics-uk"]}`)
			if code != http.StatusCreated {
				t.Fatalf("story: %d %s", code, body)
			}
			alert := h.waitMail("instant@example.com", 1)
			if !strings.Contains(alert.header.Get("Subject"), "Commons backs the bill") || strings.Contains(alert.raw, "<script>") {
				t.Fatalf("alert: subject %q", alert.header.Get("Subject"))
			}

			code, body = apiCall(t, key, http.MethodPost, h.url+"/api/v1/digests", `{"kind":"daily","subject":"Morning briefing"}`)
			var d struct {
				ID     int64  `json:"id"`
				Status string `json:"status"`
				Sent   int64  `json:"sent"`
			}
			if code != http.StatusCreated || json.Unmarshal([]byte(body), &d) != nil {
				t.Fatalf("digest: %d %s", code, body)
			}
			if code, body = apiCall(t, key, http.MethodPost, fmt.Sprintf("%s/api/v1/digests/%d/send", h.url, d.ID), ""); code != http.StatusOK {
				t.Fatalf("send: %d %s", code, body)
			}
			m := h.waitMail("daily@example.com", 1)
			if m.header.Get("Subject") != "Morning briefing" || !strings.Contains(m.text, "Commons backs the bill") ||
				!strings.Contains(m.text, "https://news.example.com/politics/vote") {
				t.Fatalf("digest mail: %q\n%s", m.header.Get("Subject"), m.text)
			}
			if n := len(h.smtp.MessagesTo("instant@example.com")); n != 1 {
				t.Fatalf("the instant reader got %d messages, want only the alert", n)
			}
			deadline := time.Now().Add(15 * time.Second)
			for d.Status != models.DigestSent && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				_, body = apiCall(t, key, http.MethodGet, fmt.Sprintf("%s/api/v1/digests/%d", h.url, d.ID), "")
				_ = json.Unmarshal([]byte(body), &d)
			}
			if d.Status != models.DigestSent || d.Sent != 1 {
				t.Fatalf("digest after the send: %s", body)
			}
			unsub := strings.Trim(m.header.Get("List-Unsubscribe"), "<>")
			if resp := post(t, unsub, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"); resp.StatusCode != http.StatusOK {
				t.Fatalf("one-click from the digest: %d", resp.StatusCode)
			}
			if h.status("daily@example.com") != models.StatusUnsubscribed {
				t.Fatal("the digest's unsubscribe link did not unsubscribe")
			}
		})
	}
}
