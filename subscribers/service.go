package subscribers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"herald/fielderr"
	"log/slog"
	"strings"
	"sync"
	"time"

	"herald/models"
)

// Per-address limits on the emails a signup may cause (DESIGN.md, security
// rules): one confirmation per 10 minutes and three a day; one "already
// subscribed" notice per 10 minutes.
const (
	confirmGap     = 10 * time.Minute
	confirmPerDay  = 3
	noticeGap      = 10 * time.Minute
	defaultBatch   = 256
	maxSourceLen   = 512
	maxUserAgent   = 512
	maxSectionsSel = 50
)

// FieldErrors maps an input field to a message for the person.
type FieldErrors = fielderr.Errors

// ErrStopped is returned by Signup when the service is shutting down.
var ErrStopped = errors.New("subscribers: shutting down")

// Config configures the Service.
type Config struct {
	Tokens          *Tokens
	ConfirmTTL      time.Duration
	ConsentText     string
	PolicyVersion   string
	RequireConsent  bool
	DefaultSections []string
	Blocklist       *Blocklist
	// MessageDomain is the right-hand side of generated Message-IDs.
	MessageDomain string
	// OnEnqueue is called after deliveries were committed (wakes the worker).
	OnEnqueue func()
	// Handoff, when set, takes the emails signups queue straight to the
	// delivery worker, so that it need not claim them.
	Handoff Handoff
	// MaxBatch caps how many signups are committed in one transaction.
	MaxBatch int
	// Committers is how many transactions run at once: 1 on SQLite (one
	// writer), 4 on Postgres by default.
	Committers int
	Now        func() time.Time
	Logger     *slog.Logger
}

// Handoff is the delivery worker's side of handing emails over
// (delivery.Worker): inside the signup transaction Reserve grants places
// and the lease to commit that many deliveries with, already leased to the
// worker; after the commit Deliver hands them over, and after a failed
// transaction Release returns the places.
type Handoff interface {
	Reserve(n int) (lease time.Duration, granted int)
	Release(n int)
	Deliver(ctx context.Context, ds []*models.Delivery, subs []*models.Subscriber)
}

// handout is what one transaction committed leased to the worker.
type handout struct {
	ds   []*models.Delivery
	subs []*models.Subscriber
}

// Service runs the reader's side of Herald on a Store.
type Service struct {
	store    *models.Store
	cfg      Config
	jobs     chan *job
	done     chan struct{}
	sections sectionCache
}

// New returns a Service; call Run to start committing signups.
func New(store *models.Store, cfg Config) *Service {
	if cfg.ConfirmTTL == 0 {
		cfg.ConfirmTTL = 72 * time.Hour
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = defaultBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnEnqueue == nil {
		cfg.OnEnqueue = func() {}
	}
	if cfg.Blocklist == nil {
		cfg.Blocklist, _ = NewBlocklist("")
	}
	if cfg.MessageDomain == "" {
		cfg.MessageDomain = "localhost"
	}
	return &Service{store: store, cfg: cfg, jobs: make(chan *job, 4*cfg.MaxBatch), done: make(chan struct{})}
}

// Tokens returns the service's token signer.
func (s *Service) Tokens() *Tokens { return s.cfg.Tokens }

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// SignupInput is one "notify me" request, from the form or the JSON API.
type SignupInput struct {
	Email     string
	Sections  []string
	Frequency string
	Consent   bool
	Source    string
	// Form says where it came from: "form", "api" or "widget".
	Form      string
	IP        string
	UserAgent string
	// PageURL is the page the form was on (Referer or Origin), if known.
	PageURL string
	Locale  string
}

type job struct {
	in       SignupInput
	typed    string
	norm     string
	sections []models.Section
	done     chan error
}

// Validate checks a signup and returns the normalised job, or FieldErrors.
func (s *Service) validate(ctx context.Context, in SignupInput) (*job, error) {
	fe := FieldErrors{}
	typed, norm, err := ParseAddress(in.Email)
	if err != nil {
		fe["email"] = err.Error()
	} else if s.cfg.Blocklist.Blocked(DomainOf(norm)) {
		fe["email"] = "Please use a permanent email address; we don't accept disposable ones."
	}
	switch in.Frequency {
	case "":
		in.Frequency = models.FrequencyDaily
	case models.FrequencyInstant, models.FrequencyDaily, models.FrequencyWeekly:
	default:
		fe["frequency"] = "Choose how often: instant, daily or weekly."
	}
	if s.cfg.RequireConsent && !in.Consent {
		fe["consent"] = "Please tick the box to agree to receive our emails."
	}
	slugs := dedupe(in.Sections)
	var sections []models.Section
	switch {
	case len(slugs) > maxSectionsSel:
		fe["sections"] = "Too many sections chosen."
	default:
		if len(slugs) == 0 {
			slugs = s.cfg.DefaultSections
		}
		found, all, err := s.sections.get(ctx, s.store, s.cfg.Now(), slugs)
		if err != nil {
			return nil, err
		}
		var unknown []string
		for _, slug := range slugs {
			if sec, ok := found[slug]; ok {
				sections = append(sections, sec)
			} else {
				unknown = append(unknown, slug)
			}
		}
		if len(slugs) == 0 && len(all) == 1 {
			sections = all
		}
		switch {
		case len(unknown) > 0:
			fe["sections"] = "Unknown section: " + strings.Join(limitStrings(unknown, 3, 40), ", ") + "."
		case len(sections) == 0:
			fe["sections"] = "Choose at least one section to follow."
		}
	}
	if len(fe) > 0 {
		return nil, fe
	}
	in.Source = clip(in.Source, maxSourceLen)
	in.UserAgent = clip(in.UserAgent, maxUserAgent)
	in.PageURL = clip(in.PageURL, 1024)
	return &job{in: in, typed: typed, norm: norm, sections: sections}, nil
}

// Signup validates a signup and, when it is valid, commits it durably
// before returning: the subscriber (pending), their subscriptions, a signup
// consent event and a confirmation delivery — or, for an address that is
// already active, a throttled "already subscribed" notice. The result is
// the same whatever the address's state, so callers cannot tell them apart.
// Invalid input returns FieldErrors.
func (s *Service) Signup(ctx context.Context, in SignupInput) error {
	j, err := s.validate(ctx, in)
	if err != nil {
		return err
	}
	j.done = make(chan error, 1)
	select {
	case s.jobs <- j:
	case <-s.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		// The job is queued and will still commit; the caller just stops waiting.
		return ctx.Err()
	}
}

// Run commits queued signups until ctx is done, many per transaction: one
// writer, one fsync for the lot (group commit). Jobs queued when ctx ends
// are still committed.
func (s *Service) Run(ctx context.Context) error {
	defer close(s.done)
	n := s.cfg.Committers
	if n <= 0 {
		n = 1
		if s.store.Postgres() {
			// Postgres takes concurrent writers; each committer still
			// batches, and row locks keep one address's chain in order.
			n = 4
		}
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { s.runCommitter(ctx) })
	}
	wg.Wait()
	return nil
}

func (s *Service) runCommitter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case j := <-s.jobs:
					s.commit(context.WithoutCancel(ctx), s.gather(j))
				default:
					return
				}
			}
		case j := <-s.jobs:
			s.commit(ctx, s.gather(j))
		}
	}
}

func (s *Service) gather(first *job) []*job {
	batch := []*job{first}
	for len(batch) < s.cfg.MaxBatch {
		select {
		case j := <-s.jobs:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}

// commit applies a batch in rounds of distinct addresses; if a round's
// transaction fails, each of its jobs is retried alone so one bad row
// cannot fail its neighbours.
func (s *Service) commit(ctx context.Context, batch []*job) {
	ctx = context.WithoutCancel(ctx)
	for len(batch) > 0 {
		seen := map[string]bool{}
		var round, later []*job
		for _, j := range batch {
			if seen[j.norm] {
				later = append(later, j)
				continue
			}
			seen[j.norm] = true
			round = append(round, j)
		}
		batch = later
		start := time.Now()
		queued, err := s.applyTx(ctx, round)
		s.cfg.Logger.DebugContext(ctx, "signups committed", slog.Int("signups", len(round)),
			slog.Duration("duration", time.Since(start)))
		if err != nil && len(round) > 1 {
			for _, j := range round {
				n, err := s.applyTx(ctx, []*job{j})
				queued += n
				j.done <- err
			}
		} else {
			for _, j := range round {
				j.done <- err
			}
		}
		if queued > 0 {
			s.cfg.OnEnqueue()
		}
	}
}

// applyTx applies jobs in one transaction and hands the emails it leased
// to the worker over once committed. It returns how many emails it queued
// for the worker to claim.
func (s *Service) applyTx(ctx context.Context, jobs []*job) (int, error) {
	var queued int
	var out handout
	err := s.store.Tx(ctx, func(tx *models.Store) error {
		n, h, err := s.apply(ctx, tx, jobs)
		queued, out = n, h
		return err
	})
	if err != nil {
		if len(out.ds) > 0 {
			s.cfg.Handoff.Release(len(out.ds))
		}
		s.cfg.Logger.ErrorContext(ctx, "signup commit failed", slog.Int("signups", len(jobs)), slog.Any("error", err))
		return 0, fmt.Errorf("signup: %w", err)
	}
	if len(out.ds) > 0 {
		s.cfg.Handoff.Deliver(ctx, out.ds, out.subs)
	}
	return queued, nil
}

func (s *Service) messageID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b) + "@" + s.cfg.MessageDomain
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range in {
		v = strings.TrimSpace(v)
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func limitStrings(in []string, n, width int) []string {
	if len(in) > n {
		in = in[:n]
	}
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = clip(v, width)
	}
	return out
}
