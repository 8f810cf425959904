package handlers

import (
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

func (s *Server) recoverPanics() gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		s.d.Logger.ErrorContext(c.Request.Context(), "panic", slog.Any("panic", rec), slog.String("path", c.Request.URL.Path))
		c.AbortWithStatus(http.StatusInternalServerError)
	})
}

func (s *Server) logRequests() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		level := slog.LevelDebug
		if status >= 500 {
			level = slog.LevelWarn
		}
		// Most requests are not logged: skip building the record then.
		if s.d.Logger.Enabled(c.Request.Context(), level) {
			s.d.Logger.Log(c.Request.Context(), level, "http request",
				slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
				slog.Int("status", status), slog.Duration("duration", time.Since(start)),
				slog.String("client_ip", c.ClientIP()))
		}
		s.metrics.request(status).Inc()
	}
}

func (s *Server) securityHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		// Pages may be framed only by Herald itself (the mailbox preview);
		// the demo page is a stand-in for a news site and is framed by none.
		h.Set("X-Frame-Options", "SAMEORIGIN")
		if s.secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		c.Next()
	}
}

// importPath is the admin CSV upload, the one request allowed a large body
// (HERALD_IMPORT_MAX_BYTES); it is only reachable with an admin session.
const importPath = "/admin/subscribers/import"

// bodyLimit caps every request body at HERALD_MAX_BODY_BYTES, except the
// admin CSV import's.
func (s *Server) bodyLimit() gin.HandlerFunc {
	small, large := s.d.Config.MaxBodyBytes, s.d.Config.ImportMaxBytes
	return func(c *gin.Context) {
		limit := small
		if c.Request.URL.Path == importPath {
			limit = large
			// A browser says the file's size up front: send the editor
			// back to the form, which says so next to the file field.
			if c.Request.Method == http.MethodPost && c.Request.ContentLength > limit {
				c.Redirect(http.StatusSeeOther, importPath+"?error=too_big")
				c.Abort()
				return
			}
			// A large file on a slow line outlasts the server's read
			// timeout; the session check reads the body (the CSRF field),
			// so the deadline is moved here, before it.
			extendDeadlines(c)
		}
		if c.Request.ContentLength > limit {
			_ = c.Error(errStatus(http.StatusRequestEntityTooLarge, "The request is too large."))
			c.Abort()
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		c.Next()
	}
}

// rateLimit applies the per-client-IP signup limit (HERALD_SIGNUP_LIMIT a
// minute). The client IP comes from X-Forwarded-For only behind the proxies
// in HERALD_TRUSTED_PROXIES (Gin's trusted-proxy handling).
func (s *Server) rateLimit(c *gin.Context) {
	if wait, ok := s.limiter.allow(c.ClientIP()); !ok {
		tooMany(c, wait)
		return
	}
	c.Next()
}

func (s *Server) loginLimit(c *gin.Context) {
	if wait, ok := s.loginRate.allow(c.ClientIP()); !ok {
		tooMany(c, wait)
		return
	}
	c.Next()
}

func tooMany(c *gin.Context, wait time.Duration) {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	c.Header("Retry-After", strconv.Itoa(secs))
	_ = c.Error(errStatus(http.StatusTooManyRequests, "Too many attempts. Please try again in a minute."))
	c.Abort()
}

// cors answers CORS for the public JSON signup API: only origins in
// HERALD_ALLOWED_ORIGINS (and Herald's own) get the headers; no cookies.
func (s *Server) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin != "" && (s.origins[origin] || s.origins["*"]) {
		h := c.Writer.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Expose-Headers", "Retry-After")
		h.Set("Access-Control-Max-Age", "600")
	}
	if c.Request.Method == http.MethodOptions {
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	c.Next()
}

// ipLimiter is a token bucket per client IP. Idle buckets are swept so the
// map does not grow without bound.
type ipLimiter struct {
	mu      sync.Mutex
	perMin  int
	every   time.Duration
	now     func() time.Time
	buckets map[string]*bucket
	calls   int
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newIPLimiter(perWindow int, window time.Duration, now func() time.Time) *ipLimiter {
	return &ipLimiter{perMin: perWindow, every: window, now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for ip, or says how long until one is free.
func (l *ipLimiter) allow(ip string) (time.Duration, bool) {
	ip = strings.TrimSpace(ip)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls%1024 == 0 {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 2*l.every {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[ip]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Every(l.every/time.Duration(l.perMin)), l.perMin)}
		l.buckets[ip] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// longWork is how long the admin's long requests (a CSV upload, an import,
// an export of every reader) may take, instead of the server's timeouts.
const longWork = 10 * time.Minute

// longRequest lets this request read and write for longWork.
func longRequest(c *gin.Context) {
	extendDeadlines(c)
	c.Next()
}

func extendDeadlines(c *gin.Context) {
	rc := http.NewResponseController(c.Writer)
	deadline := time.Now().Add(longWork)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
}

// lockouts locks a key (an account's address) for a while after max
// failures in a row, as accounts.Authenticate does in the database.
type lockouts struct {
	mu    sync.Mutex
	max   int
	lock  time.Duration
	now   func() time.Time
	state map[string]*lockout
	calls int
}

type lockout struct {
	fails int
	until time.Time
	seen  time.Time
}

func newLockouts(max int, lock time.Duration, now func() time.Time) *lockouts {
	return &lockouts{max: max, lock: lock, now: now, state: map[string]*lockout{}}
}

// locked reports whether key is locked now, and until when.
func (l *lockouts) locked(key string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.state[key]; st != nil && l.now().Before(st.until) {
		return st.until, true
	}
	return time.Time{}, false
}

// fail counts a failure; the max-th in a row locks the key.
func (l *lockouts) fail(key string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls++; l.calls%1024 == 0 {
		for k, st := range l.state {
			if now.Sub(st.seen) > 2*l.lock && now.After(st.until) {
				delete(l.state, k)
			}
		}
	}
	st := l.state[key]
	if st == nil {
		st = &lockout{}
		l.state[key] = st
	}
	st.seen = now
	if st.fails++; st.fails >= l.max {
		st.fails, st.until = 0, now.Add(l.lock)
	}
}

// forget clears key's failures (a good login).
func (l *lockouts) forget(key string) {
	l.mu.Lock()
	delete(l.state, key)
	l.mu.Unlock()
}
