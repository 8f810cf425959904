package subscribers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// TimeToken returns a signed record of when a form was shown. Forms that
// Herald renders (and widget.js) carry it in the hidden field "t"; a
// submission that comes back sooner than a person could type is a bot's.
func (t *Tokens) TimeToken(now time.Time) string {
	ts := strconv.FormatInt(now.UnixMilli(), 36)
	return ts + "." + t.timeMAC(t.secrets[0], ts)
}

// TooFast reports whether a form carrying token was submitted less than min
// after it was shown. A missing or unreadable token is not "too fast": a
// plain HTML snippet copied into a site has no timing field and must work.
func (t *Tokens) TooFast(token string, now time.Time, min time.Duration) bool {
	ts, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 64 {
		return false
	}
	valid := false
	for _, s := range t.secrets {
		if hmac.Equal([]byte(sig), []byte(t.timeMAC(s, ts))) {
			valid = true
		}
	}
	if !valid {
		return false
	}
	ms, err := strconv.ParseInt(ts, 36, 64)
	if err != nil {
		return false
	}
	return now.Sub(time.UnixMilli(ms)) < min
}

func (t *Tokens) timeMAC(secret []byte, ts string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("herald-time-v1"))
	h.Write([]byte(ts))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}
