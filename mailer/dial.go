package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// dial connects sl to a server: the next one round robin among those up,
// falling back to the others in turn when a dial fails. A server that fails
// is left out for downFor while another is up.
func (s *SMTP) dial(ctx context.Context, sl *slot) error {
	var errs []error
	for _, srv := range s.candidates() {
		err := s.dialServer(ctx, sl, srv)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", srv.cfg.Addr(), err))
		if ctx.Err() != nil {
			break
		}
		s.mu.Lock()
		srv.downUntil = time.Now().Add(downFor)
		s.mu.Unlock()
		s.log.Warn("SMTP server unreachable, leaving it out for a while",
			slog.String("smtp_server", srv.cfg.Addr()), slog.Duration("down_for", downFor),
			slog.String("error", err.Error()))
	}
	return fmt.Errorf("dial: %w", errors.Join(errs...))
}

// candidates lists the servers to try, starting with the next one round
// robin: those up, or all of them when none is.
func (s *SMTP) candidates() []*server {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.next
	s.next = (s.next + 1) % len(s.servers)
	now := time.Now()
	var up, all []*server
	for i := range s.servers {
		srv := s.servers[(start+i)%len(s.servers)]
		all = append(all, srv)
		if !now.Before(srv.downUntil) {
			up = append(up, srv)
		}
	}
	if len(up) > 0 {
		return up
	}
	return all
}

func (s *SMTP) dialServer(ctx context.Context, sl *slot, srv *server) error {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLSConfig != nil {
		tlsCfg = s.cfg.TLSConfig.Clone()
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = srv.cfg.Host
	}
	// Our own dial function, so that the socket is at hand for cancelling;
	// go-mail then skips its own TLS dial, so for tls=tls we do it here.
	var conn net.Conn
	dialFn := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := &net.Dialer{}
		var err error
		if srv.cfg.TLS == "tls" {
			conn, err = (&tls.Dialer{NetDialer: nd, Config: tlsCfg}).DialContext(ctx, network, addr)
		} else {
			conn, err = nd.DialContext(ctx, network, addr)
		}
		return conn, err
	}
	opts := []gomail.Option{
		gomail.WithPort(srv.cfg.Port), gomail.WithTimeout(s.cfg.Timeout), gomail.WithDialContextFunc(dialFn),
		gomail.WithTLSConfig(tlsCfg),
		// go-mail only dials; sendRaw does the message exchange. It sends
		// no NOOP before a message (a dead connection shows itself at MAIL
		// FROM and is retried) and no RSET after one (a message is complete
		// once DATA is answered, and a failed RSET would report an accepted
		// message as failed).
		gomail.WithoutNoop(), gomail.WithoutRset(),
	}
	switch srv.cfg.TLS {
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(s.cfg.HELO))
	}
	if srv.cfg.Username != "" {
		auth := gomail.SMTPAuthPlain
		if srv.cfg.TLS == "none" {
			// The operator chose a plain connection with a password
			// (a relay on a private network); honour it.
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth),
			gomail.WithUsername(srv.cfg.Username), gomail.WithPassword(srv.cfg.Password))
	}
	mc, err := gomail.NewClient(srv.cfg.Host, opts...)
	if err != nil {
		return err
	}
	client, err := mc.DialToSMTPClientWithContext(ctx)
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		return err
	}
	*sl = slot{srv: srv, client: client, conn: conn, lastUsed: time.Now()}
	return nil
}

// quit ends sl's connection politely.
func (s *SMTP) quit(sl *slot) {
	if sl.client == nil {
		return
	}
	// The deadline left from the last message may have passed.
	_ = sl.client.UpdateDeadline(5 * time.Second)
	if err := sl.client.Quit(); err != nil && !errors.Is(err, io.EOF) {
		s.log.Debug("SMTP QUIT failed", slog.String("smtp_server", sl.srv.cfg.Addr()), slog.String("error", err.Error()))
	}
	s.drop(sl)
}

// drop closes sl's connection without a word; the next message re-dials.
func (s *SMTP) drop(sl *slot) {
	if sl.conn != nil {
		_ = sl.conn.Close()
	}
	*sl = slot{}
}
