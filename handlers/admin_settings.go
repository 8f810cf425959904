package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"herald/config"
)

// smtpCheckTimeout bounds the settings page's SMTP test, so that a relay
// that never answers leaves the admin waiting no longer than this.
const smtpCheckTimeout = 20 * time.Second

// settingsRoutes registers the settings page (admin only).
func (s *Server) settingsRoutes(g *gin.RouterGroup) {
	g.GET("/settings", s.adminSettings)
	g.POST("/settings/smtp-test", s.adminSMTPTest)
}

// settingRow is one configuration value: its variable and what it is set
// to, with secrets masked.
type settingRow struct {
	Label, Env, Value string
}

// settingGroup is a titled table of settings.
type settingGroup struct {
	Title string
	Rows  []settingRow
}

// settingsData is the data of "admin_settings".
type settingsData struct {
	adminPage
	Groups []settingGroup
	// CanTest is true when SMTP servers are configured and can be tested.
	CanTest bool
	// Tested is true after the SMTP test; TestErr is its error, "" if OK.
	Tested  bool
	TestErr string
}

func (s *Server) renderSettings(c *gin.Context, data settingsData) {
	data.adminPage = s.adminBase(c, "settings")
	data.Groups = settingGroups(s.d.Config)
	data.CanTest = !s.d.Config.DevMailbox() && s.d.CheckSMTP != nil
	s.page(c, http.StatusOK, "admin_settings", data)
}

func (s *Server) adminSettings(c *gin.Context) { s.renderSettings(c, settingsData{}) }

// adminSMTPTest connects to the configured SMTP servers (connect, EHLO,
// STARTTLS and AUTH as configured, QUIT) and shows the outcome.
func (s *Server) adminSMTPTest(c *gin.Context) {
	if s.d.Config.DevMailbox() || s.d.CheckSMTP == nil {
		s.audit(c, "settings.smtp-test", "smtp", "no SMTP server configured")
		s.renderSettings(c, settingsData{})
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), smtpCheckTimeout)
	defer cancel()
	data := settingsData{Tested: true}
	detail := "ok"
	if err := s.d.CheckSMTP(ctx); err != nil {
		// The error names servers and their replies, never the password;
		// it is shown to an admin only.
		data.TestErr = err.Error()
		detail = cfgClip(data.TestErr, 500)
		s.d.Logger.WarnContext(ctx, "SMTP test failed", "error", err)
	}
	s.audit(c, "settings.smtp-test", "smtp", detail)
	s.renderSettings(c, data)
}

func cfgClip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

const (
	cfgSecretSet   = "set (hidden)"
	cfgSecretUnset = "not set"
)

func cfgYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func cfgList(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return strings.Join(items, ", ")
}

func cfgClock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// cfgDB describes the database without its password.
func cfgDB(dsn string) string {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return "SQLite: " + dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "Postgres"
	}
	out := "Postgres: " + u.Host + u.Path
	if u.User != nil {
		out += " as " + u.User.Username()
	}
	return out
}

// settingGroups lists the configuration that matters to an admin. Secrets
// (HERALD_SECRET, old secrets, SMTP and admin passwords, the database
// password, the DKIM key) are never shown, only whether they are set.
func settingGroups(cfg *config.Config) []settingGroup {
	secret := cfgSecretSet
	if cfg.SecretGenerated {
		secret = "generated for this machine (kept in " + cfg.DataDir + "/herald.secret)"
	}
	oldSecrets := cfgSecretUnset
	if n := len(cfg.OldSecrets); n > 0 {
		oldSecrets = strconv.Itoa(n) + " set (hidden)"
	}
	site := settingGroup{Title: "Site", Rows: []settingRow{
		{"Herald's address", "HERALD_BASE_URL", cfg.BaseURL.String()},
		{"Listens on", "HERALD_ADDR", cfg.Addr},
		{"Site name", "HERALD_SITE_NAME", cfg.SiteName},
		{"Site address", "HERALD_SITE_URL", cfg.SiteURL},
		{"Postal address (email footer)", "HERALD_POSTAL_ADDRESS", cfg.PostalAddress},
		{"Database", "HERALD_DB", cfgDB(cfg.DB)},
		{"Data directory", "HERALD_DATA_DIR", cfg.DataDir},
		{"Token secret", "HERALD_SECRET", secret},
		{"Old token secrets", "HERALD_OLD_SECRETS", oldSecrets},
		{"Log level and format", "HERALD_LOG_LEVEL, HERALD_LOG_FORMAT", cfg.LogLevel + ", " + map[bool]string{true: "json", false: "text"}[cfg.LogJSON]},
	}}

	mail := settingGroup{Title: "Sending mail", Rows: []settingRow{
		{"From", "HERALD_FROM", cfg.From},
		{"SMTP connections", "HERALD_SMTP_CONNECTIONS", strconv.Itoa(cfg.SMTPConnections)},
		{"Send rate", "HERALD_SEND_RATE", cfgSendRate(cfg.SendRate)},
		{"Delivery lease", "HERALD_DELIVERY_LEASE", shortDuration(cfg.Lease)},
	}}
	if cfg.DevMailbox() {
		mail.Rows = append(mail.Rows, settingRow{"SMTP server", "HERALD_SMTP_URL", "none: the dev mailbox keeps outgoing mail at /admin/mailbox"})
	}
	for i, srv := range cfg.SMTP {
		n := ""
		if len(cfg.SMTP) > 1 {
			n = " " + strconv.Itoa(i+1)
		}
		user, pass := srv.Username, cfgSecretUnset
		if user == "" {
			user = "none (no AUTH)"
		}
		if srv.Password != "" {
			pass = cfgSecretSet
		}
		mail.Rows = append(mail.Rows,
			settingRow{"SMTP server" + n, "HERALD_SMTP_URL", srv.Addr()},
			settingRow{"SMTP TLS" + n, "HERALD_SMTP_URL ?tls=", srv.TLS},
			settingRow{"SMTP username" + n, "HERALD_SMTP_URL", user},
			settingRow{"SMTP password" + n, "HERALD_SMTP_URL", pass},
		)
	}
	dkim := "off"
	if cfg.DKIM != nil {
		dkim = "domain " + cfg.DKIM.Domain + ", selector " + cfg.DKIM.Selector + " (key in " + cfg.DKIM.KeyFile + ")"
	}
	mail.Rows = append(mail.Rows, settingRow{"DKIM signing", "HERALD_DKIM_DOMAIN, HERALD_DKIM_SELECTOR, HERALD_DKIM_KEY_FILE", dkim})

	schedule := settingGroup{Title: "Schedules", Rows: []settingRow{
		{"Time zone", "HERALD_TIMEZONE", cfg.Location.String()},
		{"Daily digest at", "HERALD_DAILY_AT", cfgClock(cfg.DailyAt)},
		{"Weekly digest", "HERALD_WEEKLY_AT", cfg.WeeklyDay.String() + " " + cfgClock(cfg.WeeklyAt)},
		{"Alerts per reader per day", "HERALD_ALERTS_PER_DAY", strconv.Itoa(cfg.AlertsPerDay)},
		{"Review scheduled digests before sending", "HERALD_REVIEW", cfgYesNo(cfg.Review)},
	}}

	signup := settingGroup{Title: "Signups, consent and privacy", Rows: []settingRow{
		{"Consent wording", "HERALD_CONSENT_TEXT", cfg.ConsentText},
		{"Consent checkbox required", "HERALD_REQUIRE_CONSENT", cfgYesNo(cfg.RequireConsent)},
		{"Privacy policy", "HERALD_PRIVACY_URL", cfg.PrivacyURL},
		{"Privacy policy version", "HERALD_PRIVACY_VERSION", cfg.PrivacyVersion},
		{"Confirmation link valid for", "HERALD_CONFIRM_TTL", shortDuration(cfg.ConfirmTTL)},
		{"Default sections", "HERALD_DEFAULT_SECTIONS", cfgList(cfg.DefaultSections, "none")},
		{"Allowed origins (widget, return_to)", "HERALD_ALLOWED_ORIGINS", cfgList(cfg.AllowedOrigins, "none besides Herald's own")},
		{"Trusted proxies", "HERALD_TRUSTED_PROXIES", cfgList(cfg.TrustedProxies, "none (the client address is the connection's)")},
	}}

	disposable := cfg.DisposableDomainsFile
	if disposable == "" {
		disposable = "built-in list only"
	}
	minSubmit := "off"
	if cfg.MinSubmitTime > 0 {
		minSubmit = shortDuration(cfg.MinSubmitTime)
	}
	limits := settingGroup{Title: "Limits", Rows: []settingRow{
		{"Signups per IP address per minute", "HERALD_SIGNUP_LIMIT", strconv.Itoa(cfg.SignupLimit)},
		{"Largest request body", "HERALD_MAX_BODY_BYTES", cfgBytes(cfg.MaxBodyBytes)},
		{"Largest CSV import", "HERALD_IMPORT_MAX_BYTES", cfgBytes(cfg.ImportMaxBytes)},
		{"Minimum time to fill the form", "HERALD_MIN_SUBMIT_TIME", minSubmit},
		{"Disposable domains", "HERALD_DISPOSABLE_DOMAINS_FILE", disposable},
	}}
	admin := settingGroup{Title: "Admin", Rows: []settingRow{
		{"First admin from the environment", "HERALD_ADMIN_EMAIL", cfgList(cfgNonEmpty(cfg.AdminEmail), "not set")},
		{"Session ends after idle", "HERALD_SESSION_IDLE", shortDuration(cfg.SessionIdle)},
		{"Session ends at the latest after", "HERALD_SESSION_MAX", shortDuration(cfg.SessionMax)},
	}}
	return []settingGroup{site, mail, schedule, signup, limits, admin}
}

func cfgNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func cfgSendRate(r float64) string {
	if r <= 0 {
		return "unlimited"
	}
	return strconv.FormatFloat(r, 'f', -1, 64) + " messages a second"
}

func cfgBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
