package handlers_test

import (
	"context"
	"html"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"herald/mailer/smtptest"
	"herald/models/testdb"
)

var akNewKey = regexp.MustCompile(`id="new-key" value="(hld_[^"]+)"`)

func TestAdminKeysCreateUseRevoke(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		c, csrf := h.adminClient("admin")
		page := h.do(c, http.MethodGet, "/admin/keys", "", "", nil)
		for _, scope := range []string{"*", "sections:read", "sections:write", "stories:read", "stories:write",
			"feeds:read", "feeds:write", "digests:read", "digests:write"} {
			if !strings.Contains(page.body, `name="scopes" value="`+scope+`"`) {
				t.Errorf("no checkbox for scope %s", scope)
			}
		}

		// Bad input: field messages, typed values kept.
		r := h.adminPost(c, csrf, "/admin/keys", url.Values{"name": {""}, "scopes": {"bogus"}})
		acWant(t, r, http.StatusUnprocessableEntity, `id="name-error"`, `id="scopes-error"`)
		r = h.adminPost(c, csrf, "/admin/keys", url.Values{"name": {"CMS"}})
		acWant(t, r, http.StatusUnprocessableEntity, `id="scopes-error"`, `value="CMS"`)

		r = h.adminPost(c, csrf, "/admin/keys", url.Values{"name": {"CMS publisher"}, "scopes": {"sections:read", "stories:write"}})
		acWant(t, r, http.StatusOK, "CMS publisher", `data-copy="#new-key"`)
		m := akNewKey.FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("no key on the result page: %.600s", r.body)
		}
		key := m[1]
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q", cc)
		}
		for _, ck := range c.Jar.Cookies(h.cfg.BaseURL) {
			if strings.Contains(ck.Value, key) || strings.Contains(ck.Value, url.QueryEscape(key)) {
				t.Errorf("cookie %s carries the key", ck.Name)
			}
		}
		// Shown once: the list has the prefix only.
		list := h.do(c, http.MethodGet, "/admin/keys", "", "", nil)
		if strings.Contains(list.body, key) || !strings.Contains(list.body, key[:10]) {
			t.Errorf("list shows the key or lacks its prefix")
		}
		keys, _ := h.store.APIKeys(context.Background())
		if len(keys) != 1 || keys[0].Scopes != "sections:read stories:write" || keys[0].Hash == key {
			t.Fatalf("stored %+v", keys)
		}
		if got := h.acAudit("key.create"); len(got) != 1 || strings.Contains(got[0].Detail, key) {
			t.Errorf("audit key.create = %+v", got)
		}

		bearer := map[string]string{"Authorization": "Bearer " + key}
		if r := h.do(nil, http.MethodGet, "/api/v1/sections", "", "", bearer); r.status != http.StatusOK || !strings.Contains(r.body, "politics-uk") {
			t.Fatalf("GET /api/v1/sections with the key: %d %s", r.status, r.body)
		}
		if r := h.do(nil, http.MethodGet, "/api/v1/feeds", "", "", bearer); r.status != http.StatusForbidden {
			t.Errorf("a scope the key lacks: %d", r.status)
		}

		// "*" alone is kept, whatever else is ticked.
		r = h.adminPost(c, csrf, "/admin/keys", url.Values{"name": {"Ops"}, "scopes": {"*", "feeds:read"}})
		acWant(t, r, http.StatusOK)
		keys, _ = h.store.APIKeys(context.Background())
		if keys[0].Scopes != "*" {
			t.Errorf("scopes = %q, want *", keys[0].Scopes)
		}

		id := strconv.FormatInt(keys[1].ID, 10)
		r = h.adminPost(c, csrf, "/admin/keys/"+id+"/revoke", nil)
		if r.status != http.StatusSeeOther {
			t.Fatalf("revoke: %d %.300s", r.status, r.body)
		}
		if r := h.do(nil, http.MethodGet, "/api/v1/sections", "", "", bearer); r.status != http.StatusUnauthorized {
			t.Errorf("revoked key: %d, want 401", r.status)
		}
		if len(h.acAudit("key.revoke")) != 1 {
			t.Error("key.revoke not audited")
		}
		acWant(t, h.do(c, http.MethodGet, "/admin/keys", "", "", nil), http.StatusOK, "s-revoked")
		for _, p := range []string{"/admin/keys/" + id + "/revoke", "/admin/keys/x/revoke", "/admin/keys/99999/revoke"} {
			if r := h.adminPost(c, csrf, p, nil); r.status != http.StatusNotFound {
				t.Errorf("POST %s: %d, want 404", p, r.status)
			}
		}
	})
}

func TestAdminKeysEditorForbidden(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	c, csrf := h.adminClient("editor")
	for _, p := range []string{"/admin/keys", "/admin/settings"} {
		if r := h.do(c, http.MethodGet, p, "", "", nil); r.status != http.StatusForbidden {
			t.Errorf("editor GET %s: %d, want 403", p, r.status)
		}
	}
	for _, p := range []string{"/admin/keys", "/admin/settings/smtp-test"} {
		if r := h.adminPost(c, csrf, p, url.Values{"name": {"x"}, "scopes": {"*"}}); r.status != http.StatusForbidden {
			t.Errorf("editor POST %s: %d, want 403", p, r.status)
		}
	}
	if keys, _ := h.store.APIKeys(context.Background()); len(keys) != 0 {
		t.Error("an editor created a key")
	}
	// Editors do have the content pages.
	for _, p := range []string{"/admin/stories", "/admin/sections", "/admin/feeds", "/admin/embed"} {
		if r := h.do(c, http.MethodGet, p, "", "", nil); r.status != http.StatusOK {
			t.Errorf("editor GET %s: %d", p, r.status)
		}
	}
}

func TestAdminKeysSettingsHideSecretsAndTestSMTP(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		const smtpPass, secret = "smtp-pass-Zq81xx", "herald-secret-0123456789abcdef0123456789"
		srv := smtptest.NewWith(t, smtptest.Options{Username: "mailer", Password: smtpPass})
		env := map[string]string{
			"HERALD_SMTP_URL":       "smtp://mailer:" + smtpPass + "@" + srv.Addr() + "?tls=none",
			"HERALD_SECRET":         secret,
			"HERALD_OLD_SECRETS":    "old-secret-9876543210zyxwvu",
			"HERALD_ADMIN_EMAIL":    "boss@example.com",
			"HERALD_ADMIN_PASSWORD": "admin-pass-Kk2299",
			"HERALD_TIMEZONE":       "Europe/London",
		}
		h := newHarness(t, dsn, env)
		c, csrf := h.adminClient("admin")
		page := h.do(c, http.MethodGet, "/admin/settings", "", "", nil)
		acWant(t, page, http.StatusOK, srv.Addr(), "mailer", "Europe/London", "07:00", "Test SMTP connection", "set (hidden)")
		for _, s := range []string{smtpPass, secret, "old-secret-9876543210zyxwvu", "admin-pass-Kk2299"} {
			if strings.Contains(page.body, s) {
				t.Errorf("settings page shows the secret %q", s)
			}
		}
		if strings.HasPrefix(dsn, "postgres") {
			if u, err := url.Parse(dsn); err == nil {
				if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(page.body, pw) {
					t.Error("settings page shows the database password")
				}
			}
		}

		r := h.adminPost(c, csrf, "/admin/settings/smtp-test", nil)
		acWant(t, r, http.StatusOK, "OK: Herald connected")
		if strings.Contains(r.body, smtpPass) {
			t.Error("the test result shows the SMTP password")
		}
		if len(srv.Messages()) != 0 {
			t.Error("the SMTP test sent a message")
		}
		if got := h.acAudit("settings.smtp-test"); len(got) != 1 || got[0].Detail != "ok" {
			t.Errorf("audit = %+v", got)
		}
		// GET never runs the test.
		before := srv.Connections()
		h.do(c, http.MethodGet, "/admin/settings", "", "", nil)
		if srv.Connections() != before {
			t.Error("GET /admin/settings dialled SMTP")
		}
	})
}

func TestAdminKeysSMTPTestClosedPortAndDevMailbox(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), map[string]string{
		"HERALD_SMTP_URL": "smtp://" + addr + "?tls=none", "HERALD_SECRET": strings.Repeat("k", 32)})
	c, csrf := h.adminClient("admin")
	r := h.adminPost(c, csrf, "/admin/settings/smtp-test", nil)
	acWant(t, r, http.StatusOK, "The SMTP test failed", addr)
	if !strings.Contains(html.UnescapeString(r.body), "refused") {
		t.Errorf("no connection refused in %.1000s", r.body)
	}
	if got := h.acAudit("settings.smtp-test"); len(got) != 1 || !strings.Contains(got[0].Detail, addr) {
		t.Errorf("audit = %+v", got)
	}

	// No SMTP server: the dev mailbox is in use, and the page says so.
	dev := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	dc, dcsrf := dev.adminClient("admin")
	acWant(t, dev.do(dc, http.MethodGet, "/admin/settings", "", "", nil), http.StatusOK, "dev mailbox")
	r = dev.adminPost(dc, dcsrf, "/admin/settings/smtp-test", nil)
	acWant(t, r, http.StatusOK, "dev mailbox")
	if strings.Contains(r.body, "Test SMTP connection") {
		t.Error("the dev mailbox offers an SMTP test")
	}
}
