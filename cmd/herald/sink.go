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
	out := bufio.NewWriterSize(e.stdout, 64<<10)
	if *impl == "lean" {
		return runLeanSink(e, ln, out, *quiet)
	}
	sink := &sinkBackend{out: out, quiet: *quiet}
	srv := smtp.NewServer(sink)
	srv.Domain = "sink.localhost"
	srv.AllowInsecureAuth = true
	srv.MaxRecipients = 100
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	fmt.Fprintf(out, "LISTENING %s\n", ln.Addr())
	out.Flush()
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-e.ctx.Done():
				return
			case <-t.C:
				sink.mu.Lock()
				out.Flush()
				sink.mu.Unlock()
			}
		}
	}()
	go func() { <-e.ctx.Done(); _ = srv.Close() }()
	// The parent closes our stdin to stop us.
	go func() { _, _ = io.Copy(io.Discard, e.stdin); _ = srv.Close() }()
	_ = srv.Serve(ln)
	sink.mu.Lock()
	fmt.Fprintf(out, "TOTAL %d\n", sink.n)
	out.Flush()
	sink.mu.Unlock()
	return 0
}

type sinkBackend struct {
	mu    sync.Mutex
	out   *bufio.Writer
	quiet bool
	n     int64
}

func (b *sinkBackend) NewSession(_ *smtp.Conn) (smtp.Session, error) { return &sinkSession{b: b}, nil }

type sinkSession struct {
	b  *sinkBackend
	to []string
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
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	for _, to := range s.to {
		s.b.n++
		if !s.b.quiet {
			s.b.out.WriteString("ACCEPTED " + now + " " + to + "\n")
		}
	}
	return nil
}

func runLeanSink(e *env, ln net.Listener, out *bufio.Writer, quiet bool) int {
	sink := &leanSink{out: out, quiet: quiet}
	fmt.Fprintf(out, "LISTENING %s\n", ln.Addr())
	out.Flush()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				sink.flush()
			}
		}
	}()
	go func() { <-e.ctx.Done(); _ = ln.Close() }()
	// The parent closes our stdin to stop us.
	go func() { _, _ = io.Copy(io.Discard, e.stdin); _ = ln.Close() }()
	sink.serve(ln)
	close(stop)
	sink.mu.Lock()
	fmt.Fprintf(out, "TOTAL %d\n", sink.n)
	out.Flush()
	sink.mu.Unlock()
	return 0
}
