package digests_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"herald/digests"
	"herald/mailer/smtptest"
	"herald/models"
	"herald/models/testdb"
)

// TestDigestEndToEnd: readers with different sections and frequencies, a
// story in two sections, a daily digest sent through the worker to an SMTP
// server: exactly the right readers, each once, with only their stories,
// the shared story once, escaped HTML and the list headers.
func TestDigestEndToEnd(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		ctx := context.Background()
		w := newWorld(t, store)
		w.reader("pol@example.com", models.StatusActive, "politics-uk:daily")
		w.reader("wld@example.com", models.StatusActive, "world:daily")
		w.reader("both@example.com", models.StatusActive, "politics-uk:daily", "world:daily")
		w.reader("weekly@example.com", models.StatusActive, "politics-uk:weekly")
		w.reader("instant@example.com", models.StatusActive, "politics-uk:instant")
		w.reader("biz@example.com", models.StatusActive, "business:daily")
		w.reader("gone@example.com", models.StatusUnsubscribed, "politics-uk:daily")
		w.reader("pending@example.com", models.StatusPending, "world:daily")

		now := w.clock.Now()
		old := w.story("https://news.example.com/old", "Old story", now.Add(-48*time.Hour), "politics-uk")
		s1 := w.story("https://news.example.com/p1", "Tory & Labour <clash> on budget", now.Add(-3*time.Hour), "politics-uk")
		s2 := w.story("https://news.example.com/w1", "Summit ends", now.Add(-2*time.Hour), "world")
		s3 := w.story("https://news.example.com/pw", "UK envoy at the summit", now.Add(-1*time.Hour), "politics-uk", "world")

		d, err := w.svc.Create(ctx, digests.Input{Kind: models.DigestDaily})
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := store.DigestStoryIDs(ctx, d.ID)
		if len(ids) != 3 || ids[0] != s3 || ids[1] != s2 || ids[2] != s1 {
			t.Fatalf("digest stories %v, want newest first [%d %d %d] and not the old one %d", ids, s3, s2, s1, old)
		}
		w.startWorker()
		if _, err := w.svc.Start(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		c := w.waitDone(d.ID)
		if c.Sent != 3 || c.Skipped != 1 || c.Failed != 0 || c.Pending != 0 {
			t.Fatalf("counts %+v, want 3 sent (pol, wld, both) and 1 skipped (biz)", c)
		}
		got, _ := store.DigestByID(ctx, d.ID)
		if got.Recipients != 3 {
			t.Fatalf("recipients %d", got.Recipients)
		}
		want := map[string][]string{
			"pol@example.com":  {"Tory &amp; Labour &lt;clash&gt; on budget", "UK envoy at the summit"},
			"wld@example.com":  {"Summit ends", "UK envoy at the summit"},
			"both@example.com": {"Tory &amp; Labour &lt;clash&gt; on budget", "Summit ends", "UK envoy at the summit"},
		}
		all := []string{"Tory &amp; Labour &lt;clash&gt; on budget", "Summit ends", "UK envoy at the summit"}
		for addr, titles := range want {
			msgs := w.mailTo(addr)
			if len(msgs) != 1 {
				t.Fatalf("%s got %d messages, want 1", addr, len(msgs))
			}
			m := msgs[0]
			for _, title := range all {
				n := strings.Count(m.html, title)
				wantN := 0
				for _, t2 := range titles {
					if t2 == title {
						wantN = 1
					}
				}
				if n != wantN {
					t.Errorf("%s: %q appears %d times in the HTML, want %d", addr, title, n, wantN)
				}
			}
			// CSS from the stylesheet is inlined (once per edition).
			if !strings.Contains(m.html, `class="story-title" style="`) || !strings.Contains(m.html, "Georgia") {
				t.Errorf("%s: story styles not inlined:\n%.1500s", addr, m.html)
			}
			if strings.Contains(m.html, "<clash>") {
				t.Errorf("%s: unescaped title in HTML", addr)
			}
			if !strings.Contains(m.text, "Tory & Labour <clash>") && addr != "wld@example.com" {
				t.Errorf("%s: text part lacks the plain title:\n%s", addr, m.text)
			}
			h := m.header
			if !strings.HasPrefix(h.Get("List-Unsubscribe"), "<https://herald.example.com/unsubscribe/u") ||
				h.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || h.Get("List-Id") == "" ||
				h.Get("Feedback-Id") == "" || h.Get("Auto-Submitted") != "auto-generated" {
				t.Errorf("%s: headers %v", addr, h)
			}
			if !strings.Contains(m.html, "1 Example Street") || !strings.Contains(m.html, "Unsubscribe") {
				t.Errorf("%s: footer lacks the postal address or the unsubscribe link", addr)
			}
			if len(m.html) > 102*1024 {
				t.Errorf("%s: HTML is %d bytes, over Gmail's clipping limit", addr, len(m.html))
			}
		}
		for _, addr := range []string{"weekly@example.com", "instant@example.com", "biz@example.com", "gone@example.com", "pending@example.com"} {
			if n := len(w.smtp.MessagesTo(addr)); n != 0 {
				t.Errorf("%s got %d messages, want none", addr, n)
			}
		}
		sched := digests.NewScheduler(w.svc, digests.ScheduleConfig{})
		sched.Tick(ctx)
		if got, _ := store.DigestByID(ctx, d.ID); got.Status != models.DigestSent || got.FinishedAt == nil {
			t.Fatalf("after the send: status %s", got.Status)
		}
		// Sending twice sends nothing more.
		if _, err := w.svc.Start(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		if c2, _ := store.CountDigest(ctx, d.ID); c2 != c {
			t.Fatalf("second send changed the counts: %+v → %+v", c, c2)
		}
		// Nothing new since: no second daily digest.
		if _, err := w.svc.Create(ctx, digests.Input{Kind: models.DigestDaily}); !errors.Is(err, digests.ErrNothingNew) {
			t.Fatalf("second daily digest: %v, want ErrNothingNew", err)
		}
		// A story that reaches Herald late, published before the last
		// digest, is still in the next one.
		w.clock.Set(now.Add(time.Hour))
		late := w.story("https://news.example.com/late", "Late arrival", now.Add(-5*time.Hour), "world")
		d2, err := w.svc.Create(ctx, digests.Input{Kind: models.DigestDaily})
		if err != nil {
			t.Fatal(err)
		}
		if ids, _ := store.DigestStoryIDs(ctx, d2.ID); len(ids) != 1 || ids[0] != late {
			t.Fatalf("late story digest: %v, want [%d]", ids, late)
		}
	})
}

func TestPauseResumeCancelAndTest(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		ctx := context.Background()
		w := newWorld(t, store)
		for i := 0; i < 20; i++ {
			w.reader(strings.Repeat("r", 1)+string(rune('a'+i))+"@example.com", models.StatusActive, "politics-uk:daily")
		}
		s1 := w.story("https://news.example.com/p1", "One", w.clock.Now().Add(-time.Hour), "politics-uk")
		d, err := w.svc.Create(ctx, digests.Input{Kind: models.DigestManual, StoryIDs: []int64{s1}, Subject: "Manual"})
		if err != nil {
			t.Fatal(err)
		}
		// Pausing a draft is refused; start with no worker running, pause,
		// and the worker claims nothing.
		if err := w.svc.Pause(ctx, d.ID, "x"); !errors.Is(err, digests.ErrBadState) {
			t.Fatalf("pause a draft: %v", err)
		}
		if _, err := w.svc.Start(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		if err := w.svc.Pause(ctx, d.ID, "editor"); err != nil {
			t.Fatal(err)
		}
		w.startWorker()
		time.Sleep(300 * time.Millisecond) // the worker polls every 50 ms: it must claim nothing
		if c, _ := store.CountDigest(ctx, d.ID); c.Sent != 0 || c.Pending != 20 {
			t.Fatalf("paused digest: %+v", c)
		}
		// A test send goes out although the digest is paused, and does not
		// touch its counters.
		if _, err := w.svc.SendTest(ctx, d.ID, []string{"editor@example.com"}, w.readers["ra@example.com"]); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(w.smtp.MessagesTo("editor@example.com")) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		tm := w.mailTo("editor@example.com")
		if len(tm) != 1 || !strings.HasPrefix(tm[0].header.Get("Subject"), "[Test] Manual") || !strings.Contains(tm[0].html, "One") {
			t.Fatalf("test message: %d", len(tm))
		}
		if c, _ := store.CountDigest(ctx, d.ID); c.Pending != 20 {
			t.Fatalf("test send changed the counters: %+v", c)
		}
		if err := w.svc.Resume(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		if c := w.waitDone(d.ID); c.Sent != 20 {
			t.Fatalf("after resume: %+v", c)
		}
		// Cancel: what has not gone is skipped.
		d2, _ := w.svc.Create(ctx, digests.Input{Kind: models.DigestManual, StoryIDs: []int64{s1}, Subject: "Second"})
		if err := w.svc.Cancel(ctx, d2.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Start(ctx, d2.ID); !errors.Is(err, digests.ErrBadState) {
			t.Fatalf("start a cancelled digest: %v", err)
		}
	})
}

// TestSchedulerOncePerPeriod: with an injected clock, one daily digest per
// period however often the scheduler runs (and from two schedulers), none
// when nothing is new, and drafts only in review mode.
func TestSchedulerOncePerPeriod(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		ctx := context.Background()
		w := newWorld(t, store)
		w.reader("pol@example.com", models.StatusActive, "politics-uk:daily")
		cfg := digests.ScheduleConfig{DailyAt: 7 * time.Hour, WeeklyDay: time.Monday, WeeklyAt: 7 * time.Hour}
		a, b := digests.NewScheduler(w.svc, cfg), digests.NewScheduler(w.svc, cfg)
		day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) // a Wednesday
		w.clock.Set(day.Add(6 * time.Hour))
		w.story("https://news.example.com/a", "A", day.Add(5*time.Hour), "politics-uk")
		a.Tick(ctx)
		if _, err := store.DigestByKey(ctx, "daily:2026-11-25"); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("a digest before 07:00: %v", err)
		}
		for _, at := range []time.Duration{7 * time.Hour, 7*time.Hour + time.Minute, 7*time.Hour + 30*time.Minute} {
			w.clock.Set(day.Add(at))
			a.Tick(ctx)
			b.Tick(ctx)
		}
		ds, _ := store.DigestsByStatus(ctx, models.DigestSending)
		sent, _ := store.DigestsByStatus(ctx, models.DigestSent)
		var all []models.Digest
		for _, d := range append(ds, sent...) {
			if d.Kind == models.DigestDaily {
				all = append(all, d)
			}
		}
		if len(all) != 1 || all[0].Key != "daily:2026-11-25" {
			t.Fatalf("digests after the 07:00 ticks: %+v", all)
		}
		// Next day: nothing new, nothing made.
		w.clock.Set(day.Add(31 * time.Hour))
		a.Tick(ctx)
		if _, err := store.DigestByKey(ctx, "daily:2026-11-26"); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("a digest with nothing new: %v", err)
		}
		// Review mode: a draft, not sent.
		w.story("https://news.example.com/b", "B", day.Add(47*time.Hour), "politics-uk")
		w.clock.Set(day.Add(55 * time.Hour))
		r := digests.NewScheduler(w.svc, digests.ScheduleConfig{DailyAt: 7 * time.Hour, Review: true})
		r.Tick(ctx)
		d, err := store.DigestByKey(ctx, "daily:2026-11-27")
		if err != nil || d.Status != models.DigestDraft {
			t.Fatalf("review mode: %+v %v", d, err)
		}
	})
}

// TestAlertsCappedPerReader: each new story is an alert to the instant
// readers of its sections, at most AlertsPerDay (2 here) per reader a day.
func TestAlertsCappedPerReader(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		ctx := context.Background()
		w := newWorld(t, store)
		w.reader("fast@example.com", models.StatusActive, "politics-uk:instant")
		w.reader("slow@example.com", models.StatusActive, "politics-uk:daily")
		sched := digests.NewScheduler(w.svc, digests.ScheduleConfig{DailyAt: 23 * time.Hour})
		for i, title := range []string{"First", "Second", "Third"} {
			w.story("https://news.example.com/"+title, title, w.clock.Now().Add(-time.Minute), "politics-uk")
			w.clock.Set(w.clock.Now().Add(time.Minute))
			sched.Tick(ctx)
			_ = i
		}
		var pending int64
		for i := 1; i <= 3; i++ {
			d, err := store.DigestByKey(ctx, "alert:"+string(rune('0'+i)))
			if err != nil {
				t.Fatalf("alert for story %d: %v", i, err)
			}
			c, _ := store.CountDigest(ctx, d.ID)
			pending += c.Pending
		}
		if pending != 2 {
			t.Fatalf("alerts queued for the instant reader: %d, want the cap of 2", pending)
		}
		// The next day the cap resets; the held-back story rides along with
		// the next alert, once.
		w.clock.Set(w.clock.Now().Add(25 * time.Hour))
		w.story("https://news.example.com/Fourth", "Fourth", w.clock.Now().Add(-time.Minute), "politics-uk")
		sched.Tick(ctx)
		w.startWorker()
		deadline := time.Now().Add(10 * time.Second)
		for len(w.smtp.MessagesTo("fast@example.com")) < 3 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // nothing more may arrive
		msgs := w.mailTo("fast@example.com")
		if len(msgs) != 3 {
			for i := 1; i <= 4; i++ {
				d, err := store.DigestByKey(ctx, fmt.Sprintf("alert:%d", i))
				c, _ := store.CountDigest(ctx, d.ID)
				t.Logf("alert %d: %v %+v %+v", i, err, d, c)
			}
			t.Fatalf("instant reader got %d alerts, want 3", len(msgs))
		}
		third := 0
		for _, m := range msgs {
			third += strings.Count(m.text, "] Third")
			if strings.Contains(m.text, "Fourth") && !strings.Contains(m.text, "Third") {
				t.Fatalf("the next alert does not carry the held-back story:\n%s", m.text)
			}
		}
		if third != 1 {
			for _, m := range msgs {
				t.Logf("%s", m.text)
			}
			t.Fatalf("the held-back story arrived %d times, want once", third)
		}
		if n := len(w.smtp.MessagesTo("slow@example.com")); n != 0 {
			t.Fatalf("the daily reader got %d alerts", n)
		}
	})
}

// TestErrorCapPausesRunawaySend: a relay that refuses everything pauses
// the send, with the reason on the digest, instead of failing every reader.
func TestErrorCapPausesRunawaySend(t *testing.T) {
	store := testdb.New(t)
	ctx := context.Background()
	w := newWorld(t, store)
	// Enough readers that the send outlasts many scheduler ticks even on
	// a busy machine: the cap must catch it part-way.
	const readers = 400
	for i := 0; i < readers; i++ {
		w.reader(fmt.Sprintf("r%d@example.com", i), models.StatusActive, "politics-uk:daily")
	}
	s1 := w.story("https://news.example.com/p1", "One", w.clock.Now().Add(-time.Hour), "politics-uk")
	w.startWorker()
	w.smtp.SetDelay(10 * time.Millisecond) // slow enough that the cap stops the send half-way
	for i := 0; i < readers; i++ {
		w.smtp.On(fmt.Sprintf("r%d@example.com", i), smtptest.Rule{Code: 554, Enhanced: "5.7.1", Message: "relay access denied"})
	}
	d, err := w.svc.Create(ctx, digests.Input{Kind: models.DigestManual, StoryIDs: []int64{s1}})
	if err != nil {
		t.Fatal(err)
	}
	sched := digests.NewScheduler(w.svc, digests.ScheduleConfig{ErrorCapMin: 20})
	if _, err := w.svc.Start(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var got *models.Digest
	for time.Now().Before(deadline) {
		sched.Tick(ctx)
		got, _ = store.DigestByID(ctx, d.ID)
		if got.Status == models.DigestPaused {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.Status != models.DigestPaused || !strings.Contains(got.PauseReason, "failed") {
		t.Fatalf("status %s, reason %q; want paused by the error cap", got.Status, got.PauseReason)
	}
	c, _ := store.CountDigest(ctx, d.ID)
	if c.Failed < 20 || c.Pending == 0 {
		t.Fatalf("counts %+v: the cap should stop the send with readers left", c)
	}
}

// TestLargestDigestUnderGmailClip: a digest at the 50-story cap, each with
// a long summary and an image, stays under the 102 KB at which Gmail
// clips a message.
func TestLargestDigestUnderGmailClip(t *testing.T) {
	store := testdb.New(t)
	ctx := context.Background()
	w := newWorld(t, store)
	w.reader("big@example.com", models.StatusActive, "politics-uk:daily")
	var ids []int64
	for i := 0; i < 50; i++ {
		st := &models.Story{URL: fmt.Sprintf("https://news.example.com/politics/2026/11/25/a-rather-long-story-slug-number-%d", i),
			Title:    fmt.Sprintf("Ministers face a long night of votes on the budget, part %d of the series", i),
			Summary:  "<p>" + strings.Repeat("A sentence about what happened in the chamber today. ", 8) + "</p>",
			ImageURL: fmt.Sprintf("https://images.example.com/2026/11/25/photo-%d-1200x800.jpg", i), Author: "Eleanor Marsh",
			Origin: models.OriginAPI, PublishedAt: w.clock.Now(), CreatedAt: w.clock.Now()}
		if _, err := store.UpsertStory(ctx, st, []int64{w.secs["politics-uk"]}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.ID)
	}
	d, err := w.svc.Create(ctx, digests.Input{Kind: models.DigestManual, StoryIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	w.startWorker()
	if _, err := w.svc.Start(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if c := w.waitDone(d.ID); c.Sent != 1 {
		t.Fatalf("counts %+v", c)
	}
	m := w.mailTo("big@example.com")[0]
	if n := strings.Count(m.html, `class="story-title"`); n != 50 {
		t.Fatalf("%d stories in the email, want 50", n)
	}
	if len(m.html) >= 102*1024 {
		t.Fatalf("HTML part is %d bytes, at or over Gmail's 102 KB clipping limit", len(m.html))
	}
	t.Logf("HTML part of a 50-story digest: %d bytes", len(m.html))
}

// A story an editor hid after it was put in a digest reaches nobody: a
// reader whose only story in the digest is hidden is skipped, not sent an
// empty message, and the recipient count leaves them out.
func TestHiddenStoryReachesNobody(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		ctx := context.Background()
		w := newWorld(t, store)
		w.reader("politics@example.com", models.StatusActive, "politics-uk:daily")
		w.reader("world@example.com", models.StatusActive, "world:daily")
		kept := w.story("https://news.example.com/kept", "Kept", w.clock.Now().Add(-time.Hour), "politics-uk")
		hidden := w.story("https://news.example.com/hidden", "Hidden", w.clock.Now().Add(-time.Hour), "world")
		d, err := w.svc.Create(ctx, digests.Input{Kind: models.DigestManual, StoryIDs: []int64{kept, hidden}, Subject: "Both"})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.SetStoryHidden(ctx, hidden, true, w.clock.Now()); err != nil {
			t.Fatal(err)
		}
		started, err := w.svc.Start(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if started.Recipients != 1 {
			t.Fatalf("recipients = %d, want 1 (the hidden story's reader is not one)", started.Recipients)
		}
		c, err := store.CountDigest(ctx, d.ID)
		if err != nil || c.Pending != 1 || c.Skipped != 1 {
			t.Fatalf("counts %+v, %v: want 1 pending and 1 skipped", c, err)
		}
	})
}

// Once a digest has been sent and nothing of it is in flight, its counts
// are kept on the digest and read from there: lists of digests do not
// count their deliveries again.
func TestEndedDigestKeepsItsCounts(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		ctx := context.Background()
		w := newWorld(t, store)
		w.reader("a@example.com", models.StatusActive, "politics-uk:daily")
		w.reader("b@example.com", models.StatusActive, "politics-uk:daily")
		w.reader("c@example.com", models.StatusActive, "world:daily")
		s1 := w.story("https://news.example.com/kept-counts", "One", w.clock.Now().Add(-time.Hour), "politics-uk")
		w.startWorker()
		d, err := w.svc.Create(ctx, digests.Input{Kind: models.DigestManual, StoryIDs: []int64{s1}, Subject: "Counted once"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Start(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		live := w.waitDone(d.ID)
		if live.Sent != 2 || live.Skipped != 1 {
			t.Fatalf("live counts %+v", live)
		}
		if _, err := store.FinishDigests(ctx, w.clock.Now()); err != nil {
			t.Fatal(err)
		}
		got, err := store.DigestByID(ctx, d.ID)
		if err != nil || got.Status != models.DigestSent || !got.CountsFinal || got.FinalSent != 2 || got.FinalSkipped != 1 || got.FinalFailed != 0 {
			t.Fatalf("after finishing: %v %+v", err, got)
		}
		// The kept counts are what readers of the counts get, whatever the
		// rows say later.
		testdb.Exec(t, dsn, "UPDATE deliveries SET status = ? WHERE digest_id = ?", models.DeliveryFailed, d.ID)
		if c, err := store.CountDigest(ctx, d.ID); err != nil || c.Sent != 2 || c.Skipped != 1 || c.Failed != 0 {
			t.Fatalf("counts after the rows changed: %+v %v", c, err)
		}
	})
}
