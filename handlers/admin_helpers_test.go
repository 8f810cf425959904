package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"

	"herald/models/testdb"
)

var adminSeq atomic.Int64

// adminClient creates a user with role, logs them in on a new client and
// returns the client and the session's CSRF token.
func (h *harness) adminClient(role string) (*http.Client, string) {
	h.t.Helper()
	email := role + "-" + strconv.FormatInt(adminSeq.Add(1), 10) + "@example.com"
	const pw = "a long test password"
	if _, err := h.acc.CreateUser(context.Background(), email, pw, role); err != nil {
		h.t.Fatal(err)
	}
	c := h.newClient()
	page := h.do(c, http.MethodGet, "/admin/login", "", "", nil)
	v := url.Values{"email": {email}, "password": {pw}, "csrf_token": {csrfFrom(h.t, page.body)}}
	if r := h.do(c, http.MethodPost, "/admin/login", "application/x-www-form-urlencoded", v.Encode(), nil); r.status != http.StatusSeeOther {
		h.t.Fatalf("login as %s: %d %.300s", role, r.status, r.body)
	}
	return c, h.sessionCSRF(c)
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// sessionCSRF reads the CSRF token of c's session from the dashboard.
func (h *harness) sessionCSRF(c *http.Client) string {
	h.t.Helper()
	r := h.do(c, http.MethodGet, "/admin", "", "", nil)
	m := csrfMeta.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		h.t.Fatalf("dashboard: %d, no csrf-token meta: %.300s", r.status, r.body)
	}
	return m[1]
}

// adminPost posts a form as c with the CSRF token added.
func (h *harness) adminPost(c *http.Client, csrf, path string, v url.Values) response {
	h.t.Helper()
	if v == nil {
		v = url.Values{}
	}
	v.Set("csrf_token", csrf)
	return h.do(c, http.MethodPost, path, "application/x-www-form-urlencoded", v.Encode(), nil)
}

func TestAdminClientHelper(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	c, csrf := h.adminClient("editor")
	if csrf == "" {
		t.Fatal("no csrf")
	}
	if r := h.do(c, http.MethodGet, "/admin", "", "", nil); r.status != http.StatusOK {
		t.Fatalf("dashboard: %d", r.status)
	}
}
