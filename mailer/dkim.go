package mailer

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"herald/config"
)

// dkimHeaders are the header fields the DKIM signature covers, in the
// order they go into h=, when the message has them. go-mail's own signer
// is not used: v0.8.1 folds a long h= list in the middle of a header name,
// which breaks verification; go-msgauth keeps h= on one line.
var dkimHeaders = []string{
	"from", "to", "subject", "date", "message-id",
	"list-unsubscribe", "list-unsubscribe-post", "list-id", "feedback-id", "auto-submitted",
	"mime-version", "content-type",
}

// SignDKIM returns raw, a rendered message with CRLF line endings, with a
// DKIM-Signature header field (relaxed/relaxed, SHA-256) prepended. The
// signature covers those of dkimHeaders the message has, List-Unsubscribe
// and List-Unsubscribe-Post among them. A nil k returns raw as it is.
func SignDKIM(raw []byte, k *config.DKIMConfig) ([]byte, error) {
	if k == nil {
		return raw, nil
	}
	present := headerNames(raw)
	var keys []string
	for _, h := range dkimHeaders {
		if present[h] {
			keys = append(keys, h)
		}
	}
	var out bytes.Buffer
	out.Grow(len(raw) + 600)
	err := dkim.Sign(&out, bytes.NewReader(raw), &dkim.SignOptions{
		Domain: k.Domain, Selector: k.Selector, Signer: k.Signer,
		HeaderKeys:             keys,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
	})
	if err != nil {
		return nil, fmt.Errorf("mailer: DKIM signing: %w", err)
	}
	return out.Bytes(), nil
}

// headerNames returns the lower-case names of the header fields in raw's
// header section.
func headerNames(raw []byte) map[string]bool {
	names := map[string]bool{}
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // the end of the header section
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // a folded continuation
		}
		if name, _, ok := bytes.Cut(line, []byte(":")); ok {
			names[strings.ToLower(string(bytes.TrimSpace(name)))] = true
		}
	}
	return names
}
