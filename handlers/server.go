// Package handlers is Herald's HTTP side, on Gin: the public signup form and
// JSON API, the links in emails, the admin pages and the REST API. Every
// route is listed in routes.go; handlers hold no SQL and no business rules.
package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"herald/accounts"
	"herald/config"
	"herald/digests"
	"herald/models"
	"herald/stories"
	"herald/subscribers"
	"herald/templates"
)

// Deps are what the handlers need.
type Deps struct {
	Config      *config.Config
	Store       *models.Store
	Subscribers *subscribers.Service
	Accounts    *accounts.Accounts
	Stories     *stories.Service
	Digests     *digests.Service
	Templates   *templates.Set
	Logger      *slog.Logger
	// Registry serves /metrics; nil means a fresh one.
	Registry *prometheus.Registry
	// SetupToken, when set, enables the one-time /admin/setup/TOKEN page
	// that creates the first admin user.
	SetupToken string
	// DigestRenderer renders digests as sent, for the admin preview; nil
	// means one built from Config.
	DigestRenderer *digests.Renderer
	// CheckSMTP tries the configured SMTP server (connect, EHLO, QUIT) for
	// the settings page's test button; nil when there is none to test.
	CheckSMTP func(context.Context) error
	Now       func() time.Time
}

// Server is the HTTP handler.
type Server struct {
	d         Deps
	engine    *gin.Engine
	site      templates.Site
	limiter   *ipLimiter
	loginRate *ipLimiter
	// loginFails counts failed logins per account (by email): a few are
	// allowed, then the account is refused for a while, whatever the IP.
	loginFails *lockouts
	origins    map[string]bool
	metrics    *metrics
	secure     bool
	stats      *statsCache
	// pendingJSON is the signup API's answer, the same for every address,
	// encoded once.
	pendingJSON []byte
}

// New builds the router. It fails when a page the routes use is missing.
func New(d Deps) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if err := d.Templates.Require(pageNames(), nil); err != nil {
		return nil, err
	}
	if d.DigestRenderer == nil {
		r, err := digests.NewRenderer(digests.RenderConfig{
			Store: d.Store, Templates: d.Templates, Site: siteOf(d.Config), From: d.Config.From, Location: d.Config.Location,
			Links: d.Subscribers.Tokens().ReaderLinks(d.Config.BaseURL.String()),
		})
		if err != nil {
			return nil, err
		}
		d.DigestRenderer = r
	}
	cfg := d.Config
	s := &Server{
		d:          d,
		site:       siteOf(cfg),
		limiter:    newIPLimiter(cfg.SignupLimit, time.Minute, d.Now),
		loginRate:  newIPLimiter(10, time.Minute, d.Now),
		loginFails: newLockouts(accounts.MaxLoginFailures, accounts.LoginLock, d.Now),
		origins:    map[string]bool{originOf(cfg.BaseURL): true},
		secure:     cfg.Secure(),
	}
	var err error
	if s.pendingJSON, err = json.Marshal(gin.H{"status": "pending", "message": pendingMessage}); err != nil {
		return nil, err
	}
	for _, o := range cfg.AllowedOrigins {
		s.origins[o] = true
	}
	m, err := newMetrics(d.Registry, d.Store)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.stats = &statsCache{store: d.Store, now: d.Now, logger: d.Logger}

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	if err := e.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	if len(cfg.TrustedProxies) == 0 {
		if err := e.SetTrustedProxies(nil); err != nil {
			return nil, err
		}
	}
	s.engine = e
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Routes lists the registered routes as "METHOD path" (tests walk them).
func (s *Server) Routes() []gin.RouteInfo { return s.engine.Routes() }

func originOf(u *url.URL) string { return u.Scheme + "://" + u.Host }

// siteOf is the publication's identity as pages and emails show it.
func siteOf(cfg *config.Config) templates.Site {
	return templates.Site{
		Name: cfg.SiteName, URL: cfg.SiteURL, PrivacyURL: cfg.PrivacyURL,
		PostalAddress: cfg.PostalAddress, BaseURL: cfg.BaseURL.String(),
	}
}
