package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
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

// writeKey writes key as a PEM file in a temporary folder and returns its path.
func writeKey(t *testing.T, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func dkimVals(file string) map[string]string {
	return map[string]string{
		"HERALD_DKIM_DOMAIN": "News.Example.com", "HERALD_DKIM_SELECTOR": "herald2026", "HERALD_DKIM_KEY_FILE": file,
	}
}

func TestDKIMKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
		want crypto.PublicKey
	}{
		{"RSA PKCS#1", writeKey(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey.Public()},
		{"RSA PKCS#8", writeKey(t, "PRIVATE KEY", pkcs8(t, rsaKey)), rsaKey.Public()},
		{"Ed25519 PKCS#8", writeKey(t, "PRIVATE KEY", pkcs8(t, edKey)), edKey.Public()},
	}
	for _, tt := range tests {
		c, err := load(t, dkimVals(tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if c.DKIM == nil || c.DKIM.Domain != "news.example.com" || c.DKIM.Selector != "herald2026" || c.DKIM.KeyFile != tt.file {
			t.Errorf("%s: DKIM = %+v", tt.name, c.DKIM)
			continue
		}
		if pub, ok := c.DKIM.Signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(tt.want) {
			t.Errorf("%s: the parsed key is not the one written", tt.name)
		}
	}

	c, err := load(t, map[string]string{})
	if err != nil || c.DKIM != nil {
		t.Fatalf("no DKIM variables: DKIM = %+v, %v; want nil", c.DKIM, err)
	}
}

func TestDKIMBadValues(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := writeKey(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := writeKey(t, "PRIVATE KEY", []byte("not DER"))
	cert := writeKey(t, "CERTIFICATE", []byte("x"))

	with := func(k, v string) map[string]string {
		vals := dkimVals(good)
		if v == "" {
			delete(vals, k)
		} else {
			vals[k] = v
		}
		return vals
	}
	tests := []struct {
		name string
		vals map[string]string
		want []string
	}{
		{"no domain", with("HERALD_DKIM_DOMAIN", ""), []string{"HERALD_DKIM_DOMAIN:", "set all three", "HERALD_DKIM_SELECTOR and HERALD_DKIM_KEY_FILE are"}},
		{"no selector", with("HERALD_DKIM_SELECTOR", ""), []string{"HERALD_DKIM_SELECTOR:"}},
		{"no key file", with("HERALD_DKIM_KEY_FILE", ""), []string{"HERALD_DKIM_KEY_FILE:"}},
		{"only a key file", map[string]string{"HERALD_DKIM_KEY_FILE": good}, []string{"HERALD_DKIM_DOMAIN:", "HERALD_DKIM_SELECTOR"}},
		{"missing file", with("HERALD_DKIM_KEY_FILE", filepath.Join(t.TempDir(), "nope.pem")), []string{"HERALD_DKIM_KEY_FILE:", "cannot read"}},
		{"not PEM", with("HERALD_DKIM_KEY_FILE", garbage), []string{"HERALD_DKIM_KEY_FILE:", "no PEM private key"}},
		{"bad DER", with("HERALD_DKIM_KEY_FILE", broken), []string{"HERALD_DKIM_KEY_FILE:", "does not parse"}},
		{"certificate", with("HERALD_DKIM_KEY_FILE", cert), []string{"HERALD_DKIM_KEY_FILE:", "no PEM private key"}},
		{"ECDSA SEC 1", with("HERALD_DKIM_KEY_FILE", writeKey(t, "EC PRIVATE KEY", ecDER)), []string{"HERALD_DKIM_KEY_FILE:", "RSA or Ed25519"}},
		{"ECDSA PKCS#8", with("HERALD_DKIM_KEY_FILE", writeKey(t, "PRIVATE KEY", pkcs8(t, ecKey))), []string{"HERALD_DKIM_KEY_FILE:", "ECDSA"}},
		{"bad domain", with("HERALD_DKIM_DOMAIN", "example.com; x=y"), []string{"HERALD_DKIM_DOMAIN:"}},
		{"bare domain", with("HERALD_DKIM_DOMAIN", "localhost"), []string{"HERALD_DKIM_DOMAIN:"}},
		{"bad selector", with("HERALD_DKIM_SELECTOR", "my selector"), []string{"HERALD_DKIM_SELECTOR:"}},
	}
	for _, tt := range tests {
		c, err := load(t, tt.vals)
		if err == nil {
			t.Errorf("%s: loaded (DKIM %+v), want an error", tt.name, c.DKIM)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != 1 {
			t.Errorf("%s: %d error lines, want one:\n%v", tt.name, len(lines), err)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q, want it to mention %q", tt.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "BEGIN") && strings.Contains(err.Error(), "MII") {
			t.Errorf("%s: the error shows key material: %v", tt.name, err)
		}
	}
}
