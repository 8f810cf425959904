package stories

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"herald/models"
)

// Poller defaults and the back-off cap for failing feeds.
const (
	defaultTick        = 30 * time.Second
	defaultMaxBody     = 5 << 20
	defaultPollTimeout = 20 * time.Second
	defaultConcurrency = 4
	defaultBatch       = 100
	maxBackoff         = 6 * time.Hour
)

// PollerConfig configures a Poller.
type PollerConfig struct {
	// Client fetches feeds (default: a plain http.Client; every poll is
	// bounded by Timeout anyway).
	Client *http.Client
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Tick is how often Run looks for due feeds (default 30s).
	Tick time.Duration
	// MaxBody caps a feed's size in bytes (default 5 MB).
	MaxBody int64
	// Timeout bounds fetching one feed (default 20s).
	Timeout time.Duration
	// UserAgent is sent with every request (default "Herald feed poller").
	UserAgent string
	// Concurrency is how many feeds are polled at once (default 4).
	Concurrency int
	// Batch caps the feeds taken in one round (default 100).
	Batch int
}

// Poller polls the feeds that are due and ingests their items. Any number
// of instances may run on one database: each feed is claimed before it is
// polled.
type Poller struct {
	store *models.Store
	svc   *Service
	cfg   PollerConfig
}

// NewPoller returns a Poller; call Run to start it.
func NewPoller(store *models.Store, svc *Service, cfg PollerConfig) *Poller {
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = defaultTick
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = defaultMaxBody
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultPollTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "Herald feed poller"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = defaultConcurrency
	}
	if cfg.Batch <= 0 {
		cfg.Batch = defaultBatch
	}
	return &Poller{store: store, svc: svc, cfg: cfg}
}

func (p *Poller) now() time.Time { return p.cfg.Now().UTC().Truncate(time.Microsecond) }

// Run polls the due feeds at once and then every Tick until ctx ends; the
// polls under way when it ends are abandoned (their claims expire and the
// feeds are polled again later). It returns nil when ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Tick)
	defer t.Stop()
	for {
		if _, err := p.PollDue(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.ErrorContext(ctx, "feed poll round failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// PollDue runs one round: it claims the feeds that are due and polls them,
// at most Concurrency at once, and returns how many it polled. A feed's
// failure is recorded on its row and does not stop the others; the error
// is only for the database.
func (p *Poller) PollDue(ctx context.Context) (int, error) {
	now := p.now()
	feeds, err := p.store.DueFeeds(ctx, now, p.cfg.Batch)
	if err != nil {
		return 0, err
	}
	// The claim holds the feed for the length of one poll; if this
	// instance dies on the way, the feed is due again when it runs out.
	lease := now.Add(p.cfg.Timeout + time.Minute)
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	polled := 0
	for i := range feeds {
		f := &feeds[i]
		ok, err := p.store.ClaimFeed(ctx, f.ID, now, lease)
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			break
		}
		if !ok {
			continue // another instance has it
		}
		polled++
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return polled, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := p.pollAndRecord(ctx, f); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return polled, errors.Join(errs...)
}

// PollNow polls one feed at once, due or not, records the result and
// returns the feed as stored afterwards. A feed that fails is not an error
// here: its row says what went wrong.
func (p *Poller) PollNow(ctx context.Context, feedID int64) (*models.Feed, error) {
	f, err := p.store.FeedByID(ctx, feedID)
	if err != nil {
		return nil, err
	}
	if _, err := p.pollAndRecord(ctx, f); err != nil {
		return nil, err
	}
	return p.store.FeedByID(ctx, feedID)
}

// pollAndRecord polls f and stores the outcome on its row.
func (p *Poller) pollAndRecord(ctx context.Context, f *models.Feed) (models.FeedPoll, error) {
	log := p.cfg.Logger.With(slog.Int64("feed_id", f.ID), slog.String("feed_url", f.URL))
	out := p.poll(ctx, f, log)
	if ctx.Err() != nil {
		// Shutting down: leave the claim to expire rather than record a
		// failure that is not the feed's.
		return out.FeedPoll, ctx.Err()
	}
	res := out.FeedPoll
	res.PolledAt = p.now()
	interval := Interval(f)
	if res.Status == models.FeedError {
		res.Failures = f.Failures + 1
		res.NextPollAt = res.PolledAt.Add(backoff(interval, res.Failures))
		log.WarnContext(ctx, "feed poll failed", slog.String("error", res.Error),
			slog.Int("failures", res.Failures), slog.Time("next_poll_at", res.NextPollAt), slog.Int("new", res.New))
	} else {
		res.NextPollAt = res.PolledAt.Add(interval)
		level := slog.LevelInfo
		if res.Status == models.FeedNotModified {
			level = slog.LevelDebug
		}
		log.Log(ctx, level, "feed polled", slog.String("status", res.Status), slog.Int("new", res.New),
			slog.Int("skipped", out.skipped), slog.Int("items", out.items))
	}
	if err := p.store.RecordFeedPoll(ctx, f.ID, res); err != nil {
		return res, err
	}
	return res, nil
}

// backoff is the wait before polling a feed that failed failures times in
// a row: interval × 2^failures, at most six hours (but never less than the
// interval itself).
func backoff(interval time.Duration, failures int) time.Duration {
	d := interval
	for i := 0; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return max(interval, min(d, maxBackoff))
}
