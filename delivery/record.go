package delivery

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"herald/models"
)

// record is the recorder goroutine: it writes results in batches, every
// flushSize results or flushEvery, whichever comes first, and once more
// when in is closed.
func (w *Worker) record(bg context.Context, in <-chan outcome) {
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	var buf []outcome
	flush := func() {
		if len(buf) > 0 {
			w.flush(bg, buf)
			buf = buf[:0]
		}
	}
	for {
		select {
		case o, ok := <-in:
			if !ok {
				flush()
				return
			}
			buf = append(buf, o)
			if len(buf) >= flushSize {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// flush writes one batch of results, with the suppressions of its hard
// bounces, in one transaction. A write that keeps failing leaves the rows
// sending until their lease runs out, when they are sent again: so it is
// retried a few times first.
func (w *Worker) flush(bg context.Context, batch []outcome) {
	results := make([]models.DeliveryResult, len(batch))
	for i, o := range batch {
		results[i] = o.res
	}
	var err error
	for try := range writeRetries {
		if try > 0 {
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(bg, dbTimeout)
		err = w.write(ctx, batch, results)
		cancel()
		if err == nil {
			if w.cfg.OnRecorded != nil {
				w.cfg.OnRecorded()
			}
			return
		}
		w.log.Warn("record delivery results", slog.Int("results", len(results)), slog.Int("try", try+1), slog.String("error", err.Error()))
	}
	w.log.Error("delivery results lost; those rows will be retried when their lease expires",
		slog.Int("results", len(results)), slog.String("error", err.Error()))
}

func (w *Worker) write(ctx context.Context, batch []outcome, results []models.DeliveryResult) error {
	now := w.cfg.Now()
	return w.cfg.Store.Tx(ctx, func(tx *models.Store) error {
		for _, o := range batch {
			if o.bounce == nil {
				continue
			}
			if err := tx.Suppress(ctx, o.bounce.EmailNorm, models.SuppressBounce, now); err != nil {
				return err
			}
			err := tx.SetSubscriberStatus(ctx, o.bounce.ID, models.StatusBounced, now)
			if err != nil && !errors.Is(err, models.ErrNotFound) {
				return err
			}
		}
		return tx.RecordDeliveryResults(ctx, now, results)
	})
}
