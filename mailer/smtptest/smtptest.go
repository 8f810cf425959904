// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) in
// the test process, on 127.0.0.1 and a free port. It records what it
// receives and can be told to refuse chosen recipients, drop the
// connection, or be slow, so that tests of the mailer, the delivery worker
// and the handlers exercise the real SMTP transport end to end.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"herald/config"
)

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
	// Conn numbers the connection that carried it, from 1 in order of
	// connection.
	Conn int
}

// Rule is how the server answers one recipient instead of accepting it.
type Rule struct {
	// Code is the SMTP reply code, such as 451 or 550.
	Code int
	// Enhanced is the enhanced status code, such as "5.1.1"; empty means
	// the class default (4.0.0 or 5.0.0).
	Enhanced string
	// Message is the reply text.
	Message string
	// Drop closes the connection instead of answering.
	Drop bool
	// AtData answers after the message body instead of at RCPT TO.
	AtData bool
	// Times is how many times the rule applies before the recipient is
	// accepted; 0 means every time.
	Times int
}

// Options configure NewWith.
type Options struct {
	// TLS is none (default), starttls or tls; the certificate is
	// self-signed, and ClientTLSConfig trusts it.
	TLS string
	// Username and Password, when set, make AUTH PLAIN required.
	Username, Password string
}

// Server is a running test SMTP server, closed when the test ends.
type Server struct {
	srv    *smtp.Server
	addr   *net.TCPAddr
	opts   Options
	tlsCfg *tls.Config

	mu       sync.Mutex
	msgs     []Message
	conns    int
	rules    map[string]*Rule
	delay    time.Duration
	attempts map[string]int
}

// New starts a plain (tls=none) server without authentication.
func New(t testing.TB) *Server { return NewWith(t, Options{}) }

// NewWith starts a server as o says.
func NewWith(t testing.TB, o Options) *Server {
	t.Helper()
	if o.TLS == "" {
		o.TLS = "none"
	}
	s := &Server{opts: o, rules: map[string]*Rule{}, attempts: map[string]int{}}
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "smtptest.localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s.addr = ln.Addr().(*net.TCPAddr)
	if o.TLS != "none" {
		cert, err := selfSigned()
		if err != nil {
			t.Fatalf("smtptest: certificate: %v", err)
		}
		s.tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.srv.TLSConfig = s.tlsCfg
		if o.TLS == "tls" {
			ln = tls.NewListener(ln, s.tlsCfg)
		}
	}
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// Config returns the config.SMTPServer that reaches this server.
func (s *Server) Config() config.SMTPServer {
	return config.SMTPServer{
		Host: s.addr.IP.String(), Port: s.addr.Port, TLS: s.opts.TLS,
		Username: s.opts.Username, Password: s.opts.Password,
	}
}

// Addr returns host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.addr.IP.String(), strconv.Itoa(s.addr.Port))
}

// ClientTLSConfig returns a TLS config that trusts the server's certificate.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.tlsCfg == nil {
		return nil
	}
	return clientConfig(s.tlsCfg.Certificates[0])
}

// On makes the server answer rcpt as r says. A later call replaces it.
func (s *Server) On(rcpt string, r Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules[strings.ToLower(rcpt)] = &r
}

// SetDelay makes the server wait d before answering each message body.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Messages returns what the server has accepted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// MessagesTo returns the accepted messages addressed to rcpt.
func (s *Server) MessagesTo(rcpt string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, rcpt) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Attempts returns how many times rcpt was given in RCPT TO, accepted or not.
func (s *Server) Attempts(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[strings.ToLower(rcpt)]
}

// Connections returns how many SMTP sessions clients have opened.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// WaitForMessages polls until the server has accepted at least n messages
// or timeout passes, and returns what it has.
func (s *Server) WaitForMessages(n int, timeout time.Duration) []Message {
	deadline := time.Now().Add(timeout)
	for {
		msgs := s.Messages()
		if len(msgs) >= n || time.Now().After(deadline) {
			return msgs
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// match returns the rule for rcpt at this stage, if one applies, spending
// one of its Times.
func (s *Server) match(rcpt string, atData bool) (*Rule, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rules[strings.ToLower(rcpt)]
	if !ok || r.AtData != atData {
		return nil, false
	}
	if r.Times > 0 {
		r.Times--
		if r.Times == 0 {
			delete(s.rules, strings.ToLower(rcpt))
		}
	}
	return r, true
}

func (r *Rule) err() error {
	e := &smtp.SMTPError{Code: r.Code, Message: r.Message, EnhancedCode: smtp.EnhancedCodeNotSet}
	if e.Message == "" {
		e.Message = "refused by smtptest"
	}
	if r.Enhanced != "" {
		var a, b, c int
		if _, err := fmt.Sscanf(r.Enhanced, "%d.%d.%d", &a, &b, &c); err == nil {
			e.EnhancedCode = smtp.EnhancedCode{a, b, c}
		}
	}
	return e
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns++
	return &session{srv: s, conn: c, id: s.conns, authed: s.opts.Username == ""}, nil
}

type session struct {
	srv    *Server
	conn   *smtp.Conn
	id     int
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.srv.opts.Username || password != ss.srv.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.srv.mu.Lock()
	ss.srv.attempts[strings.ToLower(to)]++
	ss.srv.mu.Unlock()
	if r, ok := ss.srv.match(to, false); ok {
		if r.Drop {
			_ = ss.conn.Conn().Close()
		}
		return r.err()
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.srv.mu.Lock()
	delay := ss.srv.delay
	ss.srv.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	for _, to := range ss.to {
		if r, ok := ss.srv.match(to, true); ok {
			if r.Drop {
				_ = ss.conn.Conn().Close()
			}
			return r.err()
		}
	}
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	ss.srv.msgs = append(ss.srv.msgs, Message{
		From: ss.from, To: append([]string(nil), ss.to...), Data: bytes.Clone(data), Conn: ss.id,
	})
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }
