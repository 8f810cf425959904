package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"herald/mailer"
	"herald/models"
)

// Back-off of temporary failures: from firstRetry, doubling per attempt,
// with ±20% jitter so that rows that failed together do not retry together.
const (
	firstRetry = 30 * time.Second
	maxRetry   = 6 * time.Hour
)

// maxSendBatch is how many queued messages one sender takes at once and
// sends in one pipelined exchange, when the Sender can (mailer.BatchSender).
const maxSendBatch = 16

// send is a sender goroutine. Once ctx ends it sends nothing more and gives
// back what is still queued; a send under way runs on sendCtx and finishes.
// It takes claimed jobs and handed-over deliveries alike; when several are
// queued it takes them together (up to maxSendBatch) and sends them in one
// exchange.
func (w *Worker) send(ctx, sendCtx context.Context, jobs <-chan job, out chan<- outcome) {
	bs, _ := w.cfg.Sender.(mailer.BatchSender)
	batch := make([]job, 0, maxSendBatch)
	// take adds a handed-over delivery to the batch, or its result to out.
	take := func(h handed) {
		if j, res, ok := w.takeHanded(context.WithoutCancel(ctx), h); ok {
			batch = append(batch, j)
		} else {
			out <- res
		}
	}
	for {
		batch = batch[:0]
		select {
		case j, ok := <-jobs:
			if !ok {
				return
			}
			batch = append(batch, j)
		case h := <-w.hand:
			take(h)
		}
	more:
		for bs != nil && len(batch) < maxSendBatch {
			select {
			case j, ok := <-jobs:
				if !ok {
					break more
				}
				batch = append(batch, j)
			case h := <-w.hand:
				take(h)
			default:
				break more
			}
		}
		if len(batch) > 0 {
			w.sendJobs(ctx, sendCtx, bs, batch, out)
		}
	}
}

// sendJobs renders and sends jobs, in one exchange when bs is not nil.
func (w *Worker) sendJobs(ctx, sendCtx context.Context, bs mailer.BatchSender, jobs []job, out chan<- outcome) {
	ready := jobs[:0]
	var left time.Duration
	for _, j := range jobs {
		if ctx.Err() != nil {
			out <- giveBack(&j.d)
			continue
		}
		// Leave enough of the lease to send and record before anyone may
		// reclaim the row; otherwise give it back to be claimed afresh.
		l := w.leaseLeft(&j.d)
		if l < w.cfg.Lease/2 {
			w.log.Warn("lease nearly over before sending; giving the delivery back", slog.Int64("delivery_id", j.d.ID))
			out <- giveBack(&j.d)
			continue
		}
		if j.msg == nil {
			if res, ok := w.render(sendCtx, &j); !ok {
				out <- res
				continue
			}
		}
		if err := w.limit.wait(ctx); err != nil {
			out <- giveBack(&j.d)
			continue
		}
		if len(ready) == 0 || l < left {
			left = l
		}
		ready = append(ready, j)
	}
	if len(ready) == 0 {
		return
	}
	sctx, cancel := context.WithTimeout(sendCtx, left-w.cfg.Lease/4)
	defer cancel()
	var errs []error
	if bs == nil { // then jobs holds one
		errs = []error{w.cfg.Sender.Send(sctx, ready[0].msg)}
	} else {
		msgs := make([]*mailer.Message, len(ready))
		for i := range ready {
			msgs[i] = ready[i].msg
		}
		errs = bs.SendBatch(sctx, msgs)
	}
	for i := range ready {
		out <- w.result(&ready[i], errs[i])
	}
}

// leaseLeft is how much of the row's lease remains, by the worker's clock.
func (w *Worker) leaseLeft(d *models.Delivery) time.Duration {
	if d.LeaseUntil == nil {
		return w.cfg.Lease
	}
	return d.LeaseUntil.Sub(w.cfg.Now())
}

// result turns a send's error into the row's next state.
func (w *Worker) result(j *job, err error) outcome {
	d := &j.d
	if err == nil {
		w.log.Debug("delivery sent", slog.Int64("delivery_id", d.ID), slog.String("kind", d.Kind))
		return outcome{res: models.DeliveryResult{ID: d.ID, Status: models.DeliverySent}}
	}
	attrs := []any{slog.Int64("delivery_id", d.ID), slog.String("kind", d.Kind),
		slog.Int("attempts", d.Attempts), slog.String("error", err.Error())}
	var se *mailer.SendError
	if errors.As(err, &se) && se.Permanent {
		o := outcome{res: models.DeliveryResult{ID: d.ID, Status: models.DeliveryFailed, Error: err.Error()}}
		// 5.1.x: the mailbox does not exist; sending there again would
		// hurt the sender's reputation.
		if strings.HasPrefix(se.Enhanced, "5.1.") && j.sub != nil {
			o.bounce = j.sub
			attrs = append(attrs, slog.Int64("subscriber_id", j.sub.ID))
			w.log.Warn("hard bounce; suppressing the address", attrs...)
		} else {
			w.log.Warn("delivery failed permanently", attrs...)
		}
		return o
	}
	if d.Attempts >= w.cfg.MaxAttempts {
		w.log.Warn("delivery failed; no attempts left", attrs...)
		return outcome{res: models.DeliveryResult{ID: d.ID, Status: models.DeliveryFailed,
			Error: fmt.Sprintf("gave up after %d attempts: %v", d.Attempts, err)}}
	}
	next := w.cfg.Now().Add(backoff(d.Attempts))
	w.log.Info("delivery will be retried", append(attrs, slog.Time("next_attempt_at", next))...)
	return outcome{res: models.DeliveryResult{ID: d.ID, Status: models.DeliveryPending, Error: err.Error(), NextAttemptAt: next}}
}

// backoff is the wait before the retry that follows attempt (1-based).
func backoff(attempt int) time.Duration {
	d := firstRetry
	for i := 1; i < attempt && d < maxRetry; i++ {
		d *= 2
	}
	d = time.Duration(float64(min(d, maxRetry)) * (0.8 + 0.4*rand.Float64()))
	return min(d, maxRetry)
}

// limiter spaces sends evenly to stay under a global rate.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newLimiter(perSecond float64) *limiter {
	if perSecond <= 0 {
		return nil
	}
	return &limiter{interval: time.Duration(float64(time.Second) / perSecond)}
}

// wait blocks until the next send may start; a nil limiter never waits.
func (l *limiter) wait(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.interval)
	l.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
