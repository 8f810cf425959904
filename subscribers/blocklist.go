package subscribers

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// builtinDisposable is a short list of the throwaway-mail domains seen most
// on signup forms; HERALD_DISPOSABLE_DOMAINS_FILE adds more.
var builtinDisposable = []string{
	"mailinator.com", "guerrillamail.com", "guerrillamail.net", "sharklasers.com", "10minutemail.com",
	"tempmail.com", "temp-mail.org", "yopmail.com", "yopmail.fr", "trashmail.com", "getnada.com",
	"dispostable.com", "maildrop.cc", "throwawaymail.com", "fakeinbox.com", "mintemail.com",
	"mohmal.com", "tempail.com", "emailondeck.com", "mailnesia.com", "spamgourmet.com",
	"discard.email", "getairmail.com", "tempr.email", "33mail.com", "burnermail.io",
}

// Blocklist is a set of refused domains (disposable-address providers).
type Blocklist struct {
	domains map[string]bool
}

// NewBlocklist returns the built-in list plus the domains in file (one per
// line, # comments), if file is not empty.
func NewBlocklist(file string) (*Blocklist, error) {
	b := &Blocklist{domains: map[string]bool{}}
	for _, d := range builtinDisposable {
		b.domains[d] = true
	}
	if file == "" {
		return b, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("disposable domains: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line != "" {
			b.domains[strings.ToLower(strings.TrimSuffix(line, "."))] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("disposable domains: %w", err)
	}
	return b, nil
}

// Blocked reports whether the domain, or a domain it is under, is listed.
func (b *Blocklist) Blocked(domain string) bool {
	for d := domain; d != ""; {
		if b.domains[d] {
			return true
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			break
		}
		d = d[i+1:]
	}
	return false
}
