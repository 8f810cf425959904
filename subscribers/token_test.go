package subscribers

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tk := NewTokens([]byte(strings.Repeat("k", 32)))
	tok := tk.Make(PurposeConfirm, 42, now.Add(72*time.Hour))

	id, _, err := tk.Verify(PurposeConfirm, tok, now.Add(71*time.Hour))
	if err != nil || id != 42 {
		t.Fatalf("fresh token: id %d, err %v", id, err)
	}
	if id, _, err := tk.Verify(PurposeConfirm, tok, now.Add(72*time.Hour)); !errors.Is(err, ErrTokenExpired) || id != 42 {
		t.Fatalf("expired token: id %d, err %v; want 42 and ErrTokenExpired", id, err)
	}
	if _, _, err := tk.Verify(PurposeUnsubscribe, tok, now); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("token used for another purpose: %v", err)
	}
	// Flip each character in turn: every tampered token is refused.
	for i := range tok {
		b := []byte(tok)
		b[i] = map[bool]byte{true: 'A', false: 'B'}[b[i] != 'A']
		if _, _, err := tk.Verify(PurposeConfirm, string(b), now); err == nil {
			t.Fatalf("tampered token %q (position %d) verified", b, i)
		}
	}
	other := NewTokens([]byte(strings.Repeat("o", 32)))
	if _, _, err := other.Verify(PurposeConfirm, tok, now); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("token verified under another secret: %v", err)
	}
	// After a rotation the old secret still verifies old links.
	rotated := NewTokens([]byte(strings.Repeat("n", 32)), []byte(strings.Repeat("k", 32)))
	if id, _, err := rotated.Verify(PurposeConfirm, tok, now); err != nil || id != 42 {
		t.Fatalf("old link after rotation: %d, %v", id, err)
	}
	forever := tk.Make(PurposeUnsubscribe, 7, time.Time{})
	if id, exp, err := tk.Verify(PurposeUnsubscribe, forever, now.Add(10*365*24*time.Hour)); err != nil || id != 7 || !exp.IsZero() {
		t.Fatalf("unsubscribe token years later: %d %v %v", id, exp, err)
	}
}

func TestTimeTrap(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tk := NewTokens([]byte(strings.Repeat("k", 32)))
	tok := tk.TimeToken(now)
	if !tk.TooFast(tok, now.Add(500*time.Millisecond), 2*time.Second) {
		t.Fatal("a form sent after 0.5 s is not too fast")
	}
	if tk.TooFast(tok, now.Add(3*time.Second), 2*time.Second) {
		t.Fatal("a form sent after 3 s is too fast")
	}
	if tk.TooFast("", now, 2*time.Second) || tk.TooFast("garbage", now, 2*time.Second) {
		t.Fatal("a form without a valid time token must not be refused")
	}
	forged := strings.Split(tok, ".")[0] + ".AAAAAAAAAAAAAAAA"
	if tk.TooFast(forged, now, 2*time.Second) {
		t.Fatal("a forged token counted")
	}
}

// FuzzVerifyToken checks that no input panics and that nothing verifies
// but a token made with the secret.
func FuzzVerifyToken(f *testing.F) {
	tk := NewTokens([]byte(strings.Repeat("k", 32)))
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f.Add(tk.Make(PurposeConfirm, 1, now.Add(time.Hour)))
	f.Add(tk.Make(PurposeUnsubscribe, 1<<40, time.Time{}))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		for _, p := range []Purpose{PurposeConfirm, PurposeUnsubscribe, PurposePreferences} {
			id, exp, err := tk.Verify(p, tok, now)
			if err != nil {
				continue
			}
			// Whatever verified must be exactly what Make produces.
			if tk.Make(p, id, exp) != tok {
				t.Fatalf("token %q verified (id %d, exp %v) but is not canonical", tok, id, exp)
			}
		}
	})
}
