package mailer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// checkTimeout bounds each server's check when cfg.Timeout is not set: an
// admin waits on the answer, so it is shorter than a send's.
const checkTimeout = 15 * time.Second

// Check tries every server in cfg the way the transport dials it: connect
// (TLS from the start for tls=tls), EHLO, STARTTLS for tls=starttls, AUTH
// when a username is set, then QUIT. It sends no message. The error names
// each server that failed and what went wrong; nil means all of them work.
func Check(ctx context.Context, cfg SMTPConfig) error {
	if len(cfg.Servers) == 0 {
		return errors.New("no SMTP server is configured")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = checkTimeout
	}
	// One slot is enough: the servers are tried one after the other.
	cfg.Connections = 1
	// NewSMTP validates the TLS modes and fills in the defaults, so the
	// check dials with exactly the settings a send would use.
	t, err := NewSMTP(cfg)
	if err != nil {
		return err
	}
	var errs []error
	for _, srv := range t.servers {
		if err := t.checkServer(ctx, srv); err != nil {
			errs = append(errs, fmt.Errorf("%s (tls=%s): %w", srv.cfg.Addr(), srv.cfg.TLS, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// checkServer dials one server and says QUIT.
func (s *SMTP) checkServer(ctx context.Context, srv *server) error {
	var sl slot
	if err := s.dialServer(ctx, &sl, srv); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return err
	}
	defer s.drop(&sl)
	conn := sl.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if err := sl.client.UpdateDeadline(s.cfg.Timeout); err != nil {
		return err
	}
	// Some servers close the socket as they answer QUIT; that is not a fault.
	if err := sl.client.Quit(); err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
		return fmt.Errorf("QUIT: %w", err)
	}
	return nil
}
