package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// cmdSMTPSink runs a throwaway SMTP server that accepts every message and
// prints "ACCEPTED <unix-nanos> <recipient>" per message on stdout. The
// benchmarks start it as a separate process so that its work is not
// counted against Herald's.
func cmdSMTPSink(e *env, args []string) int {
	fs := flag.NewFlagSet("bench smtp-sink", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	quiet := fs.Bool("quiet", false, "count messages instead of printing each")
	impl := fs.String("impl", "lean", "the server: lean (a minimal pipelining SMTP server) or go-smtp")
	if err := fs.Parse(args); err != nil {
		return exitFlag(err)
	}
	if *impl != "lean" && *impl != "go-smtp" {
		fmt.Fprintf(e.stderr, "herald bench smtp-sink: --impl %q must be lean or go-smtp\n", *impl)
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(e, "smtp-sink: %v", err)
	}
	log := &sinkLog{out: bufio.NewWriterSize(e.stdout, 64<<10), quiet: *quiet}
	if *impl == "lean" {
		lean := &leanSink{log: log}
		return runSink(e, ln, log, func() { lean.serve(ln) }, func() { _ = ln.Close() })
	}
	srv := smtp.NewServer(&sinkBackend{log: log})
	srv.Domain = "sink.localhost"
	srv.AllowInsecureAuth = true
	srv.MaxRecipients = 100
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	return runSink(e, ln, log, func() { _ = srv.Serve(ln) }, func() { _ = srv.Close() })
}

// runSink announces the sink, runs serve until the parent closes our stdin
// (or ctx ends), flushing the ACCEPTED lines every 50 ms, and ends with
// the total.
func runSink(e *env, ln net.Listener, log *sinkLog, serve, stop func()) int {
	log.mu.Lock()
	fmt.Fprintf(log.out, "LISTENING %s\n", ln.Addr())
	_ = log.out.Flush()
	log.mu.Unlock()
	flushed := make(chan struct{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-flushed:
				return
			case <-t.C:
				log.flush()
			}
		}
	}()
	go func() { <-e.ctx.Done(); stop() }()
	go func() { _, _ = io.Copy(io.Discard, e.stdin); stop() }()
	serve()
	close(flushed)
	log.mu.Lock()
	defer log.mu.Unlock()
	fmt.Fprintf(log.out, "TOTAL %d\n", log.n)
	_ = log.out.Flush()
	return 0
}

// sinkLog is where a sink reports what it accepted.
type sinkLog struct {
	mu    sync.Mutex // guards out and n
	out   *bufio.Writer
	quiet bool
	n     int64
}

// accepted counts a message to rcpts and, unless quiet, reports each.
func (l *sinkLog) accepted(rcpts []string) {
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, to := range rcpts {
		l.n++
		if !l.quiet {
			_, _ = l.out.WriteString("ACCEPTED " + now + " " + to + "\n")
		}
	}
}

// flush writes the buffered ACCEPTED lines.
func (l *sinkLog) flush() {
	l.mu.Lock()
	_ = l.out.Flush()
	l.mu.Unlock()
}

// sinkBackend is the go-smtp sink.
type sinkBackend struct{ log *sinkLog }

func (b *sinkBackend) NewSession(_ *smtp.Conn) (smtp.Session, error) {
	return &sinkSession{log: b.log}, nil
}

type sinkSession struct {
	log *sinkLog
	to  []string
}

func (s *sinkSession) AuthPlain(string, string) error            { return nil }
func (s *sinkSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = append(s.to, to); return nil }
func (s *sinkSession) Reset()                                    { s.to = s.to[:0] }
func (s *sinkSession) Logout() error                             { return nil }
func (s *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.log.accepted(s.to)
	return nil
}
