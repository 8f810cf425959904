package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"time"

	"herald/handlers"
)

func cmdServe(e *env, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		e.stderr.Write([]byte("Usage: herald serve\n\nRuns the web server, the signup committer, the feed poller and the delivery\nworkers in one process until SIGINT or SIGTERM. Configuration: HERALD_*\nvariables and .env (see .env.example).\n"))
	}
	if err := fs.Parse(args); err != nil {
		return exitFlag(err)
	}
	cfg, ok := loadConfig(e)
	if !ok {
		return 2
	}
	log := newLogger(cfg, e.stderr)
	ctx := e.ctx
	if cfg.SecretGenerated {
		log.Warn("HERALD_SECRET is not set: using a generated secret kept in the data directory; set HERALD_SECRET before going live",
			slog.String("data_dir", cfg.DataDir))
	}
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		return fail(e, "start: %v", err)
	}
	defer a.close()
	setup, err := a.firstRun(ctx)
	if err != nil {
		return fail(e, "first run: %v", err)
	}
	srv, err := handlers.New(a.handlerDeps(log, setup))
	if err != nil {
		return fail(e, "start: %v", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fail(e, "HERALD_ADDR: cannot listen on %s: %v", cfg.Addr, err)
	}
	base := cfg.BaseURL.String()
	log.Info("Herald is running", slog.String("url", base), slog.String("listen", ln.Addr().String()),
		slog.String("demo", base+"/demo"), slog.String("admin", base+"/admin"))
	switch {
	case setup != "":
		log.Info("no admin user yet: open this one-time link to create one (or set HERALD_ADMIN_EMAIL and HERALD_ADMIN_PASSWORD)",
			slog.String("setup_url", base+"/admin/setup/"+setup))
	case cfg.AdminEmail != "":
		log.Info("log in with HERALD_ADMIN_EMAIL and HERALD_ADMIN_PASSWORD", slog.String("login_url", base+"/admin/login"), slog.String("email", cfg.AdminEmail))
	default:
		log.Info("log in with your admin account", slog.String("login_url", base+"/admin/login"))
	}
	if cfg.DevMailbox() {
		log.Info("no HERALD_SMTP_URL: outgoing mail is kept in the dev mailbox", slog.String("mailbox", base+"/admin/mailbox"))
	}
	return serveUntilDone(ctx, a, srv, ln, log)
}

// serveUntilDone runs the parts and stops them in order when ctx ends (or
// one fails): stop taking requests and let in-flight ones finish, commit
// the signups already queued, let in-flight sends finish and return the
// rest of their leases, then (deferred by the caller) close the database.
func serveUntilDone(ctx context.Context, a *app, srv *handlers.Server, ln net.Listener, log *slog.Logger) int {
	httpSrv := &http.Server{
		Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	commitCtx, stopCommit := context.WithCancel(context.WithoutCancel(ctx))
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	pollCtx, stopPoll := context.WithCancel(context.WithoutCancel(ctx))
	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSched()
	defer stopCommit()
	defer stopWork()
	defer stopPoll()

	commitDone := make(chan error, 1)
	workDone := make(chan error, 1)
	pollDone := make(chan error, 1)
	schedDone := make(chan error, 1)
	httpDone := make(chan error, 1)
	go func() { commitDone <- a.subs.Run(commitCtx) }()
	if a.noEmail {
		go func() { <-workCtx.Done(); workDone <- nil }()
	} else {
		go func() { workDone <- a.worker.Run(workCtx) }()
	}
	go func() { pollDone <- a.poller.Run(pollCtx) }()
	go func() { schedDone <- a.sched.Run(schedCtx) }()
	go func() { httpDone <- httpSrv.Serve(ln) }()
	// Count the dashboard's whole-table figures now rather than on the
	// first editor's visit.
	warmCtx, stopWarm := context.WithCancel(ctx)
	defer stopWarm()
	warmDone := make(chan error, 1)
	go func() { warmDone <- srv.Warm(warmCtx) }()

	code := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-httpDone:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", slog.Any("error", err))
			code = 1
		}
	case err := <-commitDone:
		log.Error("signup committer stopped", slog.Any("error", err))
		commitDone <- err // for the wait below
		code = 1
	case err := <-workDone:
		log.Error("delivery worker stopped", slog.Any("error", err))
		workDone <- err
		code = 1
	case err := <-pollDone:
		log.Error("feed poller stopped", slog.Any("error", err))
		pollDone <- err
		code = 1
	case err := <-schedDone:
		log.Error("scheduler stopped", slog.Any("error", err))
		schedDone <- err
		code = 1
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		log.Warn("http shutdown", slog.Any("error", err))
	}
	stopWarm()
	waitFor(shutCtx, warmDone, "dashboard figures", log)
	stopPoll()
	waitFor(shutCtx, pollDone, "feed poller", log)
	stopSched()
	waitFor(shutCtx, schedDone, "scheduler", log)
	stopCommit()
	waitFor(shutCtx, commitDone, "signup committer", log)
	stopWork()
	waitFor(shutCtx, workDone, "delivery worker", log)
	log.Info("stopped")
	return code
}

func waitFor(ctx context.Context, done <-chan error, name string, log *slog.Logger) {
	select {
	case err := <-done:
		if err != nil {
			log.Warn(name+" stopped with an error", slog.Any("error", err))
		}
	case <-ctx.Done():
		log.Warn(name + " did not stop in time")
	}
}

func exitFlag(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
