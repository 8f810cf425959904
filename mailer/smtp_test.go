package mailer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/config"
	"herald/mailer/smtptest"
)

func newSMTP(t *testing.T, cfg SMTPConfig) *SMTP {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	s, err := NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func messageTo(rcpt string, n int) *Message {
	m := testMessage()
	m.To = rcpt
	m.MessageID = fmt.Sprintf("m%d@news.example.com", n)
	return m
}

func sendErr(t *testing.T, err error) *SendError {
	t.Helper()
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want *SendError", err, err)
	}
	return se
}

func TestSMTPDeliversWithHeaders(t *testing.T) {
	srv := smtptest.New(t)
	s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{srv.Config()}, HELO: "herald.test"})
	m := testMessage()
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	if msgs[0].From != "news@example.com" || len(msgs[0].To) != 1 || msgs[0].To[0] != "reader@example.org" {
		t.Errorf("envelope = %s -> %v", msgs[0].From, msgs[0].To)
	}
	p := parseRaw(t, msgs[0].Data)
	if got := p.header.Get("Message-ID"); got != "<abc.123@news.example.com>" {
		t.Errorf("Message-ID = %q", got)
	}
	if got := p.header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", got)
	}
	if len(p.parts) != 2 {
		t.Errorf("got %d parts, want 2", len(p.parts))
	}
}

func TestSMTPReusesConnections(t *testing.T) {
	srv := smtptest.New(t)
	s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{srv.Config()}, Connections: 3})
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- s.Send(context.Background(), messageTo(fmt.Sprintf("r%d@example.org", i), i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(srv.Messages()); got != n {
		t.Errorf("server got %d messages, want %d", got, n)
	}
	if c := srv.Connections(); c < 1 || c > 3 {
		t.Errorf("%d messages used %d connections, want 1 to 3", n, c)
	}
}

func TestSMTPTemporaryAndPermanentReplies(t *testing.T) {
	tests := []struct {
		name          string
		rule          smtptest.Rule
		permanent     bool
		code          int
		enhanced      string
		acceptedAfter bool
	}{
		{"451 at RCPT", smtptest.Rule{Code: 451, Enhanced: "4.7.1", Times: 1}, false, 451, "4.7.1", true},
		{"452 after DATA", smtptest.Rule{Code: 452, Enhanced: "4.3.1", AtData: true, Times: 1}, false, 452, "4.3.1", true},
		{"550 5.1.1 at RCPT", smtptest.Rule{Code: 550, Enhanced: "5.1.1", Message: "no such user"}, true, 550, "5.1.1", false},
		{"554 after DATA", smtptest.Rule{Code: 554, Enhanced: "5.7.1", AtData: true}, true, 554, "5.7.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.New(t)
			s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{srv.Config()}, Connections: 1})
			srv.On("bad@example.org", tt.rule)
			se := sendErr(t, s.Send(context.Background(), messageTo("bad@example.org", 1)))
			if se.Permanent != tt.permanent || se.Code != tt.code || se.Enhanced != tt.enhanced {
				t.Errorf("got Permanent=%v Code=%d Enhanced=%q, want %v %d %q (%v)",
					se.Permanent, se.Code, se.Enhanced, tt.permanent, tt.code, tt.enhanced, se)
			}
			// The connection survives an SMTP refusal and carries the next message.
			if err := s.Send(context.Background(), messageTo("good@example.org", 2)); err != nil {
				t.Fatalf("next send: %v", err)
			}
			err := s.Send(context.Background(), messageTo("bad@example.org", 3))
			if tt.acceptedAfter != (err == nil) {
				t.Errorf("retry: err = %v, want accepted=%v", err, tt.acceptedAfter)
			}
			if c := srv.Connections(); c != 1 {
				t.Errorf("used %d connections, want 1", c)
			}
		})
	}
}

func TestSMTPDroppedConnection(t *testing.T) {
	srv := smtptest.New(t)
	s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{srv.Config()}, Connections: 1})
	ctx := context.Background()
	if err := s.Send(ctx, messageTo("first@example.org", 1)); err != nil {
		t.Fatal(err)
	}

	// Dropped once on a used connection: re-dialled and retried at once.
	srv.On("once@example.org", smtptest.Rule{Drop: true, Times: 1})
	if err := s.Send(ctx, messageTo("once@example.org", 2)); err != nil {
		t.Fatalf("send after one drop: %v", err)
	}
	if got := len(srv.MessagesTo("once@example.org")); got != 1 {
		t.Errorf("once@ got %d messages, want 1", got)
	}

	// Dropped on the retry too: a temporary error, and the transport recovers.
	srv.On("twice@example.org", smtptest.Rule{Drop: true, Times: 2})
	se := sendErr(t, s.Send(ctx, messageTo("twice@example.org", 3)))
	if se.Permanent || se.Code != 0 {
		t.Errorf("got %+v, want a temporary network error", se)
	}
	if err := s.Send(ctx, messageTo("next@example.org", 4)); err != nil {
		t.Fatalf("send after drop: %v", err)
	}
	if got := srv.Attempts("twice@example.org"); got != 2 {
		t.Errorf("twice@ was tried %d times, want 2 (one retry)", got)
	}
}

func TestSMTPRoundRobinAndFailover(t *testing.T) {
	a, b := smtptest.New(t), smtptest.New(t)
	dead := deadServer(t)
	s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{a.Config(), dead, b.Config()}, Connections: 3, MaxPerConnection: 2})
	for i := range 30 {
		if err := s.Send(context.Background(), messageTo(fmt.Sprintf("r%d@example.org", i), i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	na, nb := len(a.Messages()), len(b.Messages())
	if na+nb != 30 || na == 0 || nb == 0 {
		t.Errorf("server a got %d, b got %d; want 30 spread over both", na, nb)
	}
	s.mu.Lock()
	down := s.servers[1].downUntil
	s.mu.Unlock()
	if down.IsZero() {
		t.Error("the unreachable server was not taken out")
	}
}

func TestSMTPAllServersDown(t *testing.T) {
	s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{deadServer(t)}, Timeout: 2 * time.Second})
	se := sendErr(t, s.Send(context.Background(), testMessage()))
	if se.Permanent || se.Code != 0 {
		t.Errorf("got %+v, want a temporary dial error", se)
	}
}

func TestSMTPTLSAndAuth(t *testing.T) {
	for _, mode := range []string{"starttls", "tls", "none"} {
		t.Run(mode, func(t *testing.T) {
			srv := smtptest.NewWith(t, smtptest.Options{TLS: mode, Username: "herald", Password: "s3cret"})
			s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{srv.Config()}, TLSConfig: srv.ClientTLSConfig()})
			if err := s.Send(context.Background(), testMessage()); err != nil {
				t.Fatal(err)
			}
			if len(srv.Messages()) != 1 {
				t.Error("message not received")
			}

			bad := srv.Config()
			bad.Password = "wrong"
			s2 := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{bad}, TLSConfig: srv.ClientTLSConfig()})
			se := sendErr(t, s2.Send(context.Background(), testMessage()))
			if se.Permanent {
				t.Errorf("a refused login is our fault, not the recipient's: got %+v", se)
			}
		})
	}
}

func TestSMTPInvalidMessageIsPermanent(t *testing.T) {
	srv := smtptest.New(t)
	s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{srv.Config()}})
	m := testMessage()
	m.Subject = "a\r\nBcc: victim@example.net"
	se := sendErr(t, s.Send(context.Background(), m))
	if !se.Permanent || !errors.Is(se, ErrInvalidMessage) {
		t.Errorf("got %+v, want permanent ErrInvalidMessage", se)
	}
	if srv.Connections() != 0 {
		t.Error("an invalid message reached the server")
	}
}

func TestSMTPContextCancelsSend(t *testing.T) {
	srv := smtptest.New(t)
	srv.SetDelay(5 * time.Second)
	s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{srv.Config()}, Connections: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	se := sendErr(t, s.Send(ctx, testMessage()))
	if se.Permanent || !errors.Is(se, context.DeadlineExceeded) {
		t.Errorf("got %+v, want temporary DeadlineExceeded", se)
	}
	srv.SetDelay(0)
	if err := s.Send(context.Background(), testMessage()); err != nil {
		t.Fatalf("send after cancel: %v", err)
	}
}

func TestSMTPClose(t *testing.T) {
	srv := smtptest.New(t)
	s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{srv.Config()}})
	if err := s.Send(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testMessage()); !errors.Is(err, ErrClosed) {
		t.Errorf("send after Close: err = %v, want ErrClosed", err)
	}
	_ = s.Close()
}

// deadServer returns a server address nothing listens on.
func deadServer(t *testing.T) config.SMTPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return config.SMTPServer{Host: "127.0.0.1", Port: port, TLS: "none"}
}

// TestSMTPDotStuffing: lines that start with a dot survive the DATA
// transfer (the sender doubles them, the server undoes it).
func TestSMTPDotStuffing(t *testing.T) {
	srv := smtptest.New(t)
	s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{srv.Config()}})
	m := testMessage()
	m.Text = ".first line\n..two dots\n.\nmiddle\n.last"
	m.HTML = "<p>x</p>\n.<b>dot</b>\n."
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	p := parseRaw(t, srv.Messages()[0].Data)
	got := map[string]string{}
	for _, pt := range p.parts {
		got[strings.SplitN(pt.contentType, ";", 2)[0]] = strings.ReplaceAll(pt.body, "\r\n", "\n")
	}
	if got["text/plain"] != m.Text || got["text/html"] != m.HTML {
		t.Fatalf("bodies changed in transit:\ntext %q\nhtml %q", got["text/plain"], got["text/html"])
	}
}
