package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// SMTPServer is one relay parsed from HERALD_SMTP_URL.
type SMTPServer struct {
	Host     string
	Port     int
	Username string
	Password string
	// TLS is none, starttls or tls.
	TLS string
}

// DKIMConfig is the DKIM signing key from HERALD_DKIM_DOMAIN,
// HERALD_DKIM_SELECTOR and HERALD_DKIM_KEY_FILE. The public key is published
// as a TXT record at Selector._domainkey.Domain.
type DKIMConfig struct {
	// Domain is the signing domain (the d= tag).
	Domain string
	// Selector names the key under Domain (the s= tag).
	Selector string
	// KeyFile is the PEM file the key was read from.
	KeyFile string
	// Signer is the private key: *rsa.PrivateKey or ed25519.PrivateKey.
	Signer crypto.Signer
}

// Addr returns host:port.
func (s SMTPServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

func (p *parser) smtp(key string) []SMTPServer {
	var out []SMTPServer
	for _, raw := range p.list(key) {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			p.fail(key, "%q is not like smtp://user:pass@host:587?tls=starttls", redact(raw))
			continue
		}
		s := SMTPServer{Host: u.Hostname(), TLS: u.Query().Get("tls")}
		if s.TLS == "" {
			s.TLS = "starttls"
			if u.Scheme == "smtps" {
				s.TLS = "tls"
			}
		}
		if s.TLS != "none" && s.TLS != "starttls" && s.TLS != "tls" {
			p.fail(key, "tls=%q must be none, starttls or tls", s.TLS)
			continue
		}
		switch port := u.Port(); {
		case port != "":
			n, err := strconv.Atoi(port)
			if err != nil || n < 1 || n > 65535 {
				p.fail(key, "port %q is not a port number", port)
				continue
			}
			s.Port = n
		case s.TLS == "tls":
			s.Port = 465
		default:
			s.Port = 587
		}
		if u.User != nil {
			s.Username = u.User.Username()
			s.Password, _ = u.User.Password()
		}
		out = append(out, s)
	}
	return out
}

// dkim reads the DKIM variables: all three or none.
func (p *parser) dkim() *DKIMConfig {
	keys := []string{"HERALD_DKIM_DOMAIN", "HERALD_DKIM_SELECTOR", "HERALD_DKIM_KEY_FILE"}
	var set, missing []string
	for _, k := range keys {
		if p.str(k, "") == "" {
			missing = append(missing, k)
		} else {
			set = append(set, k)
		}
	}
	switch len(missing) {
	case len(keys):
		return nil
	case 0:
	default:
		verb := "is"
		if len(set) > 1 {
			verb = "are"
		}
		p.fail(missing[0], "not set, but %s %s; set all three of %s, or none (missing: %s)",
			strings.Join(set, " and "), verb, strings.Join(keys, ", "), strings.Join(missing, ", "))
		return nil
	}
	d := &DKIMConfig{
		Domain:   strings.TrimSuffix(strings.ToLower(p.str(keys[0], "")), "."),
		Selector: strings.ToLower(p.str(keys[1], "")),
		KeyFile:  p.str(keys[2], ""),
	}
	ok := true
	if !dnsName(d.Domain) || !strings.Contains(d.Domain, ".") {
		p.fail(keys[0], "%q is not a domain name like example.com", d.Domain)
		ok = false
	}
	if !dnsName(d.Selector) {
		p.fail(keys[1], "%q is not a selector like herald or mail2026 (letters, digits, hyphens, dots)", d.Selector)
		ok = false
	}
	signer, err := readDKIMKey(d.KeyFile)
	if err != nil {
		p.fail(keys[2], "%q: %v", d.KeyFile, err)
		ok = false
	}
	if !ok {
		return nil
	}
	d.Signer = signer
	return d
}

// dnsName reports whether s is dot-separated labels of letters, digits,
// hyphens and underscores, as a DKIM domain or selector must be.
func dnsName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// readDKIMKey reads a PEM private key for DKIM: RSA (PKCS#1 or PKCS#8, at
// least 1024 bits) or Ed25519 (PKCS#8).
func readDKIMKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read the key file: %w", err)
	}
	var block *pem.Block
	for rest := data; ; {
		block, rest = pem.Decode(rest)
		if block == nil || strings.HasSuffix(block.Type, "PRIVATE KEY") {
			break
		}
	}
	if block == nil {
		return nil, errors.New("no PEM private key in the file (want -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)")
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("the key is encrypted; give an unencrypted key file")
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("a %s is not supported; DKIM keys are RSA or Ed25519 (PKCS#1 or PKCS#8 PEM)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("the key does not parse: %v", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("an RSA key of %d bits is too short for DKIM (use 2048)", k.N.BitLen())
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return nil, errors.New("an ECDSA key is not supported; DKIM keys are RSA or Ed25519")
	default:
		return nil, fmt.Errorf("a %T key is not supported; DKIM keys are RSA or Ed25519", key)
	}
}

func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	return raw
}
