package handlers_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"herald/accounts"
	"herald/config"
	"herald/digests"
	"herald/handlers"
	"herald/mailer"
	"herald/models"
	"herald/models/testdb"
	"herald/stories"
	"herald/subscribers"
	"herald/templates"
)

// clock is an injected, settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is Herald's HTTP stack on a real Store, without the delivery
// worker: emails stay in the outbox, where tests count them.
type harness struct {
	t      *testing.T
	dsn    string
	store  *models.Store
	subs   *subscribers.Service
	acc    *accounts.Accounts
	clock  *clock
	srv    *httptest.Server
	cfg    *config.Config
	client *http.Client

	stories    *stories.Service
	server     *handlers.Server
	newStories chan int64 // ids of the stories OnNew reported
}

func newHarness(t *testing.T, dsn string, env map[string]string) *harness {
	t.Helper()
	store := testdb.Open(t, dsn)
	h := &harness{t: t, dsn: dsn, store: store, clock: &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}}
	var inner http.Handler
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner.ServeHTTP(w, r) }))
	t.Cleanup(h.srv.Close)
	vals := map[string]string{
		"HERALD_BASE_URL": h.srv.URL, "HERALD_SECRET": strings.Repeat("s", 32), "HERALD_DATA_DIR": t.TempDir(),
		"HERALD_ALLOWED_ORIGINS": "https://news.example.com",
	}
	for k, v := range env {
		vals[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vals[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = cfg
	tpl, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, sec := range []models.Section{{Slug: "politics-uk", Name: "Politics UK"}, {Slug: "world", Name: "World"}} {
		sec := sec
		if err := store.CreateSection(ctx, &sec); err != nil {
			t.Fatal(err)
		}
	}
	block, _ := subscribers.NewBlocklist("")
	h.subs = subscribers.New(store, subscribers.Config{
		Tokens: subscribers.NewTokens(cfg.Secret), ConfirmTTL: cfg.ConfirmTTL, ConsentText: cfg.ConsentText,
		PolicyVersion: cfg.PrivacyVersion, RequireConsent: cfg.RequireConsent, Blocklist: block, Now: h.clock.Now,
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = h.subs.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	h.acc = accounts.New(store, accounts.Config{BcryptCost: bcrypt.MinCost, Now: h.clock.Now, SessionIdle: cfg.SessionIdle, SessionMax: cfg.SessionMax})
	h.newStories = make(chan int64, 100)
	h.stories = stories.New(store, stories.Config{Now: h.clock.Now, OnNew: func(_ context.Context, st *models.Story, _ []int64) {
		select {
		case h.newStories <- st.ID:
		default:
		}
	}})
	d := handlers.Deps{
		Config: cfg, Store: store, Subscribers: h.subs, Accounts: h.acc, Stories: h.stories, Templates: tpl,
		Digests: digests.New(store, digests.Config{Now: h.clock.Now}),
		Now:     h.clock.Now, SetupToken: "setup-token-for-tests",
	}
	if !cfg.DevMailbox() {
		// The settings page's SMTP test, wired as the app wires it.
		d.CheckSMTP = func(ctx context.Context) error {
			return mailer.Check(ctx, mailer.SMTPConfig{Servers: cfg.SMTP, Timeout: 5 * time.Second})
		}
	}
	srv, err := handlers.New(d)
	if err != nil {
		t.Fatal(err)
	}
	inner = srv
	h.server = srv
	h.client = h.newClient()
	return h
}

func (h *harness) newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (h *harness) do(c *http.Client, method, path, contentType, body string, headers map[string]string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = h.client
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (h *harness) postJSON(path, body string) response {
	h.t.Helper()
	return h.do(nil, http.MethodPost, path, "application/json", body, nil)
}

func (h *harness) postForm(path string, v url.Values) response {
	h.t.Helper()
	return h.do(nil, http.MethodPost, path, "application/x-www-form-urlencoded", v.Encode(), nil)
}

func (h *harness) get(path string) response {
	h.t.Helper()
	return h.do(nil, http.MethodGet, path, "", "", nil)
}

func (h *harness) subscriber(email string) *models.Subscriber {
	h.t.Helper()
	_, norm, err := subscribers.ParseAddress(email)
	if err != nil {
		h.t.Fatal(err)
	}
	s, err := h.store.SubscriberByEmail(context.Background(), norm)
	if err != nil {
		return nil
	}
	return s
}

func (h *harness) deliveries(email, kind string) int {
	h.t.Helper()
	s := h.subscriber(email)
	if s == nil {
		return 0
	}
	ds, err := h.store.DeliveriesFor(context.Background(), s.ID, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, d := range ds {
		if d.Kind == kind {
			n++
		}
	}
	return n
}

func (h *harness) token(p subscribers.Purpose, email string, expires time.Time) string {
	h.t.Helper()
	s := h.subscriber(email)
	if s == nil {
		h.t.Fatalf("no subscriber %s", email)
	}
	return h.subs.Tokens().Make(p, s.ID, expires)
}

func signupJSON(email string) string {
	return `{"email":"` + email + `","sections":["politics-uk"],"frequency":"daily","consent":true,"source":"test"}`
}

// eachDB runs fn on SQLite, and on Postgres when HERALD_TEST_POSTGRES is set.
func eachDB(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, k := range testdb.Kinds() {
		t.Run(string(k), func(t *testing.T) { fn(t, testdb.DSN(t, k)) })
	}
}
