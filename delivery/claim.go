package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"herald/models"
)

// claimGap is the least time between two claims started by Wake.
const claimGap = 20 * time.Millisecond

// claim is the claimer goroutine: it claims due rows, checks suppression,
// renders, and hands jobs to the senders. It closes jobs when ctx ends,
// after giving back every row it claimed but did not hand over.
func (w *Worker) claim(ctx, bg context.Context, jobs chan<- job, out chan<- outcome) {
	defer close(jobs)
	poll := time.NewTicker(w.cfg.PollInterval)
	defer poll.Stop()
	reclaim := time.NewTicker(w.cfg.Lease / 2)
	defer reclaim.Stop()

	// Rows a crashed worker left behind are due at once.
	w.reclaim(bg)
	var last time.Time
	for ctx.Err() == nil {
		select {
		case <-reclaim.C:
			w.reclaim(bg)
		default:
		}
		last = time.Now()
		if w.claimBatch(ctx, bg, jobs, out) {
			continue // a full batch: there may be more due right now
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
			// Under a stream of signups every commit wakes the worker;
			// waiting out a short gap lets each claim take many rows
			// instead of a few, for a few milliseconds of latency.
			if gap := claimGap - time.Since(last); gap > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(gap):
				}
			}
		case <-poll.C:
		case <-reclaim.C:
			w.reclaim(bg)
		}
	}
}

func (w *Worker) reclaim(bg context.Context) {
	ctx, cancel := context.WithTimeout(bg, dbTimeout)
	defer cancel()
	n, err := w.cfg.Store.ReclaimExpiredLeases(ctx, w.cfg.Now())
	if err != nil {
		w.log.Error("reclaim expired leases", slog.String("error", err.Error()))
		return
	}
	if n > 0 {
		w.log.Warn("returned deliveries whose lease expired", slog.Int64("deliveries", n))
	}
}

// claimBatch claims one batch and dispatches it; it reports whether the
// batch was full.
func (w *Worker) claimBatch(ctx, bg context.Context, jobs chan<- job, out chan<- outcome) bool {
	// The claim itself runs on bg: cancelling it half-way could leave rows
	// claimed that nobody knows about until their lease runs out.
	dbctx, cancel := context.WithTimeout(bg, dbTimeout)
	defer cancel()
	batch, err := w.cfg.Store.ClaimDeliveries(dbctx, w.cfg.Now(), w.cfg.Lease, w.cfg.BatchSize)
	if err != nil {
		w.log.Error("claim deliveries", slog.String("error", err.Error()))
		return false
	}
	if len(batch) == 0 {
		return false
	}
	subs, suppressed, err := w.lookup(dbctx, batch)
	if err != nil {
		w.log.Error("load subscribers of claimed deliveries", slog.String("error", err.Error()))
		for i := range batch {
			out <- giveBack(&batch[i])
		}
		return false
	}
	w.prepareBatch(dbctx, batch, subs)
	for i := range batch {
		d := &batch[i]
		if ctx.Err() != nil {
			out <- giveBack(d)
			continue
		}
		j, res, ok := w.prepare(bg, d, subs, suppressed)
		if !ok {
			out <- res
			continue
		}
		select {
		case jobs <- j:
		case <-ctx.Done():
			out <- giveBack(d)
		}
	}
	return len(batch) == w.cfg.BatchSize
}

// prepareBatch lets each renderer that can load its batch's data at once.
func (w *Worker) prepareBatch(ctx context.Context, batch []models.Delivery, subs map[int64]*models.Subscriber) {
	byRenderer := map[BatchPreparer][]models.Delivery{}
	for _, d := range batch {
		if p, ok := w.cfg.Renderers[d.Kind].(BatchPreparer); ok {
			byRenderer[p] = append(byRenderer[p], d)
		}
	}
	for p, ds := range byRenderer {
		if err := p.PrepareBatch(ctx, ds, subs); err != nil {
			w.log.Warn("prepare batch for rendering", slog.String("error", err.Error()))
		}
	}
}

// lookup loads the batch's subscribers and the suppression reasons of
// their addresses, in one query each.
func (w *Worker) lookup(ctx context.Context, batch []models.Delivery) (map[int64]*models.Subscriber, map[string]string, error) {
	var ids []int64
	for _, d := range batch {
		if d.SubscriberID != nil {
			ids = append(ids, *d.SubscriberID)
		}
	}
	subs, err := w.cfg.Store.SubscribersByID(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	var norms []string
	for _, d := range batch {
		if d.SubscriberID == nil {
			norms = append(norms, normalise(d.ToAddress))
		} else if sub := subs[*d.SubscriberID]; sub != nil {
			norms = append(norms, sub.EmailNorm)
		}
	}
	suppressed, err := w.cfg.Store.Suppressions(ctx, norms)
	if err != nil {
		return nil, nil, err
	}
	return subs, suppressed, nil
}

// normalise is the suppression key of an address that belongs to no
// subscriber (an editor's test send). It matches the subscribers package's
// normal form for every ASCII address.
func normalise(addr string) string { return strings.ToLower(strings.TrimSpace(addr)) }

// prepare decides a claimed row's fate before sending: a job to render
// and send, or an immediate result (skipped or failed) when ok is false.
func (w *Worker) prepare(bg context.Context, d *models.Delivery, subs map[int64]*models.Subscriber, suppressed map[string]string) (j job, res outcome, ok bool) {
	end := func(status, msg string) (job, outcome, bool) {
		if status == models.DeliveryFailed {
			w.log.Warn("delivery failed", slog.Int64("delivery_id", d.ID), slog.String("kind", d.Kind), slog.String("error", msg))
		}
		return job{}, outcome{res: models.DeliveryResult{ID: d.ID, Status: status, Error: msg}}, false
	}
	var sub *models.Subscriber
	to, norm := d.ToAddress, normalise(d.ToAddress)
	if d.SubscriberID != nil {
		if sub = subs[*d.SubscriberID]; sub == nil {
			return end(models.DeliverySkipped, "subscriber no longer exists")
		}
		to, norm = sub.Email, sub.EmailNorm
	}
	if to == "" {
		return end(models.DeliveryFailed, "no recipient address")
	}
	// An erased address may sign up again, so only its confirmation goes.
	if reason, found := suppressed[norm]; found && (reason != models.SuppressErased || d.Kind != models.KindConfirmation) {
		return end(models.DeliverySkipped, "suppressed: "+reason)
	}
	r := w.cfg.Renderers[d.Kind]
	if r == nil {
		return end(models.DeliveryFailed, fmt.Sprintf("no renderer for kind %q", d.Kind))
	}
	// Rendering happens in the sender goroutines, in parallel.
	return job{d: *d, sub: sub, to: to, renderer: r}, outcome{}, true
}

// render turns a job's delivery into its message, or an immediate result
// (skipped or failed) when ok is false.
func (w *Worker) render(bg context.Context, j *job) (res outcome, ok bool) {
	d := &j.d
	end := func(status, msg string) (outcome, bool) {
		if status == models.DeliveryFailed {
			w.log.Warn("delivery failed", slog.Int64("delivery_id", d.ID), slog.String("kind", d.Kind), slog.String("error", msg))
		}
		return outcome{res: models.DeliveryResult{ID: d.ID, Status: status, Error: msg}}, false
	}
	ctx, cancel := context.WithTimeout(bg, dbTimeout)
	defer cancel()
	msg, err := j.renderer.Render(ctx, d, j.sub)
	switch {
	case errors.Is(err, ErrSkip):
		return end(models.DeliverySkipped, "")
	case err != nil:
		return end(models.DeliveryFailed, "render: "+err.Error())
	case msg == nil:
		return end(models.DeliveryFailed, "render: no message")
	}
	msg.To = j.to
	if msg.MessageID == "" {
		msg.MessageID = d.MessageID
	}
	if msg.MessageID == "" {
		// Stable across retries, so a receiver can tell a repeat.
		msg.MessageID = fmt.Sprintf("herald.delivery.%d@%s", d.ID, domainOf(msg.From))
	}
	j.msg = msg
	return outcome{}, true
}

// domainOf returns the domain of a From value such as "Name <a@b.example>".
func domainOf(from string) string {
	from = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(from), ">"))
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		return from[i+1:]
	}
	return "localhost"
}
