package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, vals map[string]string) (*Config, error) {
	t.Helper()
	if _, ok := vals["HERALD_DATA_DIR"]; !ok {
		vals["HERALD_DATA_DIR"] = t.TempDir()
	}
	return Load(func(k string) string { return vals[k] }, "")
}

func TestDefaults(t *testing.T) {
	c, err := load(t, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.BaseURL.String() != "http://localhost:8080" || c.DB != "herald.db" {
		t.Fatalf("defaults: %s %s %s", c.Addr, c.BaseURL, c.DB)
	}
	if !c.DevMailbox() || c.SMTPConnections != 4 || c.SignupLimit != 30 || c.ConfirmTTL != 72*time.Hour {
		t.Fatalf("defaults: %+v", c)
	}
	if !c.SecretGenerated || len(c.Secret) < 32 {
		t.Fatal("a localhost run without HERALD_SECRET should get a generated secret")
	}
}

func TestGeneratedSecretIsKept(t *testing.T) {
	dir := t.TempDir()
	a, err := load(t, map[string]string{"HERALD_DATA_DIR": dir})
	if err != nil {
		t.Fatal(err)
	}
	b, err := load(t, map[string]string{"HERALD_DATA_DIR": dir})
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Secret) != string(b.Secret) {
		t.Fatal("the generated secret changed between starts: old links would break")
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		key, val, want string
	}{
		{"HERALD_ADDR", "8080", "HERALD_ADDR"},
		{"HERALD_BASE_URL", "ftp://x", "HERALD_BASE_URL"},
		{"HERALD_SMTP_URL", "mail.example.com", "HERALD_SMTP_URL"},
		{"HERALD_SMTP_URL", "smtp://mail.example.com?tls=maybe", "tls=\"maybe\""},
		{"HERALD_SMTP_URL", "smtp://mail.example.com:99999", "port"},
		{"HERALD_SMTP_CONNECTIONS", "0", "HERALD_SMTP_CONNECTIONS"},
		{"HERALD_SEND_RATE", "fast", "HERALD_SEND_RATE"},
		{"HERALD_SIGNUP_LIMIT", "-1", "HERALD_SIGNUP_LIMIT"},
		{"HERALD_FROM", "not an address", "HERALD_FROM"},
		{"HERALD_FROM", "a@b.com\r\nBcc: x@y.z", "HERALD_FROM"},
		{"HERALD_ALLOWED_ORIGINS", "example.com", "HERALD_ALLOWED_ORIGINS"},
		{"HERALD_TRUSTED_PROXIES", "10.0.0.0/99", "HERALD_TRUSTED_PROXIES"},
		{"HERALD_SECRET", "short", "at least 32"},
		{"HERALD_CONFIRM_TTL", "3 days", "HERALD_CONFIRM_TTL"},
		{"HERALD_REQUIRE_CONSENT", "perhaps", "HERALD_REQUIRE_CONSENT"},
		{"HERALD_ADMIN_EMAIL", "admin@example.com", "HERALD_ADMIN_PASSWORD"},
	}
	for _, tt := range tests {
		_, err := load(t, map[string]string{tt.key: tt.val})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s=%q: error %v, want one mentioning %q", tt.key, tt.val, err, tt.want)
		}
	}
}

func TestSecretRequiredOffLocalhost(t *testing.T) {
	_, err := load(t, map[string]string{"HERALD_BASE_URL": "https://news.example.com"})
	if err == nil || !strings.Contains(err.Error(), "HERALD_SECRET") {
		t.Fatalf("error = %v, want HERALD_SECRET required", err)
	}
	c, err := load(t, map[string]string{"HERALD_BASE_URL": "https://news.example.com", "HERALD_SECRET": strings.Repeat("s", 32)})
	if err != nil || !c.Secure() || c.IsLocal() {
		t.Fatalf("with a secret: %v", err)
	}
}

func TestSMTPURLs(t *testing.T) {
	c, err := load(t, map[string]string{"HERALD_SMTP_URL": "smtp://u:p%40ss@relay1.example.com:2525?tls=none, smtps://relay2.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SMTP) != 2 {
		t.Fatalf("servers = %d", len(c.SMTP))
	}
	a, b := c.SMTP[0], c.SMTP[1]
	if a.Host != "relay1.example.com" || a.Port != 2525 || a.TLS != "none" || a.Username != "u" || a.Password != "p@ss" {
		t.Fatalf("first relay = %+v", a)
	}
	if b.Port != 465 || b.TLS != "tls" {
		t.Fatalf("second relay = %+v", b)
	}
}

func TestEnvFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, ".env")
	if err := os.WriteFile(file, []byte("HERALD_SIGNUP_LIMIT=7\nHERALD_SITE_NAME=\"From File\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{"HERALD_SITE_NAME": "From Env", "HERALD_DATA_DIR": dir}
	c, err := Load(func(k string) string { return vals[k] }, file)
	if err != nil {
		t.Fatal(err)
	}
	if c.SignupLimit != 7 || c.SiteName != "From Env" {
		t.Fatalf("limit %d, site %q: the environment must win over .env", c.SignupLimit, c.SiteName)
	}
}
