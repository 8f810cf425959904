package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"herald/config"
	"herald/handlers"
)

func cmdBenchSignup(e *env, args []string) int {
	fs := flag.NewFlagSet("bench signup", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	clientsFlag := fs.String("clients", "16,64", "comma-separated concurrent client counts, one round each")
	duration := fs.Duration("duration", 10*time.Second, "how long each round sends signups")
	db := fs.String("db", "", "database: a SQLite path or postgres:// URL (default: a new SQLite file in a temp dir)")
	conns := fs.Int("connections", 4, "SMTP connections (HERALD_SMTP_CONNECTIONS)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the run to this file")
	sinkImpl := fs.String("sink", "lean", "the SMTP sink: lean (a minimal pipelining SMTP server) or go-smtp")
	noEmail := fs.Bool("no-email", false, "do not run the delivery worker: measure the signup path alone (confirmations stay queued)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: herald bench signup [flags]\n\nRuns Herald in this process against an SMTP sink in another process, sends\nsignups through the real HTTP stack (POST /api/v1/subscribe) from N\nconcurrent clients, and reports signups per second, p50/p99 latency and the\ndelay from each signup's answer to its confirmation being accepted by the\nSMTP server.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitFlag(err)
	}
	var rounds []int
	for _, s := range strings.Split(*clientsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(e.stderr, "herald bench signup: --clients %q is not a list of positive numbers\n", *clientsFlag)
			return 2
		}
		rounds = append(rounds, n)
	}

	sink, err := startSink(e.ctx, *sinkImpl)
	if err != nil {
		return fail(e, "bench: %v", err)
	}
	defer sink.stop()

	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return fail(e, "bench: %v", err)
	}
	defer os.RemoveAll(dir)
	if *db == "" {
		*db = filepath.Join(dir, "bench.db")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(e, "bench: %v", err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	vals := map[string]string{
		"HERALD_DB": *db, "HERALD_BASE_URL": "http://" + ln.Addr().String(), "HERALD_ADDR": ln.Addr().String(),
		"HERALD_SMTP_URL": "smtp://" + sink.addr + "?tls=none", "HERALD_SMTP_CONNECTIONS": strconv.Itoa(*conns),
		"HERALD_SIGNUP_LIMIT": "1000000", "HERALD_MIN_SUBMIT_TIME": "0s", "HERALD_SECRET": hex.EncodeToString(secret),
		"HERALD_LOG_LEVEL": os.Getenv("HERALD_BENCH_LOG"), "HERALD_DATA_DIR": dir,
	}
	cfg, err := config.Load(func(k string) string { return vals[k] }, "")
	if err != nil {
		return fail(e, "bench: %v", err)
	}
	log := newLogger(cfg, e.stderr)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		return fail(e, "bench: %v", err)
	}
	defer a.close()
	a.noEmail = *noEmail
	if _, err := a.firstRun(ctx); err != nil {
		return fail(e, "bench: %v", err)
	}
	srv, err := handlers.New(a.handlerDeps(log, ""))
	if err != nil {
		return fail(e, "bench: %v", err)
	}
	served := make(chan int, 1)
	go func() { served <- serveUntilDone(ctx, a, srv, ln, slog.New(slog.DiscardHandler)) }()

	backend := "SQLite"
	if strings.HasPrefix(*db, "postgres") {
		backend = "Postgres"
	}
	mail := fmt.Sprintf("%d SMTP connections, %s sink in process %d", *conns, *sinkImpl, sink.cmd.Process.Pid)
	if *noEmail {
		mail = "email worker off (confirmations stay queued)"
	}
	fmt.Fprintf(e.stdout, "herald bench signup: %s, %s, %s per round\n\n", backend, mail, *duration)
	fmt.Fprintf(e.stdout, "%8s %10s %12s %10s %10s %10s %14s %14s %10s %12s %10s %10s\n",
		"clients", "signups", "signups/s", "p50", "p99", "max", "confirm p50", "confirm p99", "confirmed", "herald cpu", "sink cpu", "load cpu")
	url := "http://" + ln.Addr().String() + "/api/v1/subscribe"
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fail(e, "bench: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(e, "bench: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	// Addresses are new on every run, even on a database kept from before.
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	runTag := hex.EncodeToString(tag) + "."
	for i, clients := range rounds {
		cpu0, sink0 := processCPU(os.Getpid()), processCPU(sink.cmd.Process.Pid)
		r, loadCPU, err := runLoadProcess(ctx, url, runTag, i, clients, *duration)
		if err != nil {
			return fail(e, "bench: %v", err)
		}
		confirmed, delays := 0, []time.Duration(nil)
		if !*noEmail {
			confirmed, delays = sink.waitFor(r.done, 60*time.Second)
		}
		// CPU per signup, whole round including the confirmations sent
		// after the load stopped. The load generator and the sink are
		// processes of their own, each counted apart.
		n := time.Duration(max(1, len(r.done)))
		cpu, sinkCPU := (processCPU(os.Getpid())-cpu0)/n, (processCPU(sink.cmd.Process.Pid)-sink0)/n
		fmt.Fprintf(e.stdout, "%8d %10d %12.0f %10s %10s %10s %14s %14s %9d%% %10s/op %8s/op %8s/op\n",
			clients, len(r.done), float64(len(r.done))/max(time.Millisecond, r.elapsed).Seconds(),
			pct(r.latencies, 50), pct(r.latencies, 99), pct(r.latencies, 100),
			pct(delays, 50), pct(delays, 99), 100*confirmed/max(1, len(r.done)),
			cpu.Round(time.Microsecond), sinkCPU.Round(time.Microsecond), (loadCPU / n).Round(time.Microsecond))
		if r.errors > 0 {
			fmt.Fprintf(e.stdout, "         %d requests failed (%s)\n", r.errors, r.firstErr)
		}
	}
	cancel()
	<-served
	if *memProfile != "" {
		if err := writeAllocsProfile(*memProfile); err != nil {
			return fail(e, "bench: %v", err)
		}
	}
	return 0
}

type roundResult struct {
	latencies []time.Duration
	// done maps each accepted address to when its answer arrived.
	done     map[string]time.Time
	elapsed  time.Duration
	errors   int
	firstErr string
}

// processCPU is a process's user+system CPU time so far, from /proc (0
// where /proc is not there).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s) - 1) * p / 100
	return s[i].Round(10 * time.Microsecond).String()
}

// sinkProcess is the SMTP sink child process and what it has accepted.
type sinkProcess struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	addr     string
	mu       sync.Mutex
	accepted map[string]time.Time
	exited   chan struct{}
}

// launchSink starts `herald bench smtp-sink` as a child process; closing
// its stdin stops it, and it reports on stdout.
func launchSink(ctx context.Context, impl string) (*exec.Cmd, io.WriteCloser, io.ReadCloser, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "smtp-sink", "--impl", impl)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, fmt.Errorf("start smtp sink: %w", err)
	}
	return cmd, stdin, stdout, nil
}

func startSink(ctx context.Context, impl string) (*sinkProcess, error) {
	cmd, stdin, stdout, err := launchSink(ctx, impl)
	if err != nil {
		return nil, err
	}
	s := &sinkProcess{cmd: cmd, stdin: stdin, accepted: map[string]time.Time{}, exited: make(chan struct{})}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "LISTENING ") {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("smtp sink did not start")
	}
	s.addr = strings.TrimPrefix(sc.Text(), "LISTENING ")
	go func() {
		defer close(s.exited)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ACCEPTED" {
				continue
			}
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			s.mu.Lock()
			s.accepted[strings.ToLower(f[2])] = time.Unix(0, ns)
			s.mu.Unlock()
		}
	}()
	return s, nil
}

// waitFor waits until every address in done was accepted (or timeout) and
// returns how many were, and the delays from answer to acceptance.
func (s *sinkProcess) waitFor(done map[string]time.Time, timeout time.Duration) (int, []time.Duration) {
	limit := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		n := 0
		for email := range done {
			if _, ok := s.accepted[email]; ok {
				n++
			}
		}
		s.mu.Unlock()
		if n == len(done) || time.Now().After(limit) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var delays []time.Duration
	for email, answered := range done {
		if at, ok := s.accepted[email]; ok {
			delays = append(delays, at.Sub(answered))
		}
	}
	return len(delays), delays
}

func (s *sinkProcess) stop() {
	_ = s.stdin.Close()
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
	}
	_ = s.cmd.Wait()
}
