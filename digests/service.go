// Package digests makes editions out of stories and sends them: digests
// made by editors or the API, the daily and weekly schedules and instant
// alerts, who receives which stories, and the life of a send (start,
// pause, resume, cancel, finish).
package digests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"herald/fielderr"
	"log/slog"
	"net/mail"
	"sort"
	"strings"
	"time"

	"herald/models"
)

// Errors the API maps to answers.
var (
	ErrNothingNew = errors.New("there are no new stories for this digest")
	ErrBadState   = errors.New("the digest is not in a state that allows this")
)

// FieldErrors maps an input field to a message for the person.
type FieldErrors = fielderr.Errors

// Config configures the Service.
type Config struct {
	// Location is the site's time zone, for schedules and keys.
	Location *time.Location
	// AlertsPerDay caps instant alerts per reader per day.
	AlertsPerDay int
	// OnEnqueue is called after deliveries were queued (wakes the worker).
	OnEnqueue func()
	Now       func() time.Time
	Logger    *slog.Logger
	// MaxStories caps a digest's stories (default 50).
	MaxStories int
}

// Service makes and sends digests.
type Service struct {
	store *models.Store
	cfg   Config
}

// New returns a Service.
func New(store *models.Store, cfg Config) *Service {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.AlertsPerDay <= 0 {
		cfg.AlertsPerDay = 5
	}
	if cfg.OnEnqueue == nil {
		cfg.OnEnqueue = func() {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxStories <= 0 {
		cfg.MaxStories = 50
	}
	return &Service{store: store, cfg: cfg}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Input is a digest to make.
type Input struct {
	Kind     string
	Subject  string
	Intro    string
	StoryIDs []int64
	// Sections limits the audience to these section slugs (default: all).
	Sections []string
	// Frequencies limits the audience (default: the kind's own; every
	// frequency for manual digests).
	Frequencies []string
	// Key makes creation idempotent; empty means a fresh one.
	Key string
	// Since is the start of the period new stories are taken from
	// (default: 24 h before now for daily, 7 days for weekly).
	Since time.Time
}

// Period is how far back a scheduled digest of this kind looks.
func Period(kind string) time.Duration {
	if kind == models.DigestWeekly {
		return 7 * 24 * time.Hour
	}
	return 24 * time.Hour
}

func defaultFrequencies(kind string) []string {
	switch kind {
	case models.DigestAlert:
		return []string{models.FrequencyInstant}
	case models.DigestDaily:
		return []string{models.FrequencyDaily}
	case models.DigestWeekly:
		return []string{models.FrequencyWeekly}
	}
	return []string{models.FrequencyInstant, models.FrequencyDaily, models.FrequencyWeekly}
}

// Create makes a draft digest. A daily or weekly digest without story ids
// takes the stories that no earlier digest of its kind included, from its
// period; with none, it returns ErrNothingNew and creates nothing.
func (s *Service) Create(ctx context.Context, in Input) (*models.Digest, error) {
	fe := FieldErrors{}
	switch in.Kind {
	case models.DigestAlert, models.DigestDaily, models.DigestWeekly, models.DigestManual:
	case "":
		fe["kind"] = "is required: alert, daily, weekly or manual"
	default:
		fe["kind"] = "must be alert, daily, weekly or manual"
	}
	in.Subject = strings.Join(strings.Fields(in.Subject), " ")
	if len(in.Subject) > 200 {
		fe["subject"] = "must be at most 200 characters"
	}
	if len(in.Intro) > 5000 {
		fe["intro"] = "must be at most 5000 characters"
	}
	if len(in.StoryIDs) > s.cfg.MaxStories {
		fe["story_ids"] = fmt.Sprintf("at most %d stories", s.cfg.MaxStories)
	}
	freqs := in.Frequencies
	if len(freqs) == 0 {
		freqs = defaultFrequencies(in.Kind)
	}
	for _, f := range freqs {
		if f != models.FrequencyInstant && f != models.FrequencyDaily && f != models.FrequencyWeekly {
			fe["frequencies"] = "must be instant, daily or weekly"
		}
	}
	secs, err := s.store.SectionsBySlug(ctx, in.Sections)
	if err != nil {
		return nil, err
	}
	for _, slug := range in.Sections {
		if _, ok := secs[slug]; !ok {
			fe["sections"] = "unknown section: " + clip(slug, 40)
		}
	}
	if len(fe) > 0 {
		return nil, fe
	}

	ids := dedupeIDs(in.StoryIDs)
	if len(ids) > 0 {
		found, err := s.store.StoriesByID(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if found[id] == nil {
				return nil, FieldErrors{"story_ids": fmt.Sprintf("no story with id %d", id)}
			}
		}
	} else {
		if in.Kind != models.DigestDaily && in.Kind != models.DigestWeekly {
			return nil, FieldErrors{"story_ids": "choose at least one story"}
		}
		since := in.Since
		if since.IsZero() {
			since = s.now().Add(-Period(in.Kind))
		}
		stories, err := s.store.NewStoriesFor(ctx, in.Kind, since, s.cfg.MaxStories)
		if err != nil {
			return nil, err
		}
		if len(stories) == 0 {
			return nil, ErrNothingNew
		}
		for _, st := range stories {
			ids = append(ids, st.ID)
		}
	}
	now := s.now()
	if in.Subject == "" {
		in.Subject = s.defaultSubject(in.Kind, now)
	}
	key := in.Key
	if key == "" {
		key = in.Kind + ":" + randomID()
	}
	slugs := append([]string(nil), in.Sections...)
	sort.Strings(slugs)
	d := &models.Digest{
		Key: key, Kind: in.Kind, Subject: in.Subject, Intro: in.Intro, Status: models.DigestDraft,
		Sections: strings.Join(slugs, " "), Frequencies: strings.Join(freqs, " "),
		PeriodStart: in.Since, PeriodEnd: now, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.store.CreateDigest(ctx, d, ids); err != nil {
		return nil, err
	}
	return d, nil
}

func (s *Service) defaultSubject(kind string, now time.Time) string {
	day := now.In(s.cfg.Location).Format("Monday 2 January")
	switch kind {
	case models.DigestDaily:
		return "Your daily briefing: " + day
	case models.DigestWeekly:
		return "The week's stories: " + day
	case models.DigestAlert:
		return "News alert"
	}
	return "Stories for you: " + day
}

// Start sends a draft or scheduled digest: its deliveries are inserted in
// one set-based statement. Starting a digest that is already sending or
// sent sends nothing more.
func (s *Service) Start(ctx context.Context, id int64) (*models.Digest, error) {
	d, err := s.store.DigestByID(ctx, id)
	if err != nil {
		return nil, err
	}
	switch d.Status {
	case models.DigestSending, models.DigestSent, models.DigestPaused:
		return d, nil // idempotent: nothing more is sent
	case models.DigestCancelled:
		return nil, ErrBadState
	}
	aud, err := s.audience(ctx, d)
	if err != nil {
		return nil, err
	}
	if d.Kind == models.DigestAlert {
		aud.AlertCap, aud.AlertSince = s.cfg.AlertsPerDay, s.now().Add(-24*time.Hour)
	}
	n, err := s.store.EnqueueDigest(ctx, d.ID, aud, s.now(), []string{models.DigestDraft, models.DigestScheduled})
	if models.IsNotStartable(err) {
		return s.store.DigestByID(ctx, id) // another instance started it
	}
	if err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(ctx, "digest sending", slog.Int64("digest_id", d.ID), slog.String("key", d.Key),
		slog.Int64("recipients", n))
	s.cfg.OnEnqueue()
	return s.store.DigestByID(ctx, id)
}

func (s *Service) audience(ctx context.Context, d *models.Digest) (models.Audience, error) {
	aud := models.Audience{Frequencies: strings.Fields(d.Frequencies)}
	if d.Sections != "" {
		secs, err := s.store.SectionsBySlug(ctx, strings.Fields(d.Sections))
		if err != nil {
			return aud, err
		}
		for _, sec := range secs {
			aud.SectionIDs = append(aud.SectionIDs, sec.ID)
		}
		sort.Slice(aud.SectionIDs, func(i, j int) bool { return aud.SectionIDs[i] < aud.SectionIDs[j] })
	}
	return aud, nil
}

// Schedule sets a draft digest to start at a time.
func (s *Service) Schedule(ctx context.Context, id int64, at time.Time) error {
	ok, err := s.store.SetDigestStatus(ctx, id, []string{models.DigestDraft, models.DigestScheduled}, models.DigestScheduled,
		map[string]any{"scheduled_at": at.UTC(), "updated_at": s.now()})
	if err != nil {
		return err
	}
	if !ok {
		return ErrBadState
	}
	return nil
}

// Pause stops claiming a sending digest's deliveries; in-flight ones finish.
func (s *Service) Pause(ctx context.Context, id int64, reason string) error {
	return s.transition(ctx, id, []string{models.DigestSending}, models.DigestPaused, map[string]any{"pause_reason": reason})
}

// Resume continues a paused digest.
func (s *Service) Resume(ctx context.Context, id int64) error {
	if err := s.transition(ctx, id, []string{models.DigestPaused}, models.DigestSending, map[string]any{"pause_reason": ""}); err != nil {
		return err
	}
	s.cfg.OnEnqueue()
	return nil
}

// Cancel stops a digest for good: what has not gone is marked skipped.
func (s *Service) Cancel(ctx context.Context, id int64) error {
	err := s.transition(ctx, id, []string{models.DigestDraft, models.DigestScheduled, models.DigestSending, models.DigestPaused},
		models.DigestCancelled, map[string]any{"finished_at": s.now()})
	if err != nil {
		return err
	}
	_, err = s.store.SkipPending(ctx, id, "cancelled")
	return err
}

func (s *Service) transition(ctx context.Context, id int64, from []string, to string, updates map[string]any) error {
	if _, err := s.store.DigestByID(ctx, id); err != nil {
		return err
	}
	updates["updated_at"] = s.now()
	ok, err := s.store.SetDigestStatus(ctx, id, from, to, updates)
	if err != nil {
		return err
	}
	if !ok {
		return ErrBadState
	}
	return nil
}

// Progress is a digest with its delivery counters.
type Progress struct {
	Digest *models.Digest
	models.DigestCounts
}

// Get returns a digest and its counters.
func (s *Service) Get(ctx context.Context, id int64) (*Progress, error) {
	d, err := s.store.DigestByID(ctx, id)
	if err != nil {
		return nil, err
	}
	c, err := s.store.CountDigest(ctx, id)
	if err != nil {
		return nil, err
	}
	return &Progress{Digest: d, DigestCounts: c}, nil
}

// Stories returns a digest's stories in order.
func (s *Service) Stories(ctx context.Context, d *models.Digest) ([]*models.Story, error) {
	ids, err := s.store.DigestStoryIDs(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	byID, err := s.store.StoriesByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*models.Story, 0, len(ids))
	for _, id := range ids {
		if st := byID[id]; st != nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// SendTest sends the digest as the chosen reader (or, with asSubscriber 0,
// a sample with every story) to the given addresses, without touching its
// counters: test deliveries belong to no digest row.
func (s *Service) SendTest(ctx context.Context, id int64, to []string, asSubscriber int64) (int, error) {
	if _, err := s.store.DigestByID(ctx, id); err != nil {
		return 0, err
	}
	if len(to) == 0 || len(to) > 10 {
		return 0, FieldErrors{"to": "give one to ten addresses"}
	}
	if asSubscriber != 0 {
		if _, err := s.store.SubscriberByID(ctx, asSubscriber); err != nil {
			return 0, FieldErrors{"subscriber_id": "no such subscriber"}
		}
	}
	data, _ := json.Marshal(testData{DigestID: id, AsSubscriber: asSubscriber})
	now := s.now()
	var ds []*models.Delivery
	for _, addr := range to {
		addr = strings.TrimSpace(addr)
		if a, err := mail.ParseAddress(addr); err != nil || a.Address != addr || strings.ContainsAny(addr, "\r\n") {
			return 0, FieldErrors{"to": "not an email address: " + clip(addr, 60)}
		}
		ds = append(ds, &models.Delivery{Kind: models.KindTest, ToAddress: addr, Status: models.DeliveryPending,
			NextAttemptAt: now, Data: string(data), CreatedAt: now})
	}
	if err := s.store.CreateDeliveries(ctx, ds); err != nil {
		return 0, err
	}
	s.cfg.OnEnqueue()
	return len(ds), nil
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func dedupeIDs(ids []int64) []int64 {
	seen := map[int64]bool{}
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
