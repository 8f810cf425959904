package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	// The messages that a lost connection failed (unanswered, or told 421)
	// go again on a new one; except, on a connection dialled for them, the
	// first, which was under way when it broke and may be why: it keeps
	// its error. Each round settles at least one message.
	todo := make([]int, len(outs))
	for k := range todo {
		todo[k] = k
	}
	for up && ctx.Err() == nil {
		var lost []int
		for _, k := range todo {
			if res[k] != nil && connectionLost(res[k]) {
				lost = append(lost, k)
			}
		}
		if !reused && len(lost) > 0 {
			lost = lost[1:]
		}
		if len(lost) == 0 {
			break
		}
		s.log.Debug("SMTP connection lost, retrying on a new one", slog.String("smtp_server", addr),
			slog.Int("messages", len(lost)), slog.String("error", res[lost[0]].Error()))
		again := make([]*outgoing, len(lost))
		for j, k := range lost {
			again[j] = outs[k]
		}
		res2 := make([]error, len(again))
		up = s.sendOn(ctx, sl, again, res2)
		for j, k := range lost {
			res[k] = res2[j]
		}
		todo, reused = lost, false
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
	msg, err := Build(m) // Build validates m
	if err != nil {
		return nil, &SendError{Permanent: true, Err: err}
	}
	from, err := msg.GetSender(false)
	if err != nil {
		return nil, &SendError{Permanent: true, Err: err}
	}
	rcpts, err := msg.GetRecipients()
	if err != nil || len(rcpts) != 1 {
		return nil, &SendError{Permanent: true, Err: fmt.Errorf("want exactly one recipient: %v", err)}
	}
	buf, _ := s.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	// Quoted-printable grows bodies a little; headers take a few KB.
	buf.Grow(len(m.HTML) + len(m.Text) + (len(m.HTML)+len(m.Text))/8 + 4096)
	if _, err := msg.WriteTo(buf); err != nil {
		return nil, &SendError{Permanent: true, Err: fmt.Errorf("mailer: render: %w", err)}
	}
	data, err := SignDKIM(buf.Bytes(), s.cfg.DKIM)
	if err != nil {
		// The key was checked at start-up; a signer that fails now may
		// work later.
		return nil, &SendError{Err: err}
	}
	return &outgoing{from: from, rcpt: rcpts[0], data: data, buf: buf}, nil
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
