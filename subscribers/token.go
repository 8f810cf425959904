package subscribers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Purpose says what a token may be used for; a token for one purpose is
// refused for any other.
type Purpose byte

// Token purposes.
const (
	PurposeConfirm     Purpose = 1
	PurposeUnsubscribe Purpose = 2
	PurposePreferences Purpose = 3
)

// Token errors.
var (
	ErrTokenInvalid = errors.New("this link is not valid")
	ErrTokenExpired = errors.New("this link has expired")
)

const macLen = 16

// Tokens signs and verifies the tokens in emailed links: HMAC-SHA256 over
// (purpose, subscriber id, expiry). Old secrets still verify, so links keep
// working across a rotation; new tokens use the first secret.
type Tokens struct {
	secrets [][]byte
}

// NewTokens returns a Tokens signing with secret and also accepting old.
func NewTokens(secret []byte, old ...[]byte) *Tokens {
	return &Tokens{secrets: append([][]byte{secret}, old...)}
}

// Make returns a token; a zero expires means it never expires.
func (t *Tokens) Make(p Purpose, subscriberID int64, expires time.Time) string {
	var exp int64
	if !expires.IsZero() {
		exp = expires.Unix()
	}
	buf := make([]byte, 0, 1+2*binary.MaxVarintLen64+macLen)
	buf = append(buf, byte(p))
	buf = binary.AppendUvarint(buf, uint64(subscriberID))
	buf = binary.AppendVarint(buf, exp)
	buf = append(buf, mac(t.secrets[0], buf)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Verify checks a token for purpose p and returns its subscriber id and
// expiry. An authentic but expired token returns the id, the expiry and
// ErrTokenExpired, so the caller can offer a fresh link.
func (t *Tokens) Verify(p Purpose, token string, now time.Time) (int64, time.Time, error) {
	if len(token) > 64 || !urlSafe(token) {
		return 0, time.Time{}, ErrTokenInvalid
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < 1+2+macLen {
		return 0, time.Time{}, ErrTokenInvalid
	}
	body, sig := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	ok := false
	for _, s := range t.secrets {
		if hmac.Equal(sig, mac(s, body)) {
			ok = true
		}
	}
	if !ok || Purpose(body[0]) != p {
		return 0, time.Time{}, ErrTokenInvalid
	}
	id, n := binary.Uvarint(body[1:])
	if n <= 0 || id == 0 || id > 1<<62 {
		return 0, time.Time{}, ErrTokenInvalid
	}
	exp, m := binary.Varint(body[1+n:])
	if m <= 0 || 1+n+m != len(body) {
		return 0, time.Time{}, ErrTokenInvalid
	}
	var expires time.Time
	if exp != 0 {
		expires = time.Unix(exp, 0).UTC()
		if !now.Before(expires) {
			return int64(id), expires, ErrTokenExpired
		}
	}
	return int64(id), expires, nil
}

// urlSafe reports whether s uses only the base64url alphabet. The decoder
// alone would skip CR and LF, so one token could be written several ways.
func urlSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func mac(secret, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("herald-token-v1"))
	h.Write(body)
	return h.Sum(nil)[:macLen]
}

// ReaderLinks returns the function that makes a reader's unsubscribe and
// preference-centre links under baseURL, as every email carries them. The
// links do not expire.
func (t *Tokens) ReaderLinks(baseURL string) func(subscriberID int64) (unsubscribe, preferences string) {
	return func(id int64) (string, string) {
		return baseURL + "/unsubscribe/" + t.Make(PurposeUnsubscribe, id, time.Time{}),
			baseURL + "/preferences/" + t.Make(PurposePreferences, id, time.Time{})
	}
}
