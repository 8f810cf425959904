package digests

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"herald/models"
)

// ScheduleConfig says when scheduled digests go out.
type ScheduleConfig struct {
	// DailyAt and WeeklyAt are times since local midnight; WeeklyDay the day.
	DailyAt   time.Duration
	WeeklyDay time.Weekday
	WeeklyAt  time.Duration
	// Review leaves scheduled digests and alerts as drafts for an editor.
	Review bool
	// Tick is how often the scheduler looks (default 30 s).
	Tick time.Duration
	// Window is how long after its time a scheduled digest may still be
	// made, e.g. after a restart (default 1 h). Later, the period is missed
	// rather than sent at an odd hour; its stories go in the next one.
	Window time.Duration
	// ErrorCap pauses a send once at least ErrorCapMin deliveries finished
	// and more than this share of them failed (default 0.5 of 50).
	ErrorCap    float64
	ErrorCapMin int64
}

// Scheduler makes the scheduled digests and alerts, starts scheduled sends,
// marks finished sends sent and pauses runaway ones. Any number of
// instances may run it: each digest has a unique key per period.
type Scheduler struct {
	svc  *Service
	cfg  ScheduleConfig
	wake chan struct{}
}

// NewScheduler returns a Scheduler for svc.
func NewScheduler(svc *Service, cfg ScheduleConfig) *Scheduler {
	if cfg.Tick <= 0 {
		cfg.Tick = 30 * time.Second
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Hour
	}
	if cfg.ErrorCap <= 0 {
		cfg.ErrorCap = 0.5
	}
	if cfg.ErrorCapMin <= 0 {
		cfg.ErrorCapMin = 50
	}
	return &Scheduler{svc: svc, cfg: cfg, wake: make(chan struct{}, 1)}
}

// Wake makes the scheduler look now (a new story may need an alert).
func (sc *Scheduler) Wake() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// wakeGap is the least time between two rounds started by Wake: results
// are recorded many times a second during a send.
const wakeGap = time.Second

// Run ticks until ctx ends.
func (sc *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(sc.cfg.Tick)
	defer t.Stop()
	for {
		last := time.Now()
		sc.Tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-sc.wake:
			if gap := wakeGap - time.Since(last); gap > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(gap):
				}
			}
		}
	}
}

// Tick does one round of the scheduler's work at the service's clock.
func (sc *Scheduler) Tick(ctx context.Context) {
	log := sc.svc.cfg.Logger
	for _, step := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"alerts", sc.alerts},
		{"daily digest", func(ctx context.Context) error { return sc.periodic(ctx, models.DigestDaily) }},
		{"weekly digest", func(ctx context.Context) error { return sc.periodic(ctx, models.DigestWeekly) }},
		{"scheduled sends", sc.startDue},
		{"error cap", sc.errorCap},
		{"finish sends", sc.finish},
	} {
		if ctx.Err() != nil {
			return
		}
		if err := step.fn(ctx); err != nil {
			log.ErrorContext(ctx, "scheduler", slog.String("step", step.name), slog.Any("error", err))
		}
	}
}

// PeriodKey is the unique key of the scheduled digest of kind that is due
// at local time now, and whether one is due (now is within the window
// after its time).
func (sc *Scheduler) PeriodKey(kind string, now time.Time) (string, bool) {
	local := now.In(sc.svc.cfg.Location)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, sc.svc.cfg.Location)
	var at time.Time
	switch kind {
	case models.DigestDaily:
		at = midnight.Add(sc.cfg.DailyAt)
	case models.DigestWeekly:
		if local.Weekday() != sc.cfg.WeeklyDay {
			return "", false
		}
		at = midnight.Add(sc.cfg.WeeklyAt)
	default:
		return "", false
	}
	if now.Before(at) || !now.Before(at.Add(sc.cfg.Window)) {
		return "", false
	}
	return fmt.Sprintf("%s:%s", kind, midnight.Format("2006-01-02")), true
}

func (sc *Scheduler) periodic(ctx context.Context, kind string) error {
	key, due := sc.PeriodKey(kind, sc.svc.now())
	if !due {
		return nil
	}
	if _, err := sc.svc.store.DigestByKey(ctx, key); err == nil {
		return nil // made already, here or by another instance
	} else if !errors.Is(err, models.ErrNotFound) {
		return err
	}
	d, err := sc.svc.Create(ctx, Input{Kind: kind, Key: key})
	switch {
	case errors.Is(err, ErrNothingNew):
		return nil
	case models.IsUniqueViolation(err):
		return nil // another instance made it a moment ago
	case err != nil:
		return err
	}
	sc.svc.cfg.Logger.InfoContext(ctx, "scheduled digest made", slog.String("key", key), slog.Int64("digest_id", d.ID))
	if sc.cfg.Review {
		return nil
	}
	_, err = sc.svc.Start(ctx, d.ID)
	return err
}

// alerts makes one alert per new story for instant readers of its
// sections, at most AlertsPerDay per reader per day.
func (sc *Scheduler) alerts(ctx context.Context) error {
	now := sc.svc.now()
	stories, err := sc.svc.store.NewStoriesFor(ctx, models.DigestAlert, now.Add(-6*time.Hour), 100)
	if err != nil {
		return err
	}
	for i := len(stories) - 1; i >= 0; i-- { // oldest first
		st := stories[i]
		d, err := sc.svc.Create(ctx, Input{Kind: models.DigestAlert, Key: fmt.Sprintf("alert:%d", st.ID),
			StoryIDs: []int64{st.ID}, Subject: st.Title})
		if models.IsUniqueViolation(err) {
			continue
		}
		if err != nil {
			return err
		}
		if sc.cfg.Review {
			continue
		}
		if _, err := sc.svc.Start(ctx, d.ID); err != nil {
			return err
		}
	}
	return nil
}

func (sc *Scheduler) startDue(ctx context.Context) error {
	due, err := sc.svc.store.DueScheduledDigests(ctx, sc.svc.now())
	if err != nil {
		return err
	}
	for _, d := range due {
		if _, err := sc.svc.Start(ctx, d.ID); err != nil {
			return err
		}
	}
	return nil
}

func (sc *Scheduler) finish(ctx context.Context) error {
	n, err := sc.svc.store.FinishDigests(ctx, sc.svc.now())
	if n > 0 {
		sc.svc.cfg.Logger.InfoContext(ctx, "digests finished", slog.Int64("digests", n))
	}
	return err
}

// errorCap pauses a send whose failures run away (a broken relay), with
// the reason shown on the digest.
func (sc *Scheduler) errorCap(ctx context.Context) error {
	counts, err := sc.svc.store.DigestFailureCounts(ctx)
	if err != nil {
		return err
	}
	for id, c := range counts {
		failed, done := c[0], c[1]
		if done >= sc.cfg.ErrorCapMin && float64(failed) > sc.cfg.ErrorCap*float64(done) {
			reason := fmt.Sprintf("paused automatically: %d of %d deliveries failed; check the SMTP relay, then resume", failed, done)
			if err := sc.svc.Pause(ctx, id, reason); err != nil && !errors.Is(err, ErrBadState) {
				return err
			}
			sc.svc.cfg.Logger.WarnContext(ctx, "send paused by the error cap", slog.Int64("digest_id", id),
				slog.Int64("failed", failed), slog.Int64("done", done))
		}
	}
	return nil
}
