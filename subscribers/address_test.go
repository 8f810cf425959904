package subscribers

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseAddress(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		in, norm string
		err      error
	}{
		{"Reader@Example.COM", "reader@example.com", nil},
		{"  first.last+news@sub.example.co.uk ", "first.last+news@sub.example.co.uk", nil},
		{"o'brien@example.ie", "o'brien@example.ie", nil},
		{"jörg@bücher.de", "jörg@xn--bcher-kva.de", nil},
		{"user@ÉXAMPLE.fr", "user@xn--xample-9ua.fr", nil},
		{"user@example.com.", "user@example.com", nil},
		{long + "@example.com", long + "@example.com", nil},
		{"", "", ErrAddressEmpty},
		{"   ", "", ErrAddressEmpty},
		{"plainaddress", "", ErrAddressInvalid},
		{"@example.com", "", ErrAddressInvalid},
		{"user@", "", ErrAddressInvalid},
		{"user@localhost", "", ErrAddressInvalid},
		{"user@example", "", ErrAddressInvalid},
		{"user@123.456", "", ErrAddressInvalid},
		{"user@[192.0.2.1]", "", ErrAddressInvalid},
		{"\"quoted\"@example.com", "", ErrAddressInvalid},
		{"a..b@example.com", "", ErrAddressInvalid},
		{".a@example.com", "", ErrAddressInvalid},
		{"a.@example.com", "", ErrAddressInvalid},
		{"user name@example.com", "", ErrAddressInvalid},
		{"user@exa mple.com", "", ErrAddressInvalid},
		{"user@example.com\r\nBcc: victim@example.com", "", ErrAddressInvalid},
		{"user@example.com\n", "user@example.com", nil}, // trailing newline is trimmed whitespace
		{"us\ner@example.com", "", ErrAddressInvalid},
		{"Name <user@example.com>", "", ErrAddressInvalid},
		{"user@-example.com", "", ErrAddressInvalid},
		{"user@example-.com", "", ErrAddressInvalid},
		{"user@exa_mple.com", "", ErrAddressInvalid},
		{long + "a@example.com", "", ErrAddressTooLong},
		{"a@" + strings.Repeat(strings.Repeat("b", 63)+".", 4) + "com", "", ErrAddressTooLong},
		{"\xff@example.com", "", ErrAddressInvalid},
	}
	for _, tt := range tests {
		_, norm, err := ParseAddress(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseAddress(%q) error = %v, want %v", tt.in, err, tt.err)
			continue
		}
		if norm != tt.norm {
			t.Errorf("ParseAddress(%q) norm = %q, want %q", tt.in, norm, tt.norm)
		}
	}
}

// FuzzParseAddress checks the parser's promises on any input: no panic; an
// accepted address has no control characters or spaces, fits RFC 5321's
// limits, and its normal form is stable (normalising it again changes
// nothing).
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"reader@example.com", "jörg@bücher.de", "a@b.c", "x@[1.2.3.4]", "\"q\"@x.y", "a\r\n@b.com", "üñí@例え.テスト"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		typed, norm, err := ParseAddress(in)
		if err != nil {
			return
		}
		if !utf8.ValidString(norm) || len(norm) > maxAddressLen || strings.ContainsAny(norm, " \t\r\n<>\"") {
			t.Fatalf("ParseAddress(%q) accepted a bad normal form %q", in, norm)
		}
		if strings.ContainsAny(typed, "\r\n") {
			t.Fatalf("ParseAddress(%q) kept CR/LF in %q", in, typed)
		}
		if strings.ToLower(norm) != norm {
			t.Fatalf("normal form %q is not lower-case", norm)
		}
		_, again, err := ParseAddress(norm)
		if err != nil || again != norm {
			t.Fatalf("normal form %q of %q does not parse to itself: %q, %v", norm, in, again, err)
		}
	})
}
