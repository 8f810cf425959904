package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"herald/config"
)

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("mailer: transport closed")

// downFor is how long a server whose dial failed is left out of the
// rotation while another server is up.
const downFor = 30 * time.Second

// SMTPConfig configures NewSMTP.
type SMTPConfig struct {
	// Servers are the relays; messages are spread over them round robin.
	Servers []config.SMTPServer
	// Connections is the size of the connection pool (default 4): at most
	// this many messages are in flight at once.
	Connections int
	// HELO is the name given in EHLO; empty means the host name.
	HELO string
	// Timeout bounds a dial and each message's SMTP exchange (default 30s).
	Timeout time.Duration
	// Logger gets dial failures; nil discards them.
	Logger *slog.Logger
	// TLSConfig replaces the default TLS settings (system roots, TLS 1.2 or
	// later); tests use it to trust their own certificate.
	TLSConfig *tls.Config
	// MaxPerConnection is how many messages go over one connection before
	// it is closed and dialled afresh (default 100). Many relays cap this,
	// and re-dialling brings a server that was down back into the rotation.
	MaxPerConnection int
	// IdleTimeout closes a connection unused for this long before its next
	// message rather than risk the relay having dropped it (default 60s).
	IdleTimeout time.Duration
	// DKIM, when not nil, signs every message (see SignDKIM).
	DKIM *config.DKIMConfig
}

// SMTP sends messages over a pool of persistent SMTP connections. It is
// safe for concurrent use; each connection carries one exchange (a message
// or a pipelined batch) at a time.
type SMTP struct {
	cfg       SMTPConfig
	log       *slog.Logger
	servers   []*server
	slots     chan *slot
	done      chan struct{}
	closeOnce sync.Once

	mu sync.Mutex // guards next and every server's downUntil
	// next is the index of the server the next dial starts with.
	next int
	// bufs holds the buffers messages are rendered into, reused once a
	// send is over: a message's bytes were most of a send's allocations.
	bufs sync.Pool
	// frames are the shapes of message go-mail has written (frame.go).
	frames frames
}

type server struct {
	cfg       config.SMTPServer
	downUntil time.Time
}

// slot is one place in the pool: a live connection or, before the first
// message and after an error, none.
type slot struct {
	srv      *server
	client   *smtp.Client
	conn     net.Conn
	sent     int
	lastUsed time.Time
}

// NewSMTP returns a transport for cfg's servers. It dials nothing: each
// connection is dialled when a message first needs it.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("mailer: no SMTP server configured")
	}
	if cfg.Connections <= 0 {
		cfg.Connections = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxPerConnection <= 0 {
		cfg.MaxPerConnection = 100
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &SMTP{cfg: cfg, log: logger, slots: make(chan *slot, cfg.Connections), done: make(chan struct{})}
	for _, sc := range cfg.Servers {
		switch sc.TLS {
		case "none", "starttls", "tls":
		default:
			return nil, fmt.Errorf("mailer: server %s: tls=%q must be none, starttls or tls", sc.Addr(), sc.TLS)
		}
		if sc.TLS == "none" && sc.Username != "" {
			logger.Warn("SMTP password will be sent unencrypted (tls=none)", slog.String("smtp_server", sc.Addr()))
		}
		s.servers = append(s.servers, &server{cfg: sc})
	}
	for range cfg.Connections {
		s.slots <- &slot{}
	}
	return s, nil
}

// Send delivers m over a pooled connection. The error is always a
// *SendError: Permanent for a 5xx answer or a message that cannot be
// built, temporary for a 4xx answer, a network failure or ctx ending. A
// network failure on a connection that had been used before (the relay may
// have closed it while idle) is retried once on a fresh connection.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	return s.SendBatch(ctx, []*Message{m})[0]
}

// SendBatch delivers ms over one pooled connection, pipelined when the
// server offers PIPELINING, and returns each message's outcome (nil or a
// *SendError, as Send's). The messages that a lost connection left
// unanswered are sent again on a fresh one, but for the one under way when
// a freshly dialled connection broke.
func (s *SMTP) SendBatch(ctx context.Context, ms []*Message) []error {
	errs := make([]error, len(ms))
	outs := make([]*outgoing, 0, len(ms))
	at := make([]int, 0, len(ms)) // index in ms of each of outs
	for i, m := range ms {
		out, err := s.prepare(m)
		if err != nil {
			errs[i] = err
			continue
		}
		outs, at = append(outs, out), append(at, i)
	}
	defer func() {
		for _, out := range outs {
			s.release(out)
		}
	}()
	if len(outs) == 0 {
		return errs
	}
	fail := func(err error) []error {
		for _, i := range at {
			errs[i] = &SendError{Err: err}
		}
		return errs
	}
	var sl *slot
	select {
	case sl = <-s.slots:
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-s.done:
		return fail(ErrClosed)
	}
	defer func() { s.slots <- sl }()
	select {
	case <-s.done:
		return fail(ErrClosed)
	default:
	}

	if sl.client != nil && (sl.sent >= s.cfg.MaxPerConnection || time.Since(sl.lastUsed) > s.cfg.IdleTimeout) {
		s.quit(sl)
	}
	reused := sl.client != nil
	var addr string
	if reused {
		addr = sl.srv.cfg.Addr()
	}
	res := make([]error, len(outs))
	up := s.sendOn(ctx, sl, outs, res)
	if up {
		s.resend(ctx, sl, outs, res, reused, addr)
	}
	for k, i := range at {
		errs[i] = res[k]
	}
	return errs
}

// outgoing is a message ready for the wire: its envelope and its bytes,
// rendered and, with DKIM on, signed.
type outgoing struct {
	from, rcpt string
	data       []byte
	buf        *bytes.Buffer // data's storage (or what was signed), back to the pool after
}

// resend sends again, on a new connection, the messages of outs that a lost
// connection failed (unanswered, or told 421); except, on a connection
// dialled for them, the first, which was under way when it broke and may be
// why: it keeps its error. Each round settles at least one message; it
// stops when no server can be dialled.
func (s *SMTP) resend(ctx context.Context, sl *slot, outs []*outgoing, res []error, reused bool, addr string) {
	var lost []int
	for k, err := range res {
		if err != nil && connectionLost(err) {
			lost = append(lost, k)
		}
	}
	for up := true; up && ctx.Err() == nil; reused = false {
		if !reused && len(lost) > 0 {
			lost = lost[1:]
		}
		if len(lost) == 0 {
			return
		}
		s.log.Debug("SMTP connection lost, retrying on a new one", slog.String("smtp_server", addr),
			slog.Int("messages", len(lost)), slog.String("error", res[lost[0]].Error()))
		again := make([]*outgoing, len(lost))
		for j, k := range lost {
			again[j] = outs[k]
		}
		res2 := make([]error, len(again))
		up = s.sendOn(ctx, sl, again, res2)
		still := lost[:0]
		for j, k := range lost {
			if res[k] = res2[j]; res2[j] != nil && connectionLost(res2[j]) {
				still = append(still, k)
			}
		}
		lost = still
	}
}

// maxPooled is the largest render buffer kept for reuse.
const maxPooled = 1 << 20

func (s *SMTP) release(out *outgoing) {
	if out.buf.Cap() <= maxPooled {
		s.bufs.Put(out.buf)
	}
}

// prepare builds, renders and signs m once, before a connection is taken,
// so that a retry sends the same bytes.
func (s *SMTP) prepare(m *Message) (*outgoing, error) {
	from, to, err := validate(m)
	if err != nil {
		return nil, &SendError{Permanent: true, Err: err}
	}
	buf, _ := s.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	// Quoted-printable grows bodies a little; headers take a few KB.
	buf.Grow(len(m.HTML) + len(m.Text) + (len(m.HTML)+len(m.Text))/8 + 4096)
	if f := s.frames.get(m); f == nil || !f.write(buf, m, to) {
		msg, err := Build(m)
		if err != nil {
			return nil, &SendError{Permanent: true, Err: err}
		}
		if _, err := msg.WriteTo(buf); err != nil {
			return nil, &SendError{Permanent: true, Err: fmt.Errorf("mailer: render: %w", err)}
		}
	}
	data, err := SignDKIM(buf.Bytes(), s.cfg.DKIM)
	if err != nil {
		// The key was checked at start-up; a signer that fails now may
		// work later.
		return nil, &SendError{Err: err}
	}
	// The envelope's addresses, as go-mail's GetSender and GetRecipients
	// give them.
	return &outgoing{from: (&mail.Address{Address: from.Address}).String(), rcpt: (&mail.Address{Address: to.Address}).String(),
		data: data, buf: buf}, nil
}

// sendOn sends outs over sl, dialling first if sl has no connection, and
// drops the connection when an error leaves it unusable. It fills res: the
// messages left unanswered when a connection broke share its error. It
// reports false when no server could be dialled.
func (s *SMTP) sendOn(ctx context.Context, sl *slot, outs []*outgoing, res []error) bool {
	broken := func(from int, err error) {
		for i := from; i < len(res); i++ {
			res[i] = err
		}
	}
	if sl.client == nil {
		if err := s.dial(ctx, sl); err != nil {
			broken(0, &SendError{Err: err})
			return false
		}
	}
	done := 0
	// The exchange takes no context: closing the socket is how ctx
	// cancels a send under way.
	conn := sl.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	var netErr error
	if err := sl.client.UpdateDeadline(s.cfg.Timeout); err != nil {
		netErr = err
	} else if ok, _ := sl.client.Extension("PIPELINING"); ok {
		done, netErr = exchange(sl.client, outs, res)
	} else {
		for done < len(outs) {
			err := sendRaw(sl.client, outs[done].from, outs[done].rcpt, outs[done].data)
			if err != nil && connectionLost(err) {
				netErr = err
				break
			}
			res[done] = err
			done++
			if err := sl.client.UpdateDeadline(s.cfg.Timeout); err != nil {
				netErr = err
				break
			}
		}
	}
	cancelled := !stop()
	sl.lastUsed = time.Now()
	for _, err := range res[:done] {
		if err == nil {
			sl.sent++
		}
	}
	for i := range res[:done] {
		if res[i] != nil {
			res[i] = classify(res[i])
		}
	}
	if netErr != nil {
		se := classify(netErr)
		if cancelled && ctx.Err() != nil {
			se.Err = fmt.Errorf("%w (%v)", ctx.Err(), se.Err)
		}
		broken(done, se)
	}
	if cancelled || netErr != nil {
		s.drop(sl)
	} else {
		// A 421 reply means the server is closing the connection.
		for _, err := range res[:done] {
			if err != nil && connectionLost(err) {
				s.drop(sl)
				break
			}
		}
	}
	return true
}

// connectionLost reports whether err means the connection cannot carry
// another message: a network error, or 421 (the server is closing it).
func connectionLost(err error) bool {
	var se *SendError
	if !errors.As(err, &se) {
		return true
	}
	return (!se.Permanent && se.Code == 0) || se.Code == 421
}

// classify maps a go-mail error to a *SendError.
func classify(err error) *SendError {
	var own *SendError
	if errors.As(err, &own) {
		return own
	}
	var ge *gomail.SendError
	if !errors.As(err, &ge) {
		return &SendError{Err: err}
	}
	code := ge.ErrorCode()
	switch {
	case code >= 500 && code <= 599:
		return &SendError{Permanent: true, Code: code, Enhanced: ge.EnhancedStatusCode(), Err: err}
	case code >= 400 && code <= 499:
		return &SendError{Code: code, Enhanced: ge.EnhancedStatusCode(), Err: err}
	}
	switch ge.Reason {
	case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
		// The message itself is at fault; sending it again cannot help.
		return &SendError{Permanent: true, Err: err}
	}
	return &SendError{Err: err}
}

// Close stops new sends, waits for those under way, and closes every
// connection. Calling it again does nothing.
func (s *SMTP) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		for range s.cfg.Connections {
			s.quit(<-s.slots)
		}
	})
	return nil
}
