// Package config loads Herald's configuration from the environment and an
// optional .env file, and validates it once at start-up.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
)

// Config is Herald's validated configuration.
type Config struct {
	Addr    string
	BaseURL *url.URL
	// DB is a SQLite path or a postgres:// URL.
	DB string
	// DataDir holds the generated secret and other local state.
	DataDir string
	// Secret signs tokens; OldSecrets still verify links made before a rotation.
	Secret     []byte
	OldSecrets [][]byte
	// SecretGenerated is true when Secret was generated for a localhost run.
	SecretGenerated bool

	SMTP            []SMTPServer
	SMTPConnections int
	SendRate        float64
	// Lease is how long a worker holds a claimed delivery; after a crash
	// its rows are sent again once the lease runs out.
	Lease    time.Duration
	From     string
	FromName string
	// DKIM, when not nil, signs every outgoing message.
	DKIM *DKIMConfig

	AdminEmail    string
	AdminPassword string

	AllowedOrigins []string
	TrustedProxies []string
	SignupLimit    int
	MaxBodyBytes   int64
	// ImportMaxBytes caps a CSV uploaded on the admin import page.
	ImportMaxBytes int64
	// MinSubmitTime is the time trap: forms submitted sooner are from bots.
	MinSubmitTime time.Duration
	// DisposableDomainsFile adds domains to the built-in blocklist.
	DisposableDomainsFile string

	SiteName       string
	SiteURL        string
	PostalAddress  string
	ConsentText    string
	PrivacyURL     string
	PrivacyVersion string
	RequireConsent bool
	ConfirmTTL     time.Duration
	// SessionIdle and SessionMax bound an admin session: it ends after
	// SessionIdle without a request, and SessionMax after login.
	SessionIdle     time.Duration
	SessionMax      time.Duration
	DefaultSections []string

	LogLevel string
	LogJSON  bool

	// Schedules: instant alerts, daily at DailyAt, weekly on WeeklyDay at
	// WeeklyAt, in Location. Review leaves scheduled digests as drafts.
	Location     *time.Location
	DailyAt      time.Duration // since local midnight
	WeeklyDay    time.Weekday
	WeeklyAt     time.Duration
	AlertsPerDay int
	Review       bool
}

// DevMailbox reports whether outgoing mail is kept in the dev mailbox.
func (c *Config) DevMailbox() bool { return len(c.SMTP) == 0 }

// IsLocal reports whether the base URL points at this machine.
func (c *Config) IsLocal() bool { return isLocalHost(c.BaseURL.Hostname()) }

// Secure reports whether Herald is served over https.
func (c *Config) Secure() bool { return c.BaseURL.Scheme == "https" }

// Load reads the environment, with values from envFile (if it exists) filling
// in what the environment does not set. getenv is os.Getenv in production.
func Load(getenv func(string) string, envFile string) (*Config, error) {
	fileVals := map[string]string{}
	if envFile != "" {
		if _, err := os.Stat(envFile); err == nil {
			vals, err := godotenv.Read(envFile)
			if err != nil {
				return nil, fmt.Errorf("config: reading %s: %w", envFile, err)
			}
			fileVals = vals
		}
	}
	get := func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return fileVals[k]
	}
	return parse(get)
}

type parser struct {
	get  func(string) string
	errs []error
}

func (p *parser) fail(key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (p *parser) str(key, def string) string {
	if v := strings.TrimSpace(p.get(key)); v != "" {
		return v
	}
	return def
}

func (p *parser) integer(key string, def, min, max int) int {
	v := p.get(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < min || n > max {
		p.fail(key, "%q is not a whole number between %d and %d", v, min, max)
		return def
	}
	return n
}

func (p *parser) float(key string, def, min, max float64) float64 {
	v := p.get(key)
	if v == "" {
		return def
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || n < min || n > max {
		p.fail(key, "%q is not a number between %g and %g", v, min, max)
		return def
	}
	return n
}

func (p *parser) duration(key string, def, min time.Duration) time.Duration {
	v := p.get(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < min {
		p.fail(key, "%q is not a duration of at least %s (write it like 72h or 30m)", v, min)
		return def
	}
	return d
}

func (p *parser) boolean(key string, def bool) bool {
	v := p.get(key)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		p.fail(key, "%q is not true or false", v)
		return def
	}
	return b
}

// clock parses "HH:MM" into the time since midnight.
func (p *parser) clock(key, def string) time.Duration {
	v := p.str(key, def)
	t, err := time.Parse("15:04", v)
	if err != nil {
		p.fail(key, "%q is not a time of day like 07:00", v)
		return 7 * time.Hour
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
}

// weekly parses "mon 07:00" into a weekday and a time since midnight.
func (p *parser) weekly(key, def string) (time.Weekday, time.Duration) {
	v := strings.ToLower(p.str(key, def))
	day, at, ok := strings.Cut(v, " ")
	days := map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
		"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}
	wd, known := days[strings.TrimSpace(day)[:min(3, len(strings.TrimSpace(day)))]]
	t, err := time.Parse("15:04", strings.TrimSpace(at))
	if !ok || !known || err != nil {
		p.fail(key, "%q is not a day and time like \"mon 07:00\"", v)
		return time.Monday, 7 * time.Hour
	}
	return wd, time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
}

func (p *parser) list(key string) []string {
	var out []string
	for _, s := range strings.Split(p.get(key), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parse(get func(string) string) (*Config, error) {
	p := &parser{get: get}
	c := &Config{}
	c.Addr = p.str("HERALD_ADDR", ":8080")
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		p.fail("HERALD_ADDR", "%q is not host:port (for example :8080 or 127.0.0.1:8080)", c.Addr)
	}
	base := p.str("HERALD_BASE_URL", "")
	if base == "" {
		_, port, _ := net.SplitHostPort(c.Addr)
		if port == "" {
			port = "8080"
		}
		base = "http://localhost:" + port
	}
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.fail("HERALD_BASE_URL", "%q is not an http:// or https:// URL", base)
		u, _ = url.Parse("http://localhost:8080")
	}
	c.BaseURL = u

	c.DB = p.str("HERALD_DB", "herald.db")
	if strings.HasPrefix(c.DB, "postgres://") || strings.HasPrefix(c.DB, "postgresql://") {
		if _, err := url.Parse(c.DB); err != nil {
			p.fail("HERALD_DB", "not a valid postgres:// URL: %v", err)
		}
		c.DataDir = p.str("HERALD_DATA_DIR", ".")
	} else {
		c.DataDir = p.str("HERALD_DATA_DIR", filepath.Dir(c.DB))
	}

	c.SMTP = p.smtp("HERALD_SMTP_URL")
	c.SMTPConnections = p.integer("HERALD_SMTP_CONNECTIONS", 4, 1, 256)
	c.SendRate = p.float("HERALD_SEND_RATE", 0, 0, 1e6)
	c.Lease = p.duration("HERALD_DELIVERY_LEASE", 2*time.Minute, 5*time.Second)
	c.From = p.str("HERALD_FROM", "Herald <newsletter@"+hostOnly(u)+">")
	if a, err := mail.ParseAddress(c.From); err != nil || strings.ContainsAny(c.From, "\r\n") {
		p.fail("HERALD_FROM", "%q is not an address like \"Daily News <news@example.com>\"", c.From)
	} else {
		c.FromName = a.Name
	}
	c.DKIM = p.dkim()

	c.AdminEmail = p.str("HERALD_ADMIN_EMAIL", "")
	c.AdminPassword = p.get("HERALD_ADMIN_PASSWORD")
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		p.fail("HERALD_ADMIN_EMAIL", "set both HERALD_ADMIN_EMAIL and HERALD_ADMIN_PASSWORD, or neither")
	} else if c.AdminPassword != "" && len(c.AdminPassword) < 10 {
		p.fail("HERALD_ADMIN_PASSWORD", "must be at least 10 characters")
	}

	c.AllowedOrigins = p.list("HERALD_ALLOWED_ORIGINS")
	for _, o := range c.AllowedOrigins {
		ou, err := url.Parse(o)
		if o != "*" && (err != nil || ou.Scheme == "" || ou.Host == "" || ou.Path != "") {
			p.fail("HERALD_ALLOWED_ORIGINS", "%q is not an origin like https://www.example.com", o)
		}
	}
	c.TrustedProxies = p.list("HERALD_TRUSTED_PROXIES")
	for _, tp := range c.TrustedProxies {
		if net.ParseIP(tp) == nil {
			if _, _, err := net.ParseCIDR(tp); err != nil {
				p.fail("HERALD_TRUSTED_PROXIES", "%q is not an IP address or CIDR range", tp)
			}
		}
	}
	c.SignupLimit = p.integer("HERALD_SIGNUP_LIMIT", 30, 1, 1_000_000)
	c.MaxBodyBytes = int64(p.integer("HERALD_MAX_BODY_BYTES", 64<<10, 1<<10, 64<<20))
	c.ImportMaxBytes = int64(p.integer("HERALD_IMPORT_MAX_BYTES", 64<<20, 1<<10, 1<<30))
	c.MinSubmitTime = p.duration("HERALD_MIN_SUBMIT_TIME", 2*time.Second, 0)
	c.DisposableDomainsFile = p.str("HERALD_DISPOSABLE_DOMAINS_FILE", "")
	if c.DisposableDomainsFile != "" {
		if _, err := os.Stat(c.DisposableDomainsFile); err != nil {
			p.fail("HERALD_DISPOSABLE_DOMAINS_FILE", "cannot read %q", c.DisposableDomainsFile)
		}
	}

	c.SiteName = p.str("HERALD_SITE_NAME", "The Daily Herald")
	c.SiteURL = p.str("HERALD_SITE_URL", c.BaseURL.String())
	c.PostalAddress = p.str("HERALD_POSTAL_ADDRESS", "1 Example Street, London EC1A 1AA, United Kingdom")
	c.ConsentText = p.str("HERALD_CONSENT_TEXT", "Yes, email me the stories I chose. I can unsubscribe at any time.")
	c.PrivacyURL = p.str("HERALD_PRIVACY_URL", c.SiteURL+"/privacy")
	c.PrivacyVersion = p.str("HERALD_PRIVACY_VERSION", "2026-01")
	c.RequireConsent = p.boolean("HERALD_REQUIRE_CONSENT", true)
	c.ConfirmTTL = p.duration("HERALD_CONFIRM_TTL", 72*time.Hour, time.Minute)
	c.SessionIdle = p.duration("HERALD_SESSION_IDLE", 12*time.Hour, 5*time.Minute)
	c.SessionMax = p.duration("HERALD_SESSION_MAX", 7*24*time.Hour, 5*time.Minute)
	if c.SessionMax < c.SessionIdle {
		p.fail("HERALD_SESSION_MAX", "must be at least HERALD_SESSION_IDLE (%s)", c.SessionIdle)
	}
	c.DefaultSections = p.list("HERALD_DEFAULT_SECTIONS")

	tz := p.str("HERALD_TIMEZONE", "UTC")
	if loc, err := time.LoadLocation(tz); err != nil {
		p.fail("HERALD_TIMEZONE", "%q is not a time zone name like Europe/London", tz)
		c.Location = time.UTC
	} else {
		c.Location = loc
	}
	c.DailyAt = p.clock("HERALD_DAILY_AT", "07:00")
	c.WeeklyDay, c.WeeklyAt = p.weekly("HERALD_WEEKLY_AT", "mon 07:00")
	c.AlertsPerDay = p.integer("HERALD_ALERTS_PER_DAY", 5, 0, 1000)
	c.Review = p.boolean("HERALD_REVIEW", false)

	c.LogLevel = strings.ToLower(p.str("HERALD_LOG_LEVEL", "info"))
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.fail("HERALD_LOG_LEVEL", "%q is not debug, info, warn or error", c.LogLevel)
	}
	c.LogJSON = p.str("HERALD_LOG_FORMAT", "text") == "json"

	secret := p.get("HERALD_SECRET")
	switch {
	case secret != "" && len(secret) < 32:
		p.fail("HERALD_SECRET", "must be at least 32 characters (try: openssl rand -hex 32)")
	case secret != "":
		c.Secret = []byte(secret)
	}
	for _, old := range p.list("HERALD_OLD_SECRETS") {
		c.OldSecrets = append(c.OldSecrets, []byte(old))
	}

	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if c.Secret == nil {
		if !c.IsLocal() {
			return nil, errors.New("HERALD_SECRET: required when HERALD_BASE_URL is not localhost (try: openssl rand -hex 32)")
		}
		s, err := localSecret(c.DataDir)
		if err != nil {
			return nil, fmt.Errorf("HERALD_SECRET: unset, and no local secret could be kept: %w", err)
		}
		c.Secret, c.SecretGenerated = s, true
	}
	return c, nil
}

func hostOnly(u *url.URL) string {
	h := u.Hostname()
	if isLocalHost(h) {
		return "localhost"
	}
	return h
}

func isLocalHost(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// localSecret reads, or creates, the secret kept in dir for localhost runs.
func localSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "herald.secret")
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); len(s) >= 32 {
			return []byte(s), nil
		}
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return nil, err
	}
	s := hex.EncodeToString(buf)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return nil, err
	}
	return []byte(s), nil
}
