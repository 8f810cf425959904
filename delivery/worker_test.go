package delivery

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"herald/mailer/smtptest"
	"herald/models"
	"herald/models/testdb"
)

func TestTemporaryFailureIsRetriedAndSentOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		e := newEnv(t, dsn, store, 4)
		sub := e.subscribers("greylisted", 1)[0]
		e.srv.On(sub.Email, smtptest.Rule{Code: 451, Enhanced: "4.7.1", Message: "greylisted", Times: 1})
		d := e.enqueue(models.KindDigest, sub)[0]
		w, _ := e.start(e.config())

		var got *models.Delivery
		waitFor(t, "the first attempt to be recorded", func() bool {
			got = e.delivery(d.ID)
			return got.Status == models.DeliveryPending && got.Attempts == 1
		})
		if !strings.Contains(got.LastError, "451") {
			t.Errorf("LastError = %q, want the 451 reply", got.LastError)
		}
		wait := got.NextAttemptAt.Sub(e.clock.Now())
		if wait < 24*time.Second || wait > 36*time.Second {
			t.Errorf("first retry in %v, want 30s ±20%%", wait)
		}

		e.clock.Add(time.Minute)
		w.Wake()
		got = e.waitStatus(d.ID, models.DeliverySent)
		if got.Attempts != 2 || got.SentAt == nil || got.LastError != "" || got.LeaseUntil != nil {
			t.Errorf("sent row = %+v, want 2 attempts, a sent time, no error, no lease", got)
		}
		if n := len(e.srv.MessagesTo(sub.Email)); n != 1 {
			t.Errorf("delivered %d times, want 1", n)
		}
	})
}

func TestHardBounceSuppressesAndIsNeverRetried(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		e := newEnv(t, dsn, store, 4)
		subs := e.subscribers("gone", 2)
		bounced, other := subs[0], subs[1]
		e.srv.On(bounced.Email, smtptest.Rule{Code: 550, Enhanced: "5.1.1", Message: "no such user"})
		d := e.enqueue(models.KindDigest, bounced)[0]
		w, _ := e.start(e.config())

		got := e.waitStatus(d.ID, models.DeliveryFailed)
		if got.Attempts != 1 || !strings.Contains(got.LastError, "550") {
			t.Errorf("failed row = %+v, want 1 attempt and the 550 reply", got)
		}
		ctx := context.Background()
		supp, err := store.Suppressions(ctx, []string{bounced.EmailNorm})
		if err != nil || supp[bounced.EmailNorm] != models.SuppressBounce {
			t.Errorf("suppressions = %v (%v), want %s", supp, err, models.SuppressBounce)
		}
		sub, err := store.SubscriberByID(ctx, bounced.ID)
		if err != nil || sub.Status != models.StatusBounced {
			t.Errorf("subscriber = %+v (%v), want bounced", sub, err)
		}

		// A day later, with the worker busy on other mail: still one attempt.
		e.clock.Add(24 * time.Hour)
		d2 := e.enqueue(models.KindDigest, other)[0]
		w.Wake()
		e.waitStatus(d2.ID, models.DeliverySent)
		if n := e.srv.Attempts(bounced.Email); n != 1 {
			t.Errorf("bounced address tried %d times, want 1", n)
		}
		if got := e.delivery(d.ID); got.Status != models.DeliveryFailed || got.Attempts != 1 {
			t.Errorf("bounced row changed: %+v", got)
		}
	})
}

func TestManyDeliveriesEachSentOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		const n = 500
		e := newEnv(t, dsn, store, 4)
		subs := e.subscribers("many", n)
		e.enqueue(models.KindDigest, subs...)
		e.start(e.config())

		waitFor(t, "every delivery to be sent", func() bool { return e.counts()[models.DeliverySent] == n })
		if c := e.counts(); len(c) != 1 {
			t.Errorf("statuses = %v, want only sent", c)
		}
		perRcpt := map[string]int{}
		for _, m := range e.srv.Messages() {
			for _, to := range m.To {
				perRcpt[to]++
			}
		}
		for _, sub := range subs {
			if perRcpt[sub.Email] != 1 {
				t.Errorf("%s got %d messages, want 1", sub.Email, perRcpt[sub.Email])
			}
		}
		if c := e.srv.Connections(); c > 4 {
			t.Errorf("used %d SMTP connections, want at most 4", c)
		}
	})
}

func TestShutdownMidSendLosesNothing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		const n = 200
		e := newEnv(t, dsn, store, 4)
		e.srv.SetDelay(20 * time.Millisecond)
		subs := e.subscribers("shutdown", n)
		e.enqueue(models.KindDigest, subs...)
		_, stop := e.start(e.config())
		e.srv.WaitForMessages(12, 10*time.Second)
		stop()

		c := e.counts()
		if c[models.DeliverySending] != 0 || c[models.DeliverySent]+c[models.DeliveryPending] != n {
			t.Fatalf("after shutdown: %v, want only sent and pending, %d in all", c, n)
		}
		if c[models.DeliveryPending] == 0 {
			t.Fatalf("after shutdown: %v; the test needs some deliveries left over", c)
		}
		// Exactly the messages the server accepted are marked sent, and
		// the rows given back carry no attempt.
		received := map[string]int{}
		for _, m := range e.srv.Messages() {
			received[m.To[0]]++
		}
		for _, sub := range subs {
			ds, err := store.DeliveriesFor(context.Background(), sub.ID, 1)
			if err != nil || len(ds) != 1 {
				t.Fatal(err)
			}
			d := ds[0]
			if (d.Status == models.DeliverySent) != (received[sub.Email] == 1) || received[sub.Email] > 1 {
				t.Errorf("%s: status %s, received %d times", sub.Email, d.Status, received[sub.Email])
			}
			if d.Status == models.DeliveryPending && d.Attempts != 0 {
				t.Errorf("%s: pending with %d attempts, want the attempt given back", sub.Email, d.Attempts)
			}
		}

		// A new worker finishes the job; nobody gets a second copy.
		e.srv.SetDelay(0)
		e.start(e.config())
		waitFor(t, "the rest to be sent", func() bool { return e.counts()[models.DeliverySent] == n })
		received = map[string]int{}
		for _, m := range e.srv.Messages() {
			received[m.To[0]]++
		}
		for _, sub := range subs {
			if received[sub.Email] != 1 {
				t.Errorf("%s received %d messages, want 1", sub.Email, received[sub.Email])
			}
		}
	})
}

func TestSuppressedAndUnrenderableDeliveries(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		e := newEnv(t, dsn, store, 2)
		ctx := context.Background()
		subs := e.subscribers("supp", 7)
		bounced, erasedDigest, erasedConfirm, manual, skip, broken, plain := subs[0], subs[1], subs[2], subs[3], subs[4], subs[5], subs[6]
		for sub, reason := range map[*models.Subscriber]string{
			bounced: models.SuppressBounce, erasedDigest: models.SuppressErased,
			erasedConfirm: models.SuppressErased, manual: models.SuppressManual,
		} {
			if err := store.Suppress(ctx, sub.EmailNorm, reason, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		ds := e.deliveries(models.KindDigest, bounced, erasedDigest, manual, skip, broken, plain)
		ds[3].Data, ds[4].Data = "skip", "broken"
		e.create(ds...)
		confirm := e.enqueue(models.KindConfirmation, erasedConfirm)[0]
		unknown := e.enqueue("carrier-pigeon", plain)[0]
		editor := &models.Delivery{Kind: models.KindTest, ToAddress: "editor@example.net", Status: models.DeliveryPending,
			NextAttemptAt: e.clock.Now(), MessageID: "test.1@news.example.com", CreatedAt: e.clock.Now()}
		e.create(editor)
		e.start(e.config())

		want := map[int64]string{
			ds[0].ID: models.DeliverySkipped, ds[1].ID: models.DeliverySkipped, ds[2].ID: models.DeliverySkipped,
			ds[3].ID: models.DeliverySkipped, ds[4].ID: models.DeliveryFailed, ds[5].ID: models.DeliverySent,
			confirm.ID: models.DeliverySent, unknown.ID: models.DeliveryFailed, editor.ID: models.DeliverySent,
		}
		for id, status := range want {
			e.waitStatus(id, status)
		}
		if got := e.delivery(ds[0].ID).LastError; !strings.Contains(got, "bounce") {
			t.Errorf("suppressed row's LastError = %q, want the reason", got)
		}
		if got := e.delivery(ds[4].ID).LastError; !strings.Contains(got, "template exploded") {
			t.Errorf("render failure's LastError = %q", got)
		}
		rcpts := map[string]bool{}
		for _, m := range e.srv.Messages() {
			rcpts[m.To[0]] = true
		}
		wantRcpts := map[string]bool{plain.Email: true, erasedConfirm.Email: true, "editor@example.net": true}
		if fmt.Sprint(rcpts) != fmt.Sprint(wantRcpts) {
			t.Errorf("server received mail for %v, want %v", rcpts, wantRcpts)
		}
	})
}

func TestExpiredLeaseIsSentAgain(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		e := newEnv(t, dsn, store, 2)
		subs := e.subscribers("lease", 2)
		now := e.clock.Now()
		expired, held := now.Add(-time.Minute), now.Add(time.Minute)
		ds := e.enqueue(models.KindDigest, subs...)
		// Left sending by a worker that died, and one another worker holds.
		testdb.Exec(t, dsn, "UPDATE deliveries SET status = ?, attempts = 1, lease_until = ? WHERE id = ?",
			models.DeliverySending, expired, ds[0].ID)
		testdb.Exec(t, dsn, "UPDATE deliveries SET status = ?, attempts = 1, lease_until = ? WHERE id = ?",
			models.DeliverySending, held, ds[1].ID)
		e.start(e.config())

		got := e.waitStatus(ds[0].ID, models.DeliverySent)
		if got.Attempts != 2 {
			t.Errorf("attempts = %d, want 2", got.Attempts)
		}
		if n := len(e.srv.MessagesTo(subs[0].Email)); n != 1 {
			t.Errorf("re-sent %d times, want 1", n)
		}
		if d := e.delivery(ds[1].ID); d.Status != models.DeliverySending || len(e.srv.MessagesTo(subs[1].Email)) != 0 {
			t.Errorf("a row under a live lease was touched: %+v", d)
		}
	})
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		e := newEnv(t, dsn, store, 1)
		sub := e.subscribers("flaky", 1)[0]
		e.srv.On(sub.Email, smtptest.Rule{Code: 421, Enhanced: "4.4.2", Message: "try later"})
		d := e.enqueue(models.KindDigest, sub)[0]
		cfg := e.config()
		cfg.MaxAttempts = 3
		w, _ := e.start(cfg)
		for attempt := 1; attempt < 3; attempt++ {
			waitFor(t, fmt.Sprintf("attempt %d", attempt), func() bool {
				got := e.delivery(d.ID)
				return got.Status == models.DeliveryPending && got.Attempts == attempt
			})
			e.clock.Add(time.Hour)
			w.Wake()
		}
		got := e.waitStatus(d.ID, models.DeliveryFailed)
		if got.Attempts != 3 || !strings.Contains(got.LastError, "gave up after 3 attempts") {
			t.Errorf("row = %+v, want failed after 3 attempts", got)
		}
	})
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		base    time.Duration
	}{{1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute}, {8, 64 * time.Minute}, {12, 6 * time.Hour}, {40, 6 * time.Hour}}
	for _, tt := range tests {
		for range 50 {
			got := backoff(tt.attempt)
			lo := time.Duration(float64(tt.base) * 0.8)
			hi := min(time.Duration(float64(tt.base)*1.2), 6*time.Hour)
			if got < lo || got > hi {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.attempt, got, lo, hi)
			}
		}
	}
}
