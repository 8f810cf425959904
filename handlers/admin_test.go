package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"herald/models"
	"herald/models/testdb"
)

func csrfFrom(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf_token in page: %.300s", body)
	}
	return m[1]
}

func TestAdminLoginSessionCSRF(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	if _, err := h.acc.CreateUser(context.Background(), "editor@example.com", "correct horse battery", models.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	c := h.newClient()
	if r := h.do(c, http.MethodGet, "/admin/mailbox", "", "", nil); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/admin/login") {
		t.Fatalf("anonymous mailbox: %d %s", r.status, r.header.Get("Location"))
	}
	if r := h.do(c, http.MethodPost, "/admin/mailbox/clear", "", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("anonymous POST: %d", r.status)
	}
	page := h.do(c, http.MethodGet, "/admin/login", "", "", nil)
	tok := csrfFrom(t, page.body)
	login := func(pw, csrf string) response {
		v := url.Values{"email": {"editor@example.com"}, "password": {pw}, "csrf_token": {csrf}}
		return h.do(c, http.MethodPost, "/admin/login", "application/x-www-form-urlencoded", v.Encode(), nil)
	}
	if r := login("correct horse battery", "forged"); r.status != http.StatusForbidden {
		t.Fatalf("login without the CSRF token: %d", r.status)
	}
	if r := login("wrong password!", tok); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "not right") {
		t.Fatalf("wrong password: %d", r.status)
	}
	r := login("correct horse battery", tok)
	if r.status != http.StatusSeeOther {
		t.Fatalf("login: %d %.200s", r.status, r.body)
	}
	cookie := r.header.Get("Set-Cookie")
	if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") {
		t.Fatalf("session cookie flags: %s", cookie)
	}
	mb := h.do(c, http.MethodGet, "/admin/mailbox", "", "", nil)
	if mb.status != http.StatusOK || !strings.Contains(mb.body, "Dev mailbox") {
		t.Fatalf("mailbox after login: %d", mb.status)
	}
	session := csrfFrom(t, mb.body)
	if r := h.do(c, http.MethodPost, "/admin/mailbox/clear", "application/x-www-form-urlencoded", "", nil); r.status != http.StatusForbidden {
		t.Fatalf("POST without CSRF token: %d", r.status)
	}
	if r := h.do(c, http.MethodPost, "/admin/mailbox/clear", "application/x-www-form-urlencoded", "csrf_token="+session, nil); r.status != http.StatusSeeOther {
		t.Fatalf("POST with CSRF token: %d", r.status)
	}
	if r := h.do(c, http.MethodPost, "/admin/logout", "application/x-www-form-urlencoded", "csrf_token="+session, nil); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if r := h.do(c, http.MethodGet, "/admin/mailbox", "", "", nil); r.status != http.StatusSeeOther {
		t.Fatalf("mailbox after logout: %d", r.status)
	}
}

func TestSetupLinkCreatesFirstAdminOnce(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	c := h.newClient()
	if r := h.do(c, http.MethodGet, "/admin/setup/wrong", "", "", nil); r.status != http.StatusNotFound {
		t.Fatalf("wrong setup token: %d", r.status)
	}
	page := h.do(c, http.MethodGet, "/admin/setup/setup-token-for-tests", "", "", nil)
	tok := csrfFrom(t, page.body)
	v := url.Values{"email": {"boss@example.com"}, "password": {"short"}, "password_confirm": {"short"}, "csrf_token": {tok}}
	if r := h.do(c, http.MethodPost, "/admin/setup/setup-token-for-tests", "application/x-www-form-urlencoded", v.Encode(), nil); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "at least 10") {
		t.Fatalf("short password: %d", r.status)
	}
	v.Set("password", "a long enough password")
	v.Set("password_confirm", "a long enough password")
	if r := h.do(c, http.MethodPost, "/admin/setup/setup-token-for-tests", "application/x-www-form-urlencoded", v.Encode(), nil); r.status != http.StatusSeeOther {
		t.Fatalf("setup: %d", r.status)
	}
	if r := h.do(c, http.MethodGet, "/admin/mailbox", "", "", nil); r.status != http.StatusOK {
		t.Fatalf("logged in after setup: %d", r.status)
	}
	if r := h.do(h.newClient(), http.MethodGet, "/admin/setup/setup-token-for-tests", "", "", nil); r.status != http.StatusGone {
		t.Fatalf("setup link after an admin exists: %d", r.status)
	}
}

func TestSectionsAPI(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		key, _, err := h.acc.CreateAPIKey(context.Background(), "CMS", "*")
		if err != nil {
			t.Fatal(err)
		}
		auth := map[string]string{"Authorization": "Bearer " + key}
		call := func(method, body string, headers map[string]string) response {
			return h.do(nil, method, "/api/v1/sections", "application/json", body, headers)
		}
		if r := call(http.MethodGet, "", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("no key: %d", r.status)
		}
		if r := call(http.MethodGet, "", map[string]string{"Authorization": "Bearer hld_nope"}); r.status != http.StatusUnauthorized {
			t.Fatalf("bad key: %d", r.status)
		}
		r := call(http.MethodPost, `{"slug":"business","name":"Business"}`, auth)
		var created struct {
			ID   int64  `json:"id"`
			Slug string `json:"slug"`
		}
		if r.status != http.StatusCreated || json.Unmarshal([]byte(r.body), &created) != nil || created.ID == 0 || created.Slug != "business" {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		if r := call(http.MethodPost, `{"slug":"business","name":"Again"}`, auth); r.status != http.StatusConflict {
			t.Fatalf("duplicate: %d", r.status)
		}
		if r := call(http.MethodPost, `{"slug":"Bad Slug!","name":""}`, auth); r.status != http.StatusUnprocessableEntity ||
			!strings.Contains(r.body, `"slug"`) || !strings.Contains(r.body, `"name"`) {
			t.Fatalf("invalid: %d %s", r.status, r.body)
		}
		if r := call(http.MethodPost, `{"slug":`, auth); r.status != http.StatusBadRequest {
			t.Fatalf("malformed: %d", r.status)
		}
		list := call(http.MethodGet, "", auth)
		if list.status != http.StatusOK || !strings.Contains(list.body, `"business"`) || !strings.Contains(list.body, `"politics-uk"`) {
			t.Fatalf("list: %d %s", list.status, list.body)
		}
		ro, _, _ := h.acc.CreateAPIKey(context.Background(), "reader", "sections:read")
		if r := call(http.MethodPost, `{"slug":"x","name":"X"}`, map[string]string{"Authorization": "Bearer " + ro}); r.status != http.StatusForbidden {
			t.Fatalf("read-only key writing: %d", r.status)
		}
	})
}
