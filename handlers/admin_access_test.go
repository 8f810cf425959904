package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/models"
	"herald/models/testdb"
)

// openRoutes are the routes under /admin and /api that anyone may call.
var openRoutes = map[string]bool{
	"GET /admin/login":              true,
	"POST /admin/login":             true,
	"GET /admin/setup/:token":       true,
	"POST /admin/setup/:token":      true,
	"POST /api/v1/subscribe":        true,
	"OPTIONS /api/v1/subscribe":     true,
	"GET /admin/embed/preview":      false, // framed by the embed page: still needs a session
	"GET /admin/subscribers/export": false,
}

// adminOnlyPrefixes are the parts of /admin editors may not use.
var adminOnlyPrefixes = []string{"/admin/users", "/admin/keys", "/admin/settings"}

func adminOnly(path string) bool {
	for _, p := range adminOnlyPrefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// concrete fills a route's parameters with values that name nothing.
func concrete(path string) string {
	return regexp.MustCompile(`:[a-z_]+|\*[a-z_]+`).ReplaceAllString(path, "999999")
}

// protectedRoutes lists every registered route under /admin and /api that
// needs a session or an API key.
func protectedRoutes(h *harness) []struct{ method, path string } {
	var out []struct{ method, path string }
	for _, r := range h.server.Routes() {
		if !strings.HasPrefix(r.Path, "/admin") && !strings.HasPrefix(r.Path, "/api") {
			continue
		}
		if openRoutes[r.Method+" "+r.Path] {
			continue
		}
		out = append(out, struct{ method, path string }{r.Method, r.Path})
	}
	return out
}

func TestEveryAdminAndAPIRouteRefusesAnonymous(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	routes := protectedRoutes(h)
	if len(routes) < 20 {
		t.Fatalf("only %d protected routes registered: the walk is not seeing the admin side", len(routes))
	}
	anon := h.newClient()
	for _, r := range routes {
		path := concrete(r.path)
		res := h.do(anon, r.method, path, "application/x-www-form-urlencoded", "", nil)
		switch {
		case strings.HasPrefix(r.path, "/api/"):
			if res.status != http.StatusUnauthorized {
				t.Errorf("%s %s anonymous: %d, want 401", r.method, r.path, res.status)
			}
		case r.method == http.MethodGet:
			if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/admin/login") {
				t.Errorf("%s %s anonymous: %d to %q, want a redirect to the login page", r.method, r.path, res.status, res.header.Get("Location"))
			}
		default:
			if res.status != http.StatusUnauthorized {
				t.Errorf("%s %s anonymous: %d, want 401", r.method, r.path, res.status)
			}
		}
		if strings.Contains(res.body, "csrf-token") {
			t.Errorf("%s %s anonymous: the answer is an admin page", r.method, r.path)
		}
	}
}

func TestRolesOnEveryAdminRoute(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	editor, editorCSRF := h.adminClient(models.RoleEditor)
	admin, adminCSRF := h.adminClient(models.RoleAdmin)
	checked := 0
	for _, r := range protectedRoutes(h) {
		if !strings.HasPrefix(r.path, "/admin") || r.path == "/admin/logout" {
			continue
		}
		path := concrete(r.path)
		if adminOnly(r.path) {
			res := h.do(editor, r.method, path, "application/x-www-form-urlencoded", "", map[string]string{"X-CSRF-Token": editorCSRF})
			if res.status != http.StatusForbidden {
				t.Errorf("editor %s %s: %d, want 403", r.method, r.path, res.status)
			}
			checked++
		} else if r.method == http.MethodGet {
			res := h.do(editor, r.method, path, "", "", nil)
			if res.status == http.StatusForbidden || res.status == http.StatusUnauthorized || res.status >= 500 {
				t.Errorf("editor %s %s: %d", r.method, r.path, res.status)
			}
		}
		if r.method == http.MethodGet {
			res := h.do(admin, r.method, path, "", "", nil)
			if res.status == http.StatusForbidden || res.status == http.StatusUnauthorized || res.status >= 500 {
				t.Errorf("admin %s %s: %d", r.method, r.path, res.status)
			}
		} else if adminOnly(r.path) {
			// The admin gets past the role check: whatever the answer, not 403.
			res := h.do(admin, r.method, path, "application/x-www-form-urlencoded", "", map[string]string{"X-CSRF-Token": adminCSRF})
			if res.status == http.StatusForbidden || res.status >= 500 {
				t.Errorf("admin %s %s: %d", r.method, r.path, res.status)
			}
		}
	}
	if checked < 3 {
		t.Fatalf("only %d admin-only routes checked", checked)
	}
}

func TestEveryAdminPostNeedsTheCSRFToken(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	admin, csrf := h.adminClient(models.RoleAdmin)
	n := 0
	for _, r := range h.server.Routes() {
		// The setup link answers 404/410 before anything once an admin exists.
		if !strings.HasPrefix(r.Path, "/admin") || r.Method == http.MethodGet || r.Method == http.MethodHead || r.Path == "/admin/setup/:token" {
			continue
		}
		path := concrete(r.Path)
		for _, token := range []string{"", "forged-" + csrf[:8]} {
			body := url.Values{}
			if token != "" {
				body.Set("csrf_token", token)
			}
			res := h.do(admin, r.Method, path, "application/x-www-form-urlencoded", body.Encode(), nil)
			if res.status != http.StatusForbidden {
				t.Errorf("%s %s with csrf_token %q: %d, want 403", r.Method, r.Path, token, res.status)
			}
		}
		n++
	}
	if n < 8 {
		t.Fatalf("only %d state-changing admin routes", n)
	}
	// The session survived all that: the requests changed nothing.
	if r := h.do(admin, http.MethodGet, "/admin", "", "", nil); r.status != http.StatusOK {
		t.Fatalf("dashboard after the walk: %d", r.status)
	}
}

func login(h *harness, c *http.Client, email, pw string) response {
	h.t.Helper()
	page := h.do(c, http.MethodGet, "/admin/login", "", "", nil)
	v := url.Values{"email": {email}, "password": {pw}, "csrf_token": {csrfFrom(h.t, page.body)}}
	return h.do(c, http.MethodPost, "/admin/login", "application/x-www-form-urlencoded", v.Encode(), nil)
}

func TestLoginThrottledPerAccountAndPerIP(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	ctx := context.Background()
	if _, err := h.acc.CreateUser(ctx, "desk@example.com", "the right password", models.RoleEditor); err != nil {
		t.Fatal(err)
	}
	c := h.newClient()
	for i := 0; i < 5; i++ {
		if r := login(h, c, "desk@example.com", "a wrong password"); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i+1, r.status)
		}
	}
	r := login(h, c, "Desk@Example.com", "the right password")
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many failed attempts for this account") || r.header.Get("Retry-After") == "" {
		t.Fatalf("right password after 5 failures: %d %q", r.status, r.header.Get("Retry-After"))
	}
	// Another account from the same place is not locked by this one.
	if _, err := h.acc.CreateUser(ctx, "other@example.com", "another right one", models.RoleEditor); err != nil {
		t.Fatal(err)
	}
	if r := login(h, h.newClient(), "other@example.com", "another right one"); r.status != http.StatusSeeOther {
		t.Fatalf("another account: %d", r.status)
	}
	h.clock.Add(10 * time.Minute)
	if r := login(h, c, "desk@example.com", "the right password"); r.status != http.StatusTooManyRequests {
		t.Fatalf("10 minutes into the lock: %d", r.status)
	}
	h.clock.Add(6 * time.Minute)
	if r := login(h, c, "desk@example.com", "the right password"); r.status != http.StatusSeeOther {
		t.Fatalf("after the lock: %d", r.status)
	}
	// An address that is no account answers exactly as a real one does,
	// wrong password by wrong password, lock included.
	for i := 0; i < 6; i++ {
		h.clock.Add(time.Minute) // past the per-IP limit, well inside the lock
		real := login(h, h.newClient(), "other@example.com", "not the password")
		fake := login(h, h.newClient(), "nobody-here@example.com", "not the password")
		if real.status != fake.status || strings.Contains(real.body, "Too many") != strings.Contains(fake.body, "Too many") {
			t.Fatalf("attempt %d: a real account answers %d, no account %d", i+1, real.status, fake.status)
		}
		if want := map[bool]int{false: http.StatusUnauthorized, true: http.StatusTooManyRequests}[i == 5]; real.status != want {
			t.Fatalf("attempt %d: %d, want %d", i+1, real.status, want)
		}
	}

	// Per IP: ten attempts a minute, whatever the accounts.
	h.clock.Add(10 * time.Minute)
	ip := h.newClient()
	var last response
	for i := 0; i < 11; i++ {
		last = login(h, ip, "nobody"+strings.Repeat("x", i)+"@example.com", "whatever it is")
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("11th attempt from one IP in a minute: %d", last.status)
	}
}

func TestSessionIdleAndAbsoluteExpiry(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), map[string]string{"HERALD_SESSION_IDLE": "2h", "HERALD_SESSION_MAX": "24h"})
	c, _ := h.adminClient(models.RoleEditor)
	h.clock.Add(90 * time.Minute)
	if r := h.do(c, http.MethodGet, "/admin", "", "", nil); r.status != http.StatusOK {
		t.Fatalf("after 90 idle minutes: %d", r.status)
	}
	h.clock.Add(121 * time.Minute)
	if r := h.do(c, http.MethodGet, "/admin", "", "", nil); r.status != http.StatusSeeOther {
		t.Fatalf("after 2 idle hours: %d, want a redirect to login", r.status)
	}

	c2, _ := h.adminClient(models.RoleEditor)
	for i := 0; i < 14; i++ { // active every 100 minutes, for 23h20m
		h.clock.Add(100 * time.Minute)
		if r := h.do(c2, http.MethodGet, "/admin", "", "", nil); r.status != http.StatusOK {
			t.Fatalf("active session after %d steps: %d", i+1, r.status)
		}
	}
	h.clock.Add(50 * time.Minute) // 24h10m after login
	if r := h.do(c2, http.MethodGet, "/admin", "", "", nil); r.status != http.StatusSeeOther {
		t.Fatalf("a day after login: %d, want a redirect to login", r.status)
	}
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	ctx := context.Background()
	if _, err := h.acc.CreateUser(ctx, "me@example.com", "old password 123", models.RoleEditor); err != nil {
		t.Fatal(err)
	}
	laptop, phone := h.newClient(), h.newClient()
	for _, c := range []*http.Client{laptop, phone} {
		if r := login(h, c, "me@example.com", "old password 123"); r.status != http.StatusSeeOther {
			t.Fatalf("login: %d", r.status)
		}
	}
	csrf := h.sessionCSRF(laptop)
	change := func(cur, next, again string) response {
		return h.adminPost(laptop, csrf, "/admin/account/password", url.Values{
			"current_password": {cur}, "new_password": {next}, "new_password_confirm": {again}})
	}
	if r := change("not my password", "new password 456", "new password 456"); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, `id="current_password-error"`) || !strings.Contains(r.body, "not your current password") {
		t.Fatalf("wrong current password: %d", r.status)
	}
	if r := change("old password 123", "short", "short"); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "at least 10") {
		t.Fatalf("short password: %d", r.status)
	}
	if r := change("old password 123", "new password 456", "new password 789"); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "not the same") {
		t.Fatalf("mismatch: %d", r.status)
	}
	if r := h.do(phone, http.MethodGet, "/admin", "", "", nil); r.status != http.StatusOK {
		t.Fatalf("failed changes ended the other session: %d", r.status)
	}
	if r := change("old password 123", "new password 456", "new password 456"); r.status != http.StatusSeeOther {
		t.Fatalf("change: %d %.300s", r.status, r.body)
	}
	if r := h.do(laptop, http.MethodGet, "/admin/account", "", "", nil); r.status != http.StatusOK || !strings.Contains(r.body, "Your password is changed") {
		t.Fatalf("this session after the change: %d", r.status)
	}
	if r := h.do(phone, http.MethodGet, "/admin", "", "", nil); r.status != http.StatusSeeOther {
		t.Fatalf("other session after the change: %d, want it ended", r.status)
	}
	if r := login(h, h.newClient(), "me@example.com", "old password 123"); r.status != http.StatusUnauthorized {
		t.Fatalf("old password: %d", r.status)
	}
	if r := login(h, h.newClient(), "me@example.com", "new password 456"); r.status != http.StatusSeeOther {
		t.Fatalf("new password: %d", r.status)
	}
	entries, err := h.store.AuditEntries(ctx, models.AuditFilter{Action: "user.password"})
	if err != nil || len(entries) != 1 || entries[0].UserEmail != "me@example.com" {
		t.Fatalf("audit: %v %+v", err, entries)
	}
}

func TestUsersPage(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		ctx := context.Background()
		admin, csrf := h.adminClient(models.RoleAdmin)
		bad := h.adminPost(admin, csrf, "/admin/users", url.Values{"email": {"not an address"}, "role": {"boss"}, "password": {"short"}})
		if bad.status != http.StatusUnprocessableEntity {
			t.Fatalf("bad user: %d", bad.status)
		}
		for _, f := range []string{"email", "role", "password"} {
			if !strings.Contains(bad.body, `id="`+f+`-error"`) {
				t.Errorf("no message next to %s", f)
			}
		}
		if !strings.Contains(bad.body, `value="not an address"`) {
			t.Error("the typed email was lost")
		}
		if r := h.adminPost(admin, csrf, "/admin/users", url.Values{"email": {"new@example.com"}, "role": {"editor"}, "password": {"first password 1"}}); r.status != http.StatusSeeOther {
			t.Fatalf("add: %d %.300s", r.status, r.body)
		}
		if r := h.adminPost(admin, csrf, "/admin/users", url.Values{"email": {"NEW@example.com"}, "role": {"editor"}, "password": {"first password 1"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "already exists") {
			t.Fatalf("duplicate: %d", r.status)
		}
		nu, err := h.store.AdminUserByEmail(ctx, "new@example.com")
		if err != nil || nu.Role != models.RoleEditor {
			t.Fatalf("new user: %v %+v", err, nu)
		}
		newbie := h.newClient()
		if r := login(h, newbie, "new@example.com", "first password 1"); r.status != http.StatusSeeOther {
			t.Fatalf("new user logs in: %d", r.status)
		}
		if r := h.do(newbie, http.MethodGet, "/admin/users", "", "", nil); r.status != http.StatusForbidden {
			t.Fatalf("editor on users page: %d", r.status)
		}
		id := strconv.FormatInt(nu.ID, 10)
		if r := h.adminPost(admin, csrf, "/admin/users/"+id+"/role", url.Values{"role": {"admin"}}); r.status != http.StatusSeeOther {
			t.Fatalf("promote: %d", r.status)
		}
		if r := h.do(newbie, http.MethodGet, "/admin/users", "", "", nil); r.status != http.StatusOK {
			t.Fatalf("promoted user on users page: %d", r.status)
		}
		if r := h.adminPost(admin, csrf, "/admin/users/"+id+"/password", url.Values{"password": {"reset password 2"}}); r.status != http.StatusSeeOther {
			t.Fatalf("reset: %d", r.status)
		}
		if r := h.do(newbie, http.MethodGet, "/admin", "", "", nil); r.status != http.StatusSeeOther {
			t.Fatalf("session after a reset: %d, want it ended", r.status)
		}
		if r := h.adminPost(admin, csrf, "/admin/users/"+id+"/delete", nil); r.status != http.StatusSeeOther {
			t.Fatalf("delete: %d", r.status)
		}
		if r := login(h, h.newClient(), "new@example.com", "reset password 2"); r.status != http.StatusUnauthorized {
			t.Fatalf("deleted user logs in: %d", r.status)
		}
		// The last admin can neither be demoted nor removed.
		me := h.signedInUser(admin)
		if r := h.adminPost(admin, csrf, "/admin/users/"+strconv.FormatInt(me.ID, 10)+"/role", url.Values{"role": {"editor"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "at least one admin") {
			t.Fatalf("demote the last admin: %d", r.status)
		}
		if r := h.adminPost(admin, csrf, "/admin/users/"+strconv.FormatInt(me.ID, 10)+"/delete", nil); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("remove yourself: %d", r.status)
		}
		if r := h.adminPost(admin, csrf, "/admin/users/999999/role", url.Values{"role": {"editor"}}); r.status != http.StatusNotFound {
			t.Fatalf("unknown user: %d", r.status)
		}
		audit := h.do(admin, http.MethodGet, "/admin/audit", "", "", nil)
		for _, a := range []string{"user.create", "user.role", "user.password", "user.delete"} {
			if !strings.Contains(audit.body, a) {
				t.Errorf("audit page lacks %s", a)
			}
		}
		if r := h.do(admin, http.MethodGet, "/admin/audit?action=user.delete", "", "", nil); strings.Contains(r.body, "<code>user.create</code>") || !strings.Contains(r.body, "<code>user.delete</code>") {
			t.Error("audit filter by action")
		}
	})
}

// signedInUser returns the admin user signed in on c.
func (h *harness) signedInUser(c *http.Client) *models.AdminUser {
	h.t.Helper()
	r := h.do(c, http.MethodGet, "/admin/account", "", "", nil)
	m := regexp.MustCompile(`<dt>Email</dt><dd>([^<]+)</dd>`).FindStringSubmatch(r.body)
	if m == nil {
		h.t.Fatalf("account page: %d", r.status)
	}
	u, err := h.store.AdminUserByEmail(context.Background(), m[1])
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}
