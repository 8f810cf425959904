package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"herald/config"
	"herald/digests"
	"herald/mailer"
	"herald/models"
	"herald/subscribers"
	"herald/templates"
)

// cmdBenchSend measures a digest send through the whole engine against a
// plain go-mail loop sending the same number of same-size messages over the
// same number of connections to the same SMTP sink.
func cmdBenchSend(e *env, args []string) int {
	fs := flag.NewFlagSet("bench send", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	readers := fs.Int("readers", 100000, "readers to seed and send the digest to")
	conns := fs.Int("connections", 8, "SMTP connections, for Herald (HERALD_SMTP_CONNECTIONS) and the go-mail baseline alike")
	db := fs.String("db", "", "database: a SQLite path or postgres:// URL (default: a new SQLite file in a temp dir)")
	var enqueueOnly enqueueOnlyFlag
	fs.Var(&enqueueOnly, "enqueue-only", "seed the readers and time only the enqueue, sending nothing (--enqueue-only, or --enqueue-only N for N readers)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of Herald's send (or, with --enqueue-only, of the enqueue) to this file")
	sinkImpl := fs.String("sink", "go-smtp", "the SMTP sink: go-smtp (the ratio targets were measured against it) or lean")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end of Herald's send to this file")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: herald bench send [flags]\n\nSeeds N active readers (one section, daily), makes a digest of three stories\nand sends it through Herald's engine (enqueue, claim, render, SMTP pool,\nrecord) to an SMTP sink in another process; then sends N copies of one\nmessage of the same size over the same number of connections with plain\ngo-mail. Prints both rates, their ratio, the enqueue time, Herald's peak\nRSS and the CPU per message of Herald and of the sink.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitFlag(err)
	}
	rest := fs.Args()
	// "--enqueue-only 1000000": a boolean-style flag followed by its count.
	if enqueueOnly.set && enqueueOnly.n == 0 && len(rest) > 0 {
		if v, err := strconv.Atoi(rest[0]); err == nil && v > 0 {
			enqueueOnly.n, rest = v, rest[1:]
		}
	}
	if len(rest) > 0 {
		fmt.Fprintf(e.stderr, "herald bench send: unexpected argument %q\n", rest[0])
		return 2
	}
	n := *readers
	if enqueueOnly.n > 0 {
		n = enqueueOnly.n
	}
	if n < 1 || *conns < 1 || *conns > 256 {
		fmt.Fprintln(e.stderr, "herald bench send: --readers must be at least 1 and --connections 1 to 256")
		return 2
	}
	progress := func(format string, args ...any) {
		fmt.Fprintf(e.stderr, "bench send: "+format+"\n", args...)
	}

	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()

	dir, err := os.MkdirTemp("", "herald-bench-send-")
	if err != nil {
		return fail(e, "bench: %v", err)
	}
	defer os.RemoveAll(dir)
	if *db == "" {
		*db = filepath.Join(dir, "bench.db")
	}
	postgres := models.IsPostgres(*db)

	var sink *countingSink
	if !enqueueOnly.set {
		if sink, err = startCountingSink(ctx, *sinkImpl); err != nil {
			return fail(e, "bench: %v", err)
		}
		defer sink.stop()
	}

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	logLevel := os.Getenv("HERALD_BENCH_LOG")
	if logLevel == "" {
		logLevel = "warn"
	}
	vals := map[string]string{
		"HERALD_DB": *db, "HERALD_BASE_URL": "http://127.0.0.1:8080",
		"HERALD_SMTP_CONNECTIONS": strconv.Itoa(*conns), "HERALD_SEND_RATE": "0",
		"HERALD_SECRET": hex.EncodeToString(secret), "HERALD_LOG_LEVEL": logLevel, "HERALD_DATA_DIR": dir,
	}
	if sink != nil {
		vals["HERALD_SMTP_URL"] = "smtp://" + sink.addr + "?tls=none"
	}
	cfg, err := config.Load(func(k string) string { return vals[k] }, "")
	if err != nil {
		return fail(e, "bench: %v", err)
	}
	log := newLogger(cfg, e.stderr)
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		return fail(e, "bench: %v", err)
	}
	closeApp := sync.OnceValue(a.close)
	defer closeApp()

	backend := "SQLite"
	if postgres {
		backend = "Postgres"
	}
	if sink != nil {
		fmt.Fprintf(e.stdout, "herald bench send: %s, %d readers, %d SMTP connections, sink in process %d, %d CPUs\n\n",
			backend, n, *conns, sink.cmd.Process.Pid, runtime.NumCPU())
	} else {
		fmt.Fprintf(e.stdout, "herald bench send --enqueue-only: %s, %d readers, %d CPUs\n\n", backend, n, runtime.NumCPU())
	}

	// Seed: readers, their subscriptions, three stories and the digest.
	tag := randomTag()
	sec := &models.Section{Slug: "bench-" + tag, Name: "Bench " + tag, Description: "Readers made by herald bench send."}
	if err := a.store.CreateSection(ctx, sec); err != nil {
		return fail(e, "bench: create section: %v", err)
	}
	progress("seeding %d readers", n)
	t0 := time.Now()
	firstID, err := seedReaders(ctx, *db, postgres, n, sec.ID, tag, progress)
	if err != nil {
		return fail(e, "bench: seed: %v", err)
	}
	seedTime := time.Since(t0)
	storyIDs, err := seedStories(ctx, a.store, sec.ID, tag)
	if err != nil {
		return fail(e, "bench: seed stories: %v", err)
	}
	d, err := a.digests.Create(ctx, digests.Input{
		Kind: models.DigestManual, Subject: "Herald bench: the day's three stories",
		Intro:    "Good morning. Three stories from the newsroom, picked for the sections you follow.",
		StoryIDs: storyIDs, Sections: []string{sec.Slug}, Frequencies: []string{models.FrequencyDaily},
	})
	if err != nil {
		return fail(e, "bench: create digest: %v", err)
	}
	fmt.Fprintf(e.stdout, "seed:     %d readers in %s (not part of the measurements)\n", n, seedTime.Round(time.Millisecond))

	// One of Herald's digest messages, rendered as the worker would, for
	// its size and as the go-mail baseline's message.
	var sample *mailer.Message
	var sampleSize int
	if sink != nil {
		if sample, sampleSize, err = renderSample(ctx, a, cfg, d.ID, firstID); err != nil {
			return fail(e, "bench: render a sample message: %v", err)
		}
		fmt.Fprintf(e.stdout, "message:  %d bytes (Herald's digest as rendered for one reader: 3 stories, text + HTML)\n", sampleSize)
	}

	// Herald's peak memory is measured from here on: the seeding above is
	// not Herald's work.
	runtime.GC()
	debug.FreeOSMemory()
	hwmReset := resetPeakRSS() == nil
	rssBase := procStatusKB("VmRSS")

	stopProfile := func() {}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fail(e, "bench: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(e, "bench: %v", err)
		}
		var once sync.Once
		stopProfile = func() { once.Do(pprof.StopCPUProfile) }
		defer stopProfile()
	}

	// (a) Enqueue: the set-based INSERT … SELECT of the deliveries.
	progress("enqueueing")
	cpuEnq := processCPU(os.Getpid())
	t0 = time.Now()
	started, err := a.digests.Start(ctx, d.ID)
	if err != nil {
		return fail(e, "bench: start digest: %v", err)
	}
	enqueueTime := time.Since(t0)
	cpuEnq = processCPU(os.Getpid()) - cpuEnq
	recipients := started.Recipients
	fmt.Fprintf(e.stdout, "enqueue:  %d deliveries in %s (%.0f rows/s, cpu %s)\n", recipients,
		enqueueTime.Round(time.Millisecond), float64(recipients)/enqueueTime.Seconds(), cpuEnq.Round(time.Millisecond))
	if recipients != n {
		return fail(e, "bench: the digest has %d recipients, want %d", recipients, n)
	}
	if enqueueOnly.set {
		stopProfile()
		fmt.Fprintf(e.stdout, "peak RSS: %s during the enqueue%s\n", peakRSSText(procStatusKB("VmHWM")), hwmNote(hwmReset, rssBase))
		if n >= 1000000 {
			fmt.Fprintf(e.stdout, "target:   1,000,000 deliveries in under 10 s: %s\n", passFail(enqueueTime < 10*time.Second))
		}
		return 0
	}

	// (b) Herald's send: the real delivery worker until nothing is pending.
	progress("Herald sending %d messages over %d connections", n, *conns)
	cpu0, sinkCPU0 := processCPU(os.Getpid()), processCPU(sink.cmd.Process.Pid)
	base := sink.count.Load()
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan error, 1)
	// Stop the worker (and let it record what it sent) before the app
	// is closed, on every way out.
	waitWorker := sync.OnceValue(func() error { stopWorker(); return <-workerDone })
	start := time.Now()
	go func() { workerDone <- a.worker.Run(wctx) }()
	defer waitWorker()
	got, err := sink.waitFor(ctx, base+int64(n), start, "Herald", progress, func() (bool, error) {
		c, err := a.store.CountDigest(ctx, d.ID)
		if err != nil {
			return false, err
		}
		if c.Pending == 0 {
			progress("digest has no pending deliveries: %d sent, %d failed, %d skipped", c.Sent, c.Failed, c.Skipped)
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fail(e, "bench: Herald's send: %v", err)
	}
	heraldLast := sink.lastAt()
	// Every message is accepted; wait for the results to be recorded.
	var counts models.DigestCounts
	for {
		if counts, err = a.store.CountDigest(ctx, d.ID); err != nil {
			return fail(e, "bench: %v", err)
		}
		if counts.Pending == 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	recorded := time.Since(start)
	if err := waitWorker(); err != nil {
		return fail(e, "bench: delivery worker: %v", err)
	}
	stopProfile()
	heraldCPU := processCPU(os.Getpid()) - cpu0
	heraldSinkCPU := processCPU(sink.cmd.Process.Pid) - sinkCPU0
	peak := procStatusKB("VmHWM")
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return fail(e, "bench: %v", err)
		}
	}
	if err := closeApp(); err != nil { // its SMTP connections too
		return fail(e, "bench: %v", err)
	}
	heraldN := got - base
	heraldElapsed := heraldLast.Sub(start)
	heraldRate := float64(heraldN) / heraldElapsed.Seconds()

	// (c) The baseline: plain go-mail, same message size, same connections.
	progress("go-mail sending %d messages over %d connections", n, *conns)
	runtime.GC()
	cpu0, sinkCPU0 = processCPU(os.Getpid()), processCPU(sink.cmd.Process.Pid)
	base = sink.count.Load()
	start = time.Now()
	bres := runGoMailBaseline(ctx, sink.addr, *conns, n, sample, tag)
	if bres.err != nil && bres.sent == 0 {
		return fail(e, "bench: go-mail baseline: %v", bres.err)
	}
	got, err = sink.waitFor(ctx, base+int64(bres.sent), start, "go-mail", progress, nil)
	if err != nil {
		return fail(e, "bench: go-mail baseline: %v", err)
	}
	plainElapsed := sink.lastAt().Sub(start)
	plainN := got - base
	plainRate := float64(plainN) / plainElapsed.Seconds()
	plainCPU := processCPU(os.Getpid()) - cpu0
	plainSinkCPU := processCPU(sink.cmd.Process.Pid) - sinkCPU0

	per := func(d time.Duration, n int64) string {
		return (d / time.Duration(max(1, n))).Round(time.Microsecond).String()
	}
	fmt.Fprintf(e.stdout, "herald:   %d messages in %s = %.0f msg/s (all results recorded after %s; %d sent, %d failed, %d skipped)\n",
		heraldN, heraldElapsed.Round(time.Millisecond), heraldRate, recorded.Round(time.Millisecond), counts.Sent, counts.Failed, counts.Skipped)
	fmt.Fprintf(e.stdout, "          cpu per message: herald %s, sink %s\n", per(heraldCPU, heraldN), per(heraldSinkCPU, heraldN))
	fmt.Fprintf(e.stdout, "go-mail:  %d messages in %s = %.0f msg/s (go-mail %s: a Client per connection, DialWithContext once, Send in a loop, WithoutNoop, WithoutRset)\n",
		plainN, plainElapsed.Round(time.Millisecond), plainRate, goMailVersion())
	fmt.Fprintf(e.stdout, "          cpu per message: sender %s, sink %s\n", per(plainCPU, plainN), per(plainSinkCPU, plainN))
	if bres.err != nil {
		fmt.Fprintf(e.stdout, "          %d go-mail sends failed (%v)\n", n-bres.sent, bres.err)
	}
	fmt.Fprintf(e.stdout, "ratio:    %.2f (Herald / go-mail; target at least 0.8)\n", heraldRate/plainRate)
	target := ""
	switch {
	case n == 100000:
		target = fmt.Sprintf("; target under 150 MB at 100,000 readers: %s", passFail(peak < 150*1024))
	case n == 1000000:
		target = fmt.Sprintf("; target under 250 MB at 1,000,000 readers: %s", passFail(peak < 250*1024))
	}
	fmt.Fprintf(e.stdout, "peak RSS: %s during Herald's enqueue and send%s%s\n", peakRSSText(peak), hwmNote(hwmReset, rssBase), target)
	return 0
}

// enqueueOnlyFlag is --enqueue-only, alone (the --readers count) or with a
// count (--enqueue-only=N or --enqueue-only N).
type enqueueOnlyFlag struct {
	set bool
	n   int
}

func (f *enqueueOnlyFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.Itoa(f.n)
}

func (f *enqueueOnlyFlag) Set(s string) error {
	switch s {
	case "true":
		f.set = true
		return nil
	case "false":
		f.set = false
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return errors.New("want a positive number of readers")
	}
	f.set, f.n = true, v
	return nil
}

func (f *enqueueOnlyFlag) IsBoolFlag() bool { return true }

// renderSample renders the digest for one reader exactly as the worker
// does (a renderer configured as buildApp configures it, the worker's
// Message-ID form), and returns the message and its size on the wire.
func renderSample(ctx context.Context, a *app, cfg *config.Config, digestID, subscriberID int64) (*mailer.Message, int, error) {
	fromAddr, _ := mail.ParseAddress(cfg.From)
	domain := "localhost"
	if fromAddr != nil {
		domain = subscribers.DomainOf(strings.ToLower(fromAddr.Address))
	}
	tokens := subscribers.NewTokens(cfg.Secret, cfg.OldSecrets...)
	site := templates.Site{
		Name: cfg.SiteName, URL: cfg.SiteURL, PrivacyURL: cfg.PrivacyURL,
		PostalAddress: cfg.PostalAddress, BaseURL: cfg.BaseURL.String(),
	}
	r, err := digests.NewRenderer(digests.RenderConfig{
		Store: a.store, Templates: a.tpl, Site: site, From: cfg.From, Location: cfg.Location,
		ListID: fmt.Sprintf("%s <newsletter.%s>", cfg.SiteName, domain),
		Links:  tokens.ReaderLinks(site.BaseURL),
	})
	if err != nil {
		return nil, 0, err
	}
	sub, err := a.store.SubscriberByID(ctx, subscriberID)
	if err != nil {
		return nil, 0, err
	}
	d := &models.Delivery{ID: subscriberID, Kind: models.KindDigest, DigestID: &digestID, SubscriberID: &subscriberID}
	msg, err := r.Render(ctx, d, sub)
	if err != nil {
		return nil, 0, err
	}
	msg.To = sub.Email
	msg.MessageID = fmt.Sprintf("herald.delivery.%d@%s", d.ID, domain)
	raw, err := mailer.Render(msg)
	if err != nil {
		return nil, 0, err
	}
	return msg, len(raw), nil
}
