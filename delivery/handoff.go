package delivery

import (
	"context"
	"log/slog"
	"time"

	"herald/models"
)

// handoffRoom is how many handed-off deliveries the worker holds at once.
const handoffRoom = 1024

// Handing a delivery over saves its claim: a writer that commits
// deliveries it knows are due now (a signup's confirmation) can commit them
// already leased to this worker (status sending, LeaseUntil now + the
// lease, one attempt), and pass them over in memory once committed. The
// worker sends them as it sends claimed rows. Nothing is lost if the
// process dies in between: the rows are in the database, and their lease
// runs out and another claim takes them.
//
// Reserve comes first, inside the writer's transaction, so that Deliver
// never waits: it says how many the worker has room for and the lease to
// give them. Release returns what a failed transaction did not use.

// Reserve asks room for n deliveries and returns the lease to commit them
// with and how many (up to n) the worker takes: none while it is not
// running.
func (w *Worker) Reserve(n int) (lease time.Duration, granted int) {
	w.handMu.Lock()
	defer w.handMu.Unlock()
	if !w.handRunning {
		return 0, 0
	}
	granted = min(n, w.handFree)
	w.handFree -= granted
	return w.cfg.Lease, granted
}

// Release returns n reserved places that were not used.
func (w *Worker) Release(n int) {
	w.handMu.Lock()
	w.handFree += n
	w.handMu.Unlock()
}

// Deliver hands over committed deliveries that were reserved, each leased
// to this worker, with their subscribers (subs[i] is ds[i]'s). If the
// worker stopped in between, it gives their leases back at once.
func (w *Worker) Deliver(ctx context.Context, ds []*models.Delivery, subs []*models.Subscriber) {
	w.handMu.Lock()
	if w.handRunning {
		for i, d := range ds {
			w.hand <- handed{d: d, sub: subs[i]} // never blocks: reserved
		}
		w.handMu.Unlock()
		return
	}
	w.handMu.Unlock()
	res := make([]models.DeliveryResult, len(ds))
	for i, d := range ds {
		res[i] = giveBack(d).res
	}
	if err := w.cfg.Store.RecordDeliveryResults(ctx, w.cfg.Now(), res); err != nil {
		w.log.Error("give back handed-over deliveries; they will go when their lease expires",
			slog.Int("deliveries", len(ds)), slog.String("error", err.Error()))
	}
}

// handed is a delivery handed over, with its subscriber.
type handed struct {
	d   *models.Delivery
	sub *models.Subscriber
}

// startHandoff opens the worker to handed-over deliveries.
func (w *Worker) startHandoff() {
	w.handMu.Lock()
	w.handRunning, w.handFree = true, cap(w.hand)
	w.handMu.Unlock()
}

// stopHandoff closes the worker to handed-over deliveries and gives back
// those it still holds.
func (w *Worker) stopHandoff(out chan<- outcome) {
	w.handMu.Lock()
	defer w.handMu.Unlock()
	w.handRunning = false
	for {
		select {
		case h := <-w.hand:
			out <- giveBack(h.d)
		default:
			return
		}
	}
}

// takeHanded turns a handed-over delivery into a job, as prepare does for
// a claimed one (the writer checked suppression in its transaction), and
// frees its place.
func (w *Worker) takeHanded(bg context.Context, h handed) (job, outcome, bool) {
	w.handMu.Lock()
	w.handFree++
	w.handMu.Unlock()
	subs := map[int64]*models.Subscriber{}
	if h.sub != nil {
		subs[h.sub.ID] = h.sub
	}
	return w.prepare(bg, h.d, subs, nil)
}
