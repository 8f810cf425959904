package delivery

import (
	"context"
	"testing"
	"time"

	"herald/models"
	"herald/models/testdb"
)

// leased commits ds as a writer that handed them over would: sending,
// leased for lease, one attempt.
func (e *env) leased(lease time.Duration, ds ...*models.Delivery) {
	e.t.Helper()
	until := e.clock.Now().Add(lease)
	for _, d := range ds {
		d.Status, d.LeaseUntil, d.Attempts = models.DeliverySending, &until, 1
	}
	e.create(ds...)
}

// TestHandedOverDeliveriesAreSentWithoutAClaim: rows committed already
// leased and handed over are sent once and recorded, although no claim
// could take them (they are not pending); a suppressed address's row is
// skipped as a claimed one would be.
func TestHandedOverDeliveriesAreSentWithoutAClaim(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		e := newEnv(t, dsn, store, 2)
		subs := e.subscribers("handed", 5)
		w, _ := e.start(e.config())
		waitFor(t, "the worker to take handed-over rows", func() bool {
			lease, _ := w.Reserve(0)
			return lease > 0
		})
		lease, n := w.Reserve(len(subs))
		if n != len(subs) || lease != 2*time.Minute {
			t.Fatalf("Reserve(%d) = %v, %d; want the whole request and the 2m lease", len(subs), lease, n)
		}
		ds := e.deliveries(models.KindConfirmation, subs...)
		ds[4].Kind = "unrendered"
		e.leased(lease, ds...)
		w.Deliver(context.Background(), ds, subs)
		for _, d := range ds[:4] {
			got := e.waitStatus(d.ID, models.DeliverySent)
			if got.Attempts != 1 || got.LeaseUntil != nil {
				t.Errorf("sent row %+v, want 1 attempt and no lease", got)
			}
		}
		if got := e.waitStatus(ds[4].ID, models.DeliveryFailed); got.LastError == "" {
			t.Errorf("a kind without a renderer fails with the reason: %+v", got)
		}
		for _, sub := range subs[:4] {
			if n := len(e.srv.MessagesTo(sub.Email)); n != 1 {
				t.Errorf("%s got %d messages, want 1", sub.Email, n)
			}
		}
	})
}

// TestHandoffRoomAndAStoppedWorker: Reserve grants no more than the room
// left, Release gives it back; a stopped worker grants nothing, and rows
// handed to it anyway are given back as pending for a claim; a row leased
// but never handed over (its writer died) goes out once the lease runs out.
func TestHandoffRoomAndAStoppedWorker(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		e := newEnv(t, dsn, store, 2)
		w := New(e.config())
		if _, n := w.Reserve(1); n != 0 {
			t.Fatalf("a worker not running granted %d", n)
		}
		w.startHandoff()
		if _, n := w.Reserve(handoffRoom - 3); n != handoffRoom-3 {
			t.Fatalf("granted %d of %d", n, handoffRoom-3)
		}
		if _, n := w.Reserve(10); n != 3 {
			t.Fatalf("with 3 places left, granted %d", n)
		}
		w.Release(5)
		if _, n := w.Reserve(10); n != 5 {
			t.Fatalf("after releasing 5, granted %d", n)
		}
		w.stopHandoff(make(chan outcome))

		subs := e.subscribers("late", 2)
		ds := e.deliveries(models.KindConfirmation, subs...)
		e.leased(2*time.Minute, ds...)
		w.Deliver(context.Background(), ds[:1], subs[:1])
		if got := e.delivery(ds[0].ID); got.Status != models.DeliveryPending || got.LeaseUntil != nil || got.Attempts != 0 {
			t.Fatalf("a row handed to a stopped worker: %+v, want pending, unleased, its attempt given back", got)
		}

		// A running worker sends the given-back row at once, and the
		// never-handed one after its lease.
		w2, _ := e.start(e.config())
		e.waitStatus(ds[0].ID, models.DeliverySent)
		if got := e.delivery(ds[1].ID); got.Status != models.DeliverySending {
			t.Fatalf("a row under a live lease was taken: %+v", got)
		}
		e.clock.Add(3 * time.Minute)
		w2.Wake()
		// The reclaim runs every half lease of real time; run one now.
		w2.reclaim(context.Background())
		w2.Wake()
		e.waitStatus(ds[1].ID, models.DeliverySent)
		for _, sub := range subs {
			if n := len(e.srv.MessagesTo(sub.Email)); n != 1 {
				t.Errorf("%s got %d messages, want 1", sub.Email, n)
			}
		}
	})
}
