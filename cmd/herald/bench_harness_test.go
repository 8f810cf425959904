package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"herald/config"
	"herald/mailer"
	"herald/models"
	"herald/models/testdb"
)

// startLeanSink runs the benchmarks' SMTP sink in-process and returns its
// address and the sink, whose ACCEPTED lines land in out.
func startLeanSink(t *testing.T) (*leanSink, *bytes.Buffer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s := &leanSink{log: &sinkLog{out: bufio.NewWriter(&out)}}
	done := make(chan struct{})
	go func() { s.serve(ln); close(done) }()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return s, &out, ln.Addr().String()
}

// acceptedBy lists the recipients the sink reported, in order.
func acceptedBy(s *leanSink, out *bytes.Buffer) []string {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	_ = s.log.out.Flush()
	var to []string
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ACCEPTED" {
			to = append(to, f[2])
		}
	}
	return to
}

// TestLeanSinkTakesPipelinedMail: Herald's SMTP transport (which pipelines
// MAIL, RCPT and DATA when offered) delivers to the lean sink, and a body
// with lines that start with a dot, or hold a lone dot, does not end a
// message early.
func TestLeanSinkTakesPipelinedMail(t *testing.T) {
	sink, out, addr := startLeanSink(t)
	host, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscan(port, &p)
	tr, err := mailer.NewSMTP(mailer.SMTPConfig{Servers: []config.SMTPServer{{Host: host, Port: p, TLS: "none"}}, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for i := range 5 {
		m := &mailer.Message{
			MessageID: fmt.Sprintf("m%d@example.com", i), From: "news@example.com", To: fmt.Sprintf("r%d@example.com", i),
			Subject: "hello", Text: "first\n.\n.. two dots\n.leading\nlast",
		}
		if err := tr.Send(context.Background(), m); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	got := acceptedBy(sink, out)
	if strings.Join(got, ",") != "r0@example.com,r1@example.com,r2@example.com,r3@example.com,r4@example.com" {
		t.Fatalf("accepted %v", got)
	}
}

// TestLeanSinkAnswersInOrder speaks to the sink by hand: every pipelined
// command gets its reply, in order, and commands out of sequence are
// refused.
func TestLeanSinkAnswersInOrder(t *testing.T) {
	sink, out, addr := startLeanSink(t)
	c, err := textproto.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expect := func(code int) string {
		t.Helper()
		_, msg, err := c.ReadResponse(code)
		if err != nil {
			t.Fatalf("want %d: %v", code, err)
		}
		return msg
	}
	expect(220)
	_ = c.PrintfLine("EHLO client.test")
	if msg := expect(250); !strings.Contains(msg, "PIPELINING") {
		t.Fatalf("EHLO does not offer PIPELINING: %q", msg)
	}
	_ = c.PrintfLine("RCPT TO:<early@example.com>")
	expect(503)
	_ = c.PrintfLine("MAIL FROM:<a@example.com>")
	_ = c.PrintfLine("DATA")
	expect(250)
	expect(503) // no recipient yet
	// One write: a whole pipelined transaction.
	_, _ = c.W.WriteString("RSET\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<x@example.com>\r\nRCPT TO:<y@example.com>\r\nDATA\r\n")
	_ = c.W.Flush()
	for _, code := range []int{250, 250, 250, 250, 354} {
		expect(code)
	}
	_, _ = c.W.WriteString("Subject: t\r\n\r\nbody\r\n..\r\n.\r\nNOOP\r\nQUIT\r\n")
	_ = c.W.Flush()
	expect(250)
	expect(250)
	expect(221)
	if got := acceptedBy(sink, out); strings.Join(got, ",") != "x@example.com,y@example.com" {
		t.Fatalf("accepted %v", got)
	}
}

// TestLoadClient: the load generator's client keeps its connection across
// requests, reads each answer's status, dials again after
// "Connection: close", and refuses an answer it cannot delimit.
func TestLoadClient(t *testing.T) {
	var conns, requests atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.ContentLength < 10 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch n {
		case 3:
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"status":"pending"}`))
		case 5:
			w.WriteHeader(http.StatusTooManyRequests)
		case 6:
			w.(http.Flusher).Flush() // no Content-Length: chunked
			_, _ = w.Write([]byte("x"))
		default:
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"status":"pending"}`))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	lc := &loadClient{host: strings.TrimPrefix(srv.URL, "http://"), path: "/api/v1/subscribe"}
	defer lc.close()
	body := `{"email":"a@example.com"}`
	for i, want := range []int{202, 202, 202, 202, 429} {
		status, err := lc.post(body)
		if err != nil || status != want {
			t.Fatalf("request %d: status %d, %v; want %d", i+1, status, err, want)
		}
	}
	if _, err := lc.post(body); err == nil || !strings.Contains(err.Error(), "chunked") {
		t.Fatalf("chunked answer: %v", err)
	}
	if status, err := lc.post(body); err != nil || status != 202 {
		t.Fatalf("after an error the client dials again: %d %v", status, err)
	}
	// Requests 1-3 on the first connection, 4-6 on the second (after
	// "Connection: close"), 7 on a third (after the refused answer).
	if c := conns.Load(); c != 3 {
		t.Fatalf("%d connections, want 3", c)
	}
}

// TestBenchSignupRuns runs the built `herald bench signup` for a short
// round on a SQLite file it keeps: every signup it reports is a subscriber
// in the file and its confirmation was accepted by the sink; with
// --no-email the same signups are committed and their confirmations stay
// queued, none sent.
func TestBenchSignupRuns(t *testing.T) {
	bin := heraldBinary(t)
	for _, noEmail := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-email=%v", noEmail), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "bench.db")
			args := []string{"bench", "signup", "--clients", "2", "--duration", "500ms", "--db", db}
			if noEmail {
				args = append(args, "--no-email")
			}
			cmd := exec.CommandContext(t.Context(), bin, args...)
			cmd.Env = append(os.Environ(), "HERALD_BENCH_LOG=warn")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bench signup: %v\n%s", err, out)
			}
			// The round's row: clients, signups, signups/s, p50, p99, max,
			// confirm p50, confirm p99, confirmed, cpu columns.
			var row []string
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) == 12 && f[0] == "2" {
					row = f
				}
			}
			if row == nil {
				t.Fatalf("no result row for 2 clients:\n%s", out)
			}
			signups, err := strconv.Atoi(row[1])
			if err != nil || signups < 1 || strings.Contains(string(out), "requests failed") {
				t.Fatalf("signups %q (%v):\n%s", row[1], err, out)
			}
			store := testdb.Open(t, db)
			subs, err := store.SubscriberCounts(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			counts, err := store.DeliveryCounts(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if subs[models.StatusPending] != int64(signups) {
				t.Errorf("%d pending subscribers for %d signups reported", subs[models.StatusPending], signups)
			}
			wantSent, wantQueued, wantConfirmed := int64(signups), int64(0), "100%"
			if noEmail {
				wantSent, wantQueued, wantConfirmed = 0, int64(signups), "0%"
			}
			queued := counts[models.DeliveryPending] + counts[models.DeliverySending]
			if counts[models.DeliverySent] != wantSent || queued != wantQueued || row[8] != wantConfirmed {
				t.Errorf("deliveries %v, confirmed %s; want %d sent, %d queued, %s confirmed", counts, row[8], wantSent, wantQueued, wantConfirmed)
			}
		})
	}
}
