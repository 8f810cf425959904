package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"herald/accounts"
	"herald/config"
	"herald/delivery"
	"herald/digests"
	"herald/handlers"
	"herald/mailer"
	"herald/models"
	"herald/stories"
	"herald/subscribers"
	"herald/templates"
)

// app is Herald's assembled parts, built once from the configuration.
type app struct {
	cfg     *config.Config
	log     *slog.Logger
	store   *models.Store
	tpl     *templates.Set
	subs    *subscribers.Service
	acc     *accounts.Accounts
	worker  *delivery.Worker
	stories *stories.Service
	poller  *stories.Poller
	digests *digests.Service
	sched   *digests.Scheduler
	// digestMails renders digests for the worker and the admin preview.
	digestMails *digests.Renderer
	closers     []func() error
	// noEmail keeps the delivery worker from running (bench signup
	// --no-email): emails stay queued, as if the SMTP server were down.
	noEmail bool
}

func loadConfig(e *env) (*config.Config, bool) {
	cfg, err := config.Load(e.getenv, ".env")
	if err != nil {
		fmt.Fprintf(e.stderr, "herald: configuration error:\n")
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(e.stderr, "  %s\n", line)
		}
		return nil, false
	}
	return cfg, true
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore opens and migrates the database.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (*models.Store, error) {
	store, err := models.Open(ctx, cfg.DB, models.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		_ = store.Close()
		return nil, err
	}
	return store, nil
}

// buildApp assembles the services; the caller closes it.
func buildApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, store: store, closers: []func() error{store.Close}}
	if err := a.build(); err != nil {
		_ = a.close()
		return nil, err
	}
	return a, nil
}

func (a *app) build() error {
	cfg := a.cfg
	tpl, err := templates.New()
	if err != nil {
		return err
	}
	a.tpl = tpl
	block, err := subscribers.NewBlocklist(cfg.DisposableDomainsFile)
	if err != nil {
		return err
	}
	tokens := subscribers.NewTokens(cfg.Secret, cfg.OldSecrets...)
	fromAddr, _ := mail.ParseAddress(cfg.From)
	domain := "localhost"
	if fromAddr != nil {
		domain = subscribers.DomainOf(strings.ToLower(fromAddr.Address))
	}
	var wake func()
	a.acc = accounts.New(a.store, accounts.Config{SessionIdle: a.cfg.SessionIdle, SessionMax: a.cfg.SessionMax})
	// A new story may need an instant alert: wake the scheduler.
	var storyAdded func()
	a.stories = stories.New(a.store, stories.Config{Logger: a.log, OnNew: func(context.Context, *models.Story, []int64) { storyAdded() }})
	a.poller = stories.NewPoller(a.store, a.stories, stories.PollerConfig{
		Logger: a.log, UserAgent: "Herald feed poller (+" + cfg.BaseURL.String() + ")",
	})
	site := templates.Site{
		Name: cfg.SiteName, URL: cfg.SiteURL, PrivacyURL: cfg.PrivacyURL,
		PostalAddress: cfg.PostalAddress, BaseURL: cfg.BaseURL.String(),
	}
	mails, err := subscribers.NewMails(subscribers.MailConfig{
		Templates: tpl, Tokens: tokens, Site: site, From: cfg.From,
		ListID: fmt.Sprintf("%s <newsletter.%s>", cfg.SiteName, domain),
	})
	if err != nil {
		return err
	}
	var sender mailer.Sender
	if cfg.DevMailbox() {
		sender = mailer.NewDevMailbox(a.store).WithDKIM(cfg.DKIM)
	} else {
		pool, err := mailer.NewSMTP(mailer.SMTPConfig{
			Servers: cfg.SMTP, Connections: cfg.SMTPConnections, Logger: a.log, DKIM: cfg.DKIM,
		})
		if err != nil {
			return err
		}
		a.closers = append(a.closers, pool.Close)
		sender = pool
	}
	a.digests = digests.New(a.store, digests.Config{
		Location: cfg.Location, AlertsPerDay: cfg.AlertsPerDay, OnEnqueue: func() { wake() }, Logger: a.log,
	})
	a.sched = digests.NewScheduler(a.digests, digests.ScheduleConfig{
		DailyAt: cfg.DailyAt, WeeklyDay: cfg.WeeklyDay, WeeklyAt: cfg.WeeklyAt, Review: cfg.Review,
	})
	storyAdded = a.sched.Wake
	a.digestMails, err = digests.NewRenderer(digests.RenderConfig{
		Store: a.store, Templates: tpl, Site: site, From: cfg.From, Location: cfg.Location,
		ListID: fmt.Sprintf("%s <newsletter.%s>", cfg.SiteName, domain),
		Links:  tokens.ReaderLinks(site.BaseURL),
	})
	if err != nil {
		return err
	}
	a.worker = delivery.New(delivery.Config{
		OnRecorded: a.sched.Wake,
		Store:      a.store, Sender: sender, Concurrency: cfg.SMTPConnections, SendRate: cfg.SendRate, Lease: cfg.Lease, Logger: a.log,
		Renderers: map[string]delivery.Renderer{
			models.KindConfirmation: mails,
			models.KindNotice:       mails,
			models.KindDigest:       a.digestMails,
			models.KindTest:         a.digestMails,
		},
	})
	wake = a.worker.Wake
	// Signups hand their confirmations straight to the worker.
	a.subs = subscribers.New(a.store, subscribers.Config{
		Tokens: tokens, ConfirmTTL: cfg.ConfirmTTL, ConsentText: cfg.ConsentText,
		PolicyVersion: cfg.PrivacyVersion, RequireConsent: cfg.RequireConsent,
		DefaultSections: cfg.DefaultSections, Blocklist: block, MessageDomain: domain,
		OnEnqueue: a.worker.Wake, Handoff: a.worker, Logger: a.log,
	})
	return nil
}

// handlerDeps is what the HTTP handlers need from the app.
func (a *app) handlerDeps(log *slog.Logger, setupToken string) handlers.Deps {
	d := handlers.Deps{
		Config: a.cfg, Store: a.store, Subscribers: a.subs, Accounts: a.acc, Stories: a.stories,
		Digests: a.digests, Templates: a.tpl, Logger: log, Registry: prometheus.NewRegistry(), SetupToken: setupToken,
		DigestRenderer: a.digestMails,
	}
	if !a.cfg.DevMailbox() {
		// The settings page's test dials the relays afresh rather than
		// borrowing a pooled connection, so it proves that new connections
		// (TLS, AUTH) still work.
		servers := a.cfg.SMTP
		d.CheckSMTP = func(ctx context.Context) error {
			return mailer.Check(ctx, mailer.SMTPConfig{Servers: servers, Logger: log})
		}
	}
	return d
}

func (a *app) close() error {
	var first error
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// firstRun makes a fresh install usable at once: a sample section so the
// form works, the admin from HERALD_ADMIN_EMAIL/PASSWORD, or else a
// one-time setup token (returned) when no admin exists yet.
func (a *app) firstRun(ctx context.Context) (setupToken string, err error) {
	n, err := a.store.CountSections(ctx)
	if err != nil {
		return "", err
	}
	if n == 0 {
		sec := &models.Section{Slug: "politics-uk", Name: "Politics UK", Description: "Westminster, the devolved governments and the stories behind the votes."}
		if err := a.store.CreateSection(ctx, sec); err != nil && !models.IsUniqueViolation(err) {
			return "", err
		}
		a.log.InfoContext(ctx, "created a sample section", slog.String("slug", sec.Slug))
	}
	if a.cfg.AdminEmail != "" {
		created, err := a.acc.EnsureUser(ctx, a.cfg.AdminEmail, a.cfg.AdminPassword, models.RoleAdmin)
		if err != nil {
			return "", fmt.Errorf("HERALD_ADMIN_EMAIL: %w", err)
		}
		if created {
			a.log.InfoContext(ctx, "created the admin user from HERALD_ADMIN_EMAIL", slog.String("email", a.cfg.AdminEmail))
		}
	}
	has, err := a.acc.HasUsers(ctx)
	if err != nil || has {
		return "", err
	}
	return accounts.RandomToken(24), nil
}

func fail(e *env, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "herald: "+format+"\n", args...)
	return 1
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
