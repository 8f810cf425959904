// Package delivery is the outbox worker: it claims pending deliveries with
// a lease, renders each message, sends it over the mailer, and records the
// result, retrying temporary failures with back-off and suppressing hard
// bounces. A delivery is marked sent only after the SMTP server accepted
// it; a crash can repeat only the messages that were in flight.
package delivery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"herald/mailer"
	"herald/models"
)

// Renderer turns a claimed delivery into a message; return ErrSkip to mark
// it skipped. sub is nil for a delivery with no subscriber. The worker sets
// the message's To itself (the subscriber's address, or the delivery's
// ToAddress), so that the suppression check always covers the real
// recipient.
type Renderer interface {
	Render(ctx context.Context, d *models.Delivery, sub *models.Subscriber) (*mailer.Message, error)
}

// BatchPreparer is a Renderer that loads what a claimed batch needs in one
// query instead of one per message. The worker calls it once per batch,
// with the batch's deliveries of the renderer's kinds, before rendering
// any of them; an error only means Render looks things up itself.
type BatchPreparer interface {
	PrepareBatch(ctx context.Context, ds []models.Delivery, subs map[int64]*models.Subscriber) error
}

// ErrSkip, returned by a Renderer, marks the delivery skipped: there is
// nothing to send any more (for example the subscriber already confirmed).
var ErrSkip = errors.New("delivery: skip")

// Config configures New. Store, Sender and Renderers are required.
type Config struct {
	Store     *models.Store
	Sender    mailer.Sender
	Renderers map[string]Renderer // by models.Delivery.Kind
	// Concurrency is how many messages are sent in parallel (default 4);
	// match it to the SMTP transport's connections.
	Concurrency int
	// BatchSize is how many rows one claim takes (default 100).
	BatchSize int
	// Lease is how long a claimed row is ours (default 2m). A row still
	// queued here when less than half of it remains is given back unsent,
	// so that it is never sent by two workers.
	Lease time.Duration
	// MaxAttempts is how many temporary failures a delivery may have
	// before it is marked failed (default 8).
	MaxAttempts int
	// PollInterval is how often the worker looks for due rows when nobody
	// calls Wake (default 1s).
	PollInterval time.Duration
	// SendRate caps messages per second over all senders; 0 means no cap.
	// A low rate also lowers BatchSize, so a batch fits in half a lease.
	SendRate float64
	// ShutdownGrace bounds how long sends under way may take to finish
	// once Run's context ends (default 30s).
	ShutdownGrace time.Duration
	// OnRecorded is called after a batch of results was written (the
	// scheduler then marks finished digests sent without waiting a tick).
	OnRecorded func()
	// Now is the clock (default time.Now); tests inject one.
	Now    func() time.Time
	Logger *slog.Logger
}

// Worker runs the delivery pipeline: one claimer, Concurrency senders and
// one recorder.
type Worker struct {
	cfg   Config
	log   *slog.Logger
	wake  chan struct{}
	limit *limiter

	// hand carries deliveries handed over by their writer (handoff.go).
	hand        chan handed
	handMu      sync.Mutex // guards handRunning and handFree, and sends on hand
	handRunning bool
	handFree    int
}

// Timings of the recorder and of database calls.
const (
	flushEvery   = 100 * time.Millisecond
	flushSize    = 50
	dbTimeout    = 30 * time.Second
	writeRetries = 3
)

// New returns a Worker for cfg, with defaults filled in.
func New(cfg Config) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 30 * time.Second
	}
	if cfg.SendRate > 0 {
		// Claim no more than can be sent in half a lease at that rate, or
		// the tail of each batch would be given back unsent.
		cfg.BatchSize = max(1, min(cfg.BatchSize, int(cfg.SendRate*cfg.Lease.Seconds()/2)))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{cfg: cfg, log: logger, wake: make(chan struct{}, 1), limit: newLimiter(cfg.SendRate),
		hand: make(chan handed, handoffRoom)}
}

// Wake makes the worker look for due deliveries now rather than at its
// next poll. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// job is a claimed delivery waiting for a sender, which renders it.
type job struct {
	d        models.Delivery
	sub      *models.Subscriber
	to       string
	renderer Renderer
	msg      *mailer.Message
}

// outcome is a result on its way to the recorder. bounce is the subscriber
// to suppress and mark bounced, after a hard bounce.
type outcome struct {
	res    models.DeliveryResult
	bounce *models.Subscriber
}

// Run works until ctx ends, then stops claiming, lets sends under way
// finish (for at most ShutdownGrace), gives the leases of claimed but
// unsent rows back, writes the last results and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	if w.cfg.Store == nil || w.cfg.Sender == nil {
		return errors.New("delivery: Config.Store and Config.Sender are required")
	}
	// bg outlives ctx: recording results and returning leases must
	// happen after shutdown begins.
	bg := context.WithoutCancel(ctx)
	sendCtx, cancelSends := context.WithCancel(bg)
	defer cancelSends()

	// Room for a batch per sender, so that senders can take several.
	jobs := make(chan job, w.cfg.Concurrency*maxSendBatch)
	results := make(chan outcome, w.cfg.BatchSize)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		w.record(bg, results)
	}()

	w.startHandoff()
	var wg sync.WaitGroup
	wg.Go(func() { w.claim(ctx, bg, jobs, results) })
	for range w.cfg.Concurrency {
		wg.Go(func() { w.send(ctx, sendCtx, jobs, results) })
	}

	// Bound the sends still under way once ctx ends.
	sent := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-sent:
			return
		}
		t := time.NewTimer(w.cfg.ShutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelSends()
		case <-sent:
		}
	}()

	wg.Wait()
	close(sent)
	w.stopHandoff(results)
	close(results)
	<-recorded
	return nil
}

// giveBack is the result for a claimed row returned unsent: pending again,
// and the attempt not counted.
func giveBack(d *models.Delivery) outcome {
	return outcome{res: models.DeliveryResult{ID: d.ID, Status: models.DeliveryPending, GiveBackAttempt: true}}
}
