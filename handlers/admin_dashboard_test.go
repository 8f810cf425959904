package handlers_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"herald/models"
)

func TestDashboard(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		ctx := context.Background()
		now := h.clock.Now()
		secs, err := h.store.Sections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sec := map[string]int64{}
		for _, s := range secs {
			sec[s.Slug] = s.ID
		}
		// 3 active and 2 pending readers of Politics UK (one also follows
		// World), 1 unsubscribed reader of World.
		type reader struct {
			status   string
			sections []string
			daysAgo  int
		}
		readers := []reader{
			{models.StatusActive, []string{"politics-uk", "world"}, 0},
			{models.StatusActive, []string{"politics-uk"}, 1},
			{models.StatusActive, []string{"politics-uk"}, 1},
			{models.StatusPending, []string{"politics-uk"}, 0},
			{models.StatusPending, []string{"politics-uk"}, 40},
			{models.StatusUnsubscribed, []string{"world"}, 2},
		}
		for i, r := range readers {
			at := now.AddDate(0, 0, -r.daysAgo)
			email := "reader" + string(rune('a'+i)) + "@example.com"
			sub := &models.Subscriber{Email: email, EmailNorm: email, Status: r.status, CreatedAt: at, UpdatedAt: at}
			if err := h.store.CreateSubscribers(ctx, []*models.Subscriber{sub}); err != nil {
				t.Fatal(err)
			}
			var subs []models.Subscription
			for _, s := range r.sections {
				subs = append(subs, models.Subscription{SubscriberID: sub.ID, SectionID: sec[s], Frequency: "daily", CreatedAt: at})
			}
			if err := h.store.CreateSubscriptions(ctx, map[int64][]models.Subscription{sub.ID: subs}); err != nil {
				t.Fatal(err)
			}
			events := []*models.ConsentEvent{{SubscriberID: sub.ID, Kind: models.ConsentSignup, At: at}}
			if r.status != models.StatusPending {
				events = append(events, &models.ConsentEvent{SubscriberID: sub.ID, Kind: models.ConsentConfirm, At: at.Add(time.Minute)})
			}
			if r.status == models.StatusUnsubscribed {
				events = append(events, &models.ConsentEvent{SubscriberID: sub.ID, Kind: models.ConsentUnsubscribe, At: at.Add(time.Hour)})
			}
			if err := h.store.AppendConsentEvents(ctx, events); err != nil {
				t.Fatal(err)
			}
		}
		// Things that need action: a broken feed, a paused send, mail retrying.
		feed := &models.Feed{URL: "https://news.example.com/broken.xml", SectionID: sec["world"], NextPollAt: now, CreatedAt: now}
		if err := h.store.CreateFeed(ctx, feed); err != nil {
			t.Fatal(err)
		}
		if err := h.store.RecordFeedPoll(ctx, feed.ID, models.FeedPoll{Status: "error", Error: "HTTP 500 from the feed", PolledAt: now, NextPollAt: now.Add(time.Hour), Failures: 1}); err != nil {
			t.Fatal(err)
		}
		d := &models.Digest{Key: "manual:1", Kind: models.DigestManual, Subject: "Morning briefing", Status: models.DigestPaused, PauseReason: "Paused: too many failures.", CreatedAt: now, UpdatedAt: now}
		if err := h.store.CreateDigest(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
		retry := &models.Delivery{Kind: models.KindTest, ToAddress: "x@example.com", Status: models.DeliveryPending, Attempts: 2, LastError: "451 4.3.0 try again later", NextAttemptAt: now, CreatedAt: now}
		if err := h.store.CreateDeliveries(ctx, []*models.Delivery{retry}); err != nil {
			t.Fatal(err)
		}

		editor, _ := h.adminClient(models.RoleEditor)
		r := h.do(editor, http.MethodGet, "/admin", "", "", nil)
		if r.status != http.StatusOK {
			t.Fatalf("dashboard: %d", r.status)
		}
		row := func(name string) string {
			m := regexp.MustCompile(`>` + name + `</a></td>((?:<td class="num">\d+</td>){3})`).FindStringSubmatch(r.body)
			if m == nil {
				t.Fatalf("no row for %s", name)
			}
			return regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[1], " ")
		}
		if got := strings.Fields(row("Politics UK")); strings.Join(got, ",") != "3,2,0" {
			t.Errorf("Politics UK active,pending,unsubscribed = %v", got)
		}
		if got := strings.Fields(row("World")); strings.Join(got, ",") != "1,0,1" {
			t.Errorf("World = %v", got)
		}
		for _, want := range []string{
			`<span class="value">3</span><span class="label">active readers`,
			`<span class="value">2</span><span class="label">waiting for confirmation`,
			"<svg class=\"chart\"", "<polyline",
			"Signups: 5", "Confirmations: 4", "Unsubscribes: 1", // the 40-day-old signup is outside 30 days
			"HTTP 500 from the feed", "Morning briefing", "Paused: too many failures.",
			"451 4.3.0 try again later",
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("dashboard lacks %q", want)
			}
		}
		r90 := h.do(editor, http.MethodGet, "/admin?days=90", "", "", nil)
		if !strings.Contains(r90.body, "Signups: 6") {
			t.Error("90-day chart does not count the 40-day-old signup")
		}
	})
}
