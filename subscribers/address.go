// Package subscribers holds the reader's side of Herald: signup with double
// opt-in, confirmation, unsubscribe, preferences, erasure, the consent
// ledger's events, suppression and abuse limits, and the tokens in links.
package subscribers

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Address length limits from RFC 5321 §4.5.3.1 (a path is at most 256
// octets including the angle brackets, so an address is at most 254).
const (
	maxLocalLen   = 64
	maxDomainLen  = 253
	maxAddressLen = 254
)

// Address errors, worded for the reader.
var (
	ErrAddressEmpty   = errors.New("Enter your email address.")
	ErrAddressInvalid = errors.New("Enter a valid email address, like name@example.com.")
	ErrAddressTooLong = errors.New("That email address is too long.")
)

var idnaProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false), idna.StrictDomainName(true), idna.VerifyDNSLength(true))

// ParseAddress checks an address a reader typed and returns it as typed
// (trimmed) and its normalised form: lower-cased, with the domain in its
// ASCII (punycode) form. Quoted local parts, IP-literal domains, comments
// and display names are refused: no reader types them, and they are how
// header injection and other tricks arrive.
func ParseAddress(s string) (typed, norm string, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", ErrAddressEmpty
	}
	if !utf8.ValidString(s) {
		return "", "", ErrAddressInvalid
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || unicode.IsSpace(r) || (r >= 0x80 && !unicode.IsPrint(r)) {
			return "", "", ErrAddressInvalid
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", "", ErrAddressInvalid
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > maxLocalLen {
		return "", "", ErrAddressTooLong
	}
	if !validLocal(local) {
		return "", "", ErrAddressInvalid
	}
	ascii, err := idnaProfile.ToASCII(strings.TrimSuffix(domain, "."))
	if err != nil || ascii == "" {
		if len(domain) > maxDomainLen {
			return "", "", ErrAddressTooLong
		}
		return "", "", ErrAddressInvalid
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > maxDomainLen {
		return "", "", ErrAddressTooLong
	}
	if !validDomain(ascii) {
		return "", "", ErrAddressInvalid
	}
	norm = strings.ToLower(local) + "@" + ascii
	if len(norm) > maxAddressLen {
		return "", "", ErrAddressTooLong
	}
	return s, norm, nil
}

// validLocal accepts a dot-atom (RFC 5322 atext separated by single dots),
// with UTF-8 letters allowed as RFC 6531 does.
func validLocal(local string) bool {
	if local == "" || local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for _, r := range local {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.':
		case strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r):
		case r >= 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)):
		default:
			return false
		}
	}
	return true
}

// validDomain requires at least two labels of letters, digits and inner
// hyphens, and a top-level label that is not all digits.
func validDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	return strings.Trim(tld, "0123456789") != ""
}

// DomainOf returns the domain part of a normalised address.
func DomainOf(norm string) string {
	return norm[strings.LastIndexByte(norm, '@')+1:]
}
