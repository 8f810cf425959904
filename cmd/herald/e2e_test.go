package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"herald/config"
	"herald/handlers"
	"herald/mailer/smtptest"
	"herald/models"
	"herald/models/testdb"
)

// running is a whole Herald (the same assembly as herald serve) on a test
// database, sending to an in-process SMTP server.
type running struct {
	t    *testing.T
	app  *app
	url  string
	smtp *smtptest.Server
	stop func()
}

func startHerald(t *testing.T, dsn string, extra map[string]string) *running {
	t.Helper()
	sm := smtptest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{
		"HERALD_DB": dsn, "HERALD_BASE_URL": "http://" + ln.Addr().String(), "HERALD_DATA_DIR": t.TempDir(),
		"HERALD_SMTP_URL": "smtp://" + sm.Addr() + "?tls=none", "HERALD_SECRET": strings.Repeat("e", 32),
		"HERALD_FROM": "The Daily Herald <news@herald.example.com>",
	}
	for k, v := range extra {
		vals[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vals[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("HERALD_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.firstRun(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := handlers.New(a.handlerDeps(log, ""))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- serveUntilDone(ctx, a, srv, ln, log) }()
	r := &running{t: t, app: a, url: "http://" + ln.Addr().String(), smtp: sm}
	r.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("herald did not stop within 20 s")
		}
		_ = a.close()
	}
	t.Cleanup(r.stop)
	return r
}

// parsed is a received email: its headers and its text and HTML bodies.
type parsed struct {
	header mail.Header
	text   string
	html   string
	raw    string
}

func parseMail(t *testing.T, raw []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	p := parsed{header: m.Header, raw: string(raw)}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("Content-Type %q is not multipart", m.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(part)
		if strings.EqualFold(part.Header.Get("Content-Transfer-Encoding"), "base64") {
			body, _ = base64.StdEncoding.DecodeString(strings.ReplaceAll(strings.ReplaceAll(string(body), "\r\n", ""), "\n", ""))
		}
		ct := part.Header.Get("Content-Type")
		switch {
		case strings.HasPrefix(ct, "text/plain"):
			p.text = string(body)
		case strings.HasPrefix(ct, "text/html"):
			p.html = string(body)
		}
	}
	return p
}

func (r *running) waitMail(to string, n int) parsed {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if msgs := r.smtp.MessagesTo(to); len(msgs) >= n {
			return parseMail(r.t, msgs[n-1].Data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("mail #%d to %s did not arrive; server has %d messages", n, to, len(r.smtp.Messages()))
	return parsed{}
}

func (r *running) status(email string) string {
	r.t.Helper()
	s, err := r.app.store.SubscriberByEmail(context.Background(), strings.ToLower(email))
	if err != nil {
		r.t.Fatalf("subscriber %s: %v", email, err)
	}
	return s.Status
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func post(t *testing.T, u, contentType, body string) *http.Response {
	t.Helper()
	resp, err := noRedirect.Post(u, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestReaderPathEndToEnd walks the reader's whole path through the real
// HTTP stack, outbox, worker and SMTP transport: signup → the email arrives
// at an SMTP server → GET the link (still pending) → POST (active) → an
// "already subscribed" notice → one-click unsubscribe (unsubscribed).
func TestReaderPathEndToEnd(t *testing.T) {
	for _, kind := range testdb.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			h := startHerald(t, testdb.DSN(t, kind), nil)
			email := "Reader@Example.com"
			form := url.Values{"email": {email}, "sections": {"politics-uk"}, "frequency": {"daily"}, "consent": {"yes"},
				"source": {"TYPED-BY-VISITOR <b>hi</b>"}}
			resp := post(t, h.url+"/subscribe", "application/x-www-form-urlencoded", form.Encode())
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("signup: %d", resp.StatusCode)
			}
			m := h.waitMail(email, 1)
			if got := m.header.Get("Subject"); !strings.Contains(got, "Confirm your subscription to The Daily Herald") {
				t.Fatalf("subject %q", got)
			}
			if m.header.Get("Auto-Submitted") != "auto-generated" || m.header.Get("Message-Id") == "" {
				t.Fatalf("headers: %v", m.header)
			}
			for _, want := range []string{"The Daily Herald", "Politics UK", "3 days", "ignore this email and you won't be subscribed", email} {
				if !strings.Contains(m.text, want) {
					t.Fatalf("confirmation text lacks %q:\n%s", want, m.text)
				}
			}
			if strings.Contains(m.raw, "TYPED-BY-VISITOR") || !strings.Contains(m.html, "Confirm my subscription") {
				t.Fatal("the confirmation email carries text the visitor typed, or has no HTML button")
			}
			link := regexp.MustCompile(`http://[^\s]+/confirm/[A-Za-z0-9_-]+`).FindString(m.text)
			if link == "" {
				t.Fatalf("no confirm link in:\n%s", m.text)
			}
			get, err := http.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			get.Body.Close()
			if get.StatusCode != http.StatusOK || h.status(email) != models.StatusPending {
				t.Fatalf("GET link: %d, status %s", get.StatusCode, h.status(email))
			}
			if resp := post(t, link, "application/x-www-form-urlencoded", ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("POST link: %d", resp.StatusCode)
			}
			if h.status(email) != models.StatusActive {
				t.Fatalf("after confirm: %s", h.status(email))
			}

			// Signing up again while active brings a notice with one-click unsubscribe.
			if resp := post(t, h.url+"/api/v1/subscribe", "application/json",
				`{"email":"reader@example.com","sections":["politics-uk"],"consent":true}`); resp.StatusCode != http.StatusAccepted {
				t.Fatalf("second signup: %d", resp.StatusCode)
			}
			n := h.waitMail(email, 2)
			lu := n.header.Get("List-Unsubscribe")
			if n.header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || !strings.HasPrefix(lu, "<"+h.url+"/unsubscribe/") {
				t.Fatalf("notice headers: List-Unsubscribe %q, -Post %q", lu, n.header.Get("List-Unsubscribe-Post"))
			}
			unsub := strings.Trim(lu, "<>")
			if resp := post(t, unsub, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"); resp.StatusCode != http.StatusOK {
				t.Fatalf("one-click unsubscribe: %d (Location %q)", resp.StatusCode, resp.Header.Get("Location"))
			}
			if h.status(email) != models.StatusUnsubscribed {
				t.Fatalf("after one-click: %s", h.status(email))
			}
			// Results are recorded in batches just after the SMTP server accepts.
			var counts map[string]int64
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				counts, _ = h.app.store.DeliveryCounts(context.Background())
				if counts[models.DeliverySent] == 2 {
					break
				}
			}
			if counts[models.DeliverySent] != 2 || len(counts) != 1 {
				t.Fatalf("outbox: %v, want 2 sent and nothing else", counts)
			}
			if len(h.smtp.Messages()) != 2 {
				t.Fatalf("SMTP server got %d messages, want exactly 2", len(h.smtp.Messages()))
			}
		})
	}
}
