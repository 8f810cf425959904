package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/config"
	"herald/delivery"
	"herald/digests"
	"herald/mailer"
	"herald/mailer/smtptest"
	"herald/models"
	"herald/models/testdb"
	"herald/templates"
)

// crashReaders is the size of the send that is killed half-way.
const crashReaders = 3000

// TestCrashMidSendLosesNothing kills a real herald serve process with
// SIGKILL in the middle of a digest to 3000 readers, starts a fresh one on
// the same database and checks the guarantee: nothing is lost, only what
// was in flight at the kill may be repeated, and the digest is not
// reported sent while anything is pending.
func TestCrashMidSendLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs herald processes")
	}
	for _, kind := range testdb.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			ctx := context.Background()
			dsn := testdb.DSN(t, kind)
			store := testdb.Open(t, dsn)
			w := seedSend(t, store, crashReaders, func(i int) string { return fmt.Sprintf("reader%04d@example.org", i) })
			key := testAPIKey(t, store)

			sm := smtptest.New(t)
			sm.SetDelay(time.Millisecond)
			env := childEnv(t, dsn, sm, "The Daily Herald <news@herald.example.com>")

			first := startChild(t, "first", env)
			first.post(key, fmt.Sprintf("/api/v1/digests/%d/send", w.digestID))

			// Kill at about 30%. The moment the threshold is seen the relay
			// turns slow, so that the kill lands inside the window however
			// late this goroutine is scheduled on a loaded machine.
			killAt := crashReaders * 3 / 10
			if msgs := sm.WaitForMessages(killAt, 30*time.Second); len(msgs) < killAt {
				t.Fatalf("only %d of %d messages arrived in 30 s before the kill\n%s", len(msgs), killAt, first.logs())
			}
			sm.SetDelay(time.Second)
			first.kill()
			// Let the relay finish the messages it had taken in (the dead
			// process never hears that they were accepted), and Postgres
			// notice the dropped connections.
			time.Sleep(1200 * time.Millisecond)
			atKill, err := store.DeliveryCounts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			before := len(sm.Messages())
			t.Logf("at the kill: %d messages at the relay, deliveries %v", before, atKill)
			if before < crashReaders/5 || before > crashReaders*6/10 {
				t.Fatalf("%d messages before the kill: outside 20%%–60%% of %d", before, crashReaders)
			}
			// Accepted by the relay but not recorded sent: these rows are
			// still sending, and will be sent again.
			inFlight := atKill[models.DeliverySending]
			unrecorded := int64(before) - atKill[models.DeliverySent]
			if unrecorded > inFlight || unrecorded < 0 {
				t.Fatalf("%d messages reached the relay but are not recorded sent, and %d rows were sending", unrecorded, inFlight)
			}

			// HERALD_DELIVERY_LEASE is 5 s in childEnv: the rows the first
			// process held are claimed again once that has passed.
			sm.SetDelay(time.Millisecond)
			second := startChild(t, "second", env)
			final := second.waitSent(t, key, w.digestID, 45*time.Second)

			perReader := map[string]int{}
			for _, m := range sm.Messages() {
				for _, to := range m.To {
					perReader[to]++
				}
			}
			var lost, twice, more int
			for _, e := range w.emails {
				switch n := perReader[e]; {
				case n == 0:
					lost++
				case n == 2:
					twice++
				case n > 2:
					more++
				}
			}
			t.Logf("after the restart: %d messages, %d readers got two (%d accepted but unrecorded at the kill); digest %+v",
				len(sm.Messages()), twice, unrecorded, final)
			if lost > 0 || more > 0 {
				t.Fatalf("%d readers got nothing and %d got three or more", lost, more)
			}
			if int64(twice) > inFlight || twice > 4*100 {
				t.Fatalf("%d readers got two messages, but only %d deliveries were in flight at the kill (cap 4×BatchSize = 400)", twice, inFlight)
			}
			if int64(twice) < unrecorded {
				t.Fatalf("%d readers got two messages, fewer than the %d accepted but unrecorded at the kill", twice, unrecorded)
			}
			if len(perReader) != crashReaders {
				t.Fatalf("messages went to %d addresses, want %d", len(perReader), crashReaders)
			}
			c, err := store.CountDigest(ctx, w.digestID)
			if err != nil {
				t.Fatal(err)
			}
			if c.Sent != crashReaders || c.Pending != 0 || c.Failed != 0 || c.Skipped != 0 {
				t.Fatalf("digest counts %+v, want %d sent and nothing else", c, crashReaders)
			}
		})
	}
}

// testClock is a clock the fault test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestSMTPFaultsDuringDigest sends a digest through the real renderer,
// worker and SMTP transport to a relay that refuses every 7th reader once
// with 451, drops the connection once at RCPT and once after DATA, and
// answers 550 5.1.1 for every address at bounce.example. The assembled app
// has no clock to inject, so the worker is driven directly with a test
// clock: the 451s wait out their back-off until the clock moves. Then every
// reader but bounce.example's has exactly one message, and those deliveries
// failed, their addresses are suppressed and their readers bounced.
func TestSMTPFaultsDuringDigest(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		ctx := context.Background()
		const n, bounced = 350, 10
		email := func(i int) string {
			if i < bounced {
				return fmt.Sprintf("gone%02d@bounce.example", i)
			}
			return fmt.Sprintf("reader%03d@example.org", i)
		}
		w := seedSend(t, store, n, email)
		sm := smtptest.New(t)
		var later []string // refused once with 451
		for i, e := range w.emails {
			switch {
			case i < bounced:
				sm.On(e, smtptest.Rule{Code: 550, Enhanced: "5.1.1", Message: "no such user"})
			case i%7 == 3:
				sm.On(e, smtptest.Rule{Code: 451, Enhanced: "4.3.0", Message: "try again later", Times: 1})
				later = append(later, e)
			}
		}
		sm.On(email(bounced+1), smtptest.Rule{Drop: true, Times: 1})
		sm.On(email(bounced+2), smtptest.Rule{Drop: true, AtData: true, Times: 1})

		clk := &testClock{t: time.Now().UTC().Truncate(time.Second)}
		worker := faultWorker(t, store, sm, clk)
		svc := digests.New(store, digests.Config{Now: clk.Now, OnEnqueue: worker.Wake})
		if _, err := svc.Start(ctx, w.digestID); err != nil {
			t.Fatal(err)
		}

		// Until the clock moves, the 451s wait: each was tried once.
		c := waitQuiet(t, store, sm, w.digestID, func(c models.DigestCounts) bool {
			return c.Sent+c.Failed >= int64(n-len(later)-2)
		})
		if c.Failed != bounced || c.Pending < int64(len(later)) {
			t.Fatalf("before the clock moves: %+v, want %d failed and at least %d pending", c, bounced, len(later))
		}
		for _, e := range later {
			ds, err := store.DeliveriesFor(ctx, w.ids[e], 5)
			if err != nil || len(ds) != 1 {
				t.Fatalf("%s: deliveries %v %v", e, ds, err)
			}
			d := ds[0]
			if d.Status != models.DeliveryPending || !d.NextAttemptAt.After(clk.Now().Add(20*time.Second)) ||
				!strings.Contains(d.LastError, "451") || sm.Attempts(e) != 1 || len(sm.MessagesTo(e)) != 0 {
				t.Fatalf("%s after a 451: %+v, %d attempts, %d messages; want pending with a back-off", e, d, sm.Attempts(e), len(sm.MessagesTo(e)))
			}
		}

		// Time passes, a minute at a time (less than the 2 min lease).
		for step := 0; c.Pending > 0; step++ {
			if step == 10 {
				t.Fatalf("still pending after 10 minutes: %+v", c)
			}
			clk.Add(time.Minute)
			worker.Wake()
			c = waitQuiet(t, store, sm, w.digestID, func(c models.DigestCounts) bool { return c.Pending == 0 })
		}
		if c.Sent != n-bounced || c.Failed != bounced {
			t.Fatalf("counts %+v, want %d sent and %d failed", c, n-bounced, bounced)
		}
		digests.NewScheduler(svc, digests.ScheduleConfig{}).Tick(ctx)
		if d, err := store.DigestByID(ctx, w.digestID); err != nil || d.Status != models.DigestSent {
			t.Fatalf("digest after the send: %+v %v", d, err)
		}

		norms := make([]string, len(w.emails))
		for i, e := range w.emails {
			norms[i] = strings.ToLower(e)
		}
		supp, err := store.Suppressions(ctx, norms)
		if err != nil {
			t.Fatal(err)
		}
		if len(supp) != bounced {
			t.Fatalf("suppressed %v, want only the %d bounce.example addresses", supp, bounced)
		}
		for i, e := range w.emails {
			got := len(sm.MessagesTo(e))
			sub, err := store.SubscriberByID(ctx, w.ids[e])
			if err != nil {
				t.Fatal(err)
			}
			if i >= bounced {
				if got != 1 || sub.Status != models.StatusActive {
					t.Fatalf("%s: %d messages, status %s; want exactly 1, active", e, got, sub.Status)
				}
				continue
			}
			ds, _ := store.DeliveriesFor(ctx, sub.ID, 5)
			if got != 0 || sub.Status != models.StatusBounced || supp[strings.ToLower(e)] != models.SuppressBounce ||
				len(ds) != 1 || ds[0].Status != models.DeliveryFailed || !strings.Contains(ds[0].LastError, "550") {
				t.Fatalf("%s: %d messages, status %s, suppression %q, deliveries %+v; want a failed delivery, bounced and suppressed",
					e, got, sub.Status, supp[strings.ToLower(e)], ds)
			}
		}
		for _, e := range later {
			if sm.Attempts(e) != 2 {
				t.Fatalf("%s was tried %d times, want 2", e, sm.Attempts(e))
			}
		}
		t.Logf("%d sent (%d after a 451), %d bounced; dropped at RCPT: %d attempts, after DATA: %d attempts; %d connections",
			c.Sent, len(later), c.Failed, sm.Attempts(email(bounced+1)), sm.Attempts(email(bounced+2)), sm.Connections())
	})
}

// faultWorker runs a delivery worker with the digest renderer, the real
// SMTP transport to sm and clk, until the test ends.
func faultWorker(t *testing.T, store *models.Store, sm *smtptest.Server, clk *testClock) *delivery.Worker {
	t.Helper()
	tpl, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	site := templates.Site{Name: "The Daily Herald", BaseURL: "https://herald.example.com", PostalAddress: "1 Example Street"}
	r, err := digests.NewRenderer(digests.RenderConfig{
		Store: store, Templates: tpl, Site: site, From: "The Daily Herald <news@herald.example.com>",
		ListID: "The Daily Herald <newsletter.herald.example.com>",
		Links: func(id int64) (string, string) {
			return fmt.Sprintf("%s/unsubscribe/u%d", site.BaseURL, id), fmt.Sprintf("%s/preferences/p%d", site.BaseURL, id)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := mailer.NewSMTP(mailer.SMTPConfig{Servers: []config.SMTPServer{sm.Config()}, Connections: 4, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	worker := delivery.New(delivery.Config{Store: store, Sender: pool, Concurrency: 4, PollInterval: 20 * time.Millisecond,
		Now: clk.Now, Renderers: map[string]delivery.Renderer{models.KindDigest: r}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = worker.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("the delivery worker did not stop within 40 s")
		}
	})
	return worker
}

// waitQuiet waits (at most 30 s) until ready holds, no delivery is being
// sent, and neither the counts nor the relay have changed for 300 ms.
func waitQuiet(t *testing.T, store *models.Store, sm *smtptest.Server, digestID int64, ready func(models.DigestCounts) bool) models.DigestCounts {
	t.Helper()
	ctx := context.Background()
	var last models.DigestCounts
	lastMsgs, stable := -1, 0
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := store.CountDigest(ctx, digestID)
		if err != nil {
			t.Fatal(err)
		}
		all, err := store.DeliveryCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		msgs := len(sm.Messages())
		if c == last && msgs == lastMsgs && all[models.DeliverySending] == 0 && ready(c) {
			if stable++; stable == 3 {
				return c
			}
		} else {
			stable = 0
		}
		last, lastMsgs = c, msgs
		if time.Now().After(deadline) {
			t.Fatalf("the send did not settle in 30 s: %+v, %v, %d messages", c, all, msgs)
		}
	}
}
