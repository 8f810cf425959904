package mailer

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// ErrInvalidMessage wraps every reason Build refuses a message; such a
// message can never be sent, so callers treat it as permanent.
var ErrInvalidMessage = errors.New("mailer: invalid message")

// reservedHeaders are the headers Build sets itself; Message.Headers may not
// repeat them, so that a caller cannot send a second From or a forged
// List-Unsubscribe.
var reservedHeaders = map[string]bool{
	"message-id": true, "date": true, "from": true, "to": true, "cc": true, "bcc": true,
	"subject": true, "mime-version": true, "content-type": true, "content-transfer-encoding": true,
	"auto-submitted": true, "list-unsubscribe": true, "list-unsubscribe-post": true,
	"list-id": true, "feedback-id": true, "sender": true, "reply-to": true,
}

// Build turns m into a go-mail message: multipart/alternative (text/plain
// first, then text/html, both UTF-8 quoted-printable) with the list headers
// of RFC 2369 and RFC 8058. It refuses any header value holding CR or LF and
// any From or To that does not parse, so header injection cannot happen
// here whatever the caller passes.
func Build(m *Message) (*gomail.Msg, error) {
	if _, _, err := validate(m); err != nil {
		return nil, err
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithEncoding(gomail.EncodingQP))
	if err := msg.From(m.From); err != nil {
		return nil, fmt.Errorf("%w: From %q: %v", ErrInvalidMessage, m.From, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("%w: To %q: %v", ErrInvalidMessage, m.To, err)
	}
	msg.SetMessageIDWithValue(m.MessageID)
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	msg.SetDateWithValue(date)
	msg.Subject(m.Subject)
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	if m.ListUnsubscribe != "" {
		// Preformatted: the URL was checked by validate, and go-mail's own
		// one-click setter refuses http, which the dev setup on
		// http://localhost needs.
		msg.SetGenHeaderPreformatted(gomail.HeaderListUnsubscribe, "<"+m.ListUnsubscribe+">")
		msg.SetGenHeaderPreformatted(gomail.HeaderListUnsubscribePost, "List-Unsubscribe=One-Click")
	}
	if m.ListID != "" {
		msg.SetGenHeader("List-Id", m.ListID)
	}
	if m.FeedbackID != "" {
		msg.SetGenHeader("Feedback-ID", m.FeedbackID)
	}
	for _, h := range m.Headers {
		msg.SetGenHeader(gomail.Header(h[0]), h[1])
	}
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	case m.HTML != "":
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	default:
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	}
	return msg, nil
}

// Render returns m as raw RFC 5322 bytes, as it would go over SMTP.
func Render(m *Message) ([]byte, error) {
	msg, err := Build(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("mailer: render: %w", err)
	}
	return buf.Bytes(), nil
}

// validate checks m and returns its parsed From and To.
func validate(m *Message) (from, to *mail.Address, err error) {
	if m == nil {
		return nil, nil, fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	fields := [][2]string{
		{"Message-ID", m.MessageID}, {"From", m.From}, {"To", m.To}, {"Subject", m.Subject},
		{"List-Unsubscribe", m.ListUnsubscribe}, {"List-Id", m.ListID}, {"Feedback-ID", m.FeedbackID},
	}
	fields = append(fields, m.Headers...)
	for _, f := range fields {
		if strings.ContainsAny(f[1], "\r\n") {
			return nil, nil, fmt.Errorf("%w: %s contains CR or LF", ErrInvalidMessage, f[0])
		}
	}
	if m.MessageID == "" || strings.ContainsAny(m.MessageID, "<> \t") || !strings.Contains(m.MessageID, "@") {
		return nil, nil, fmt.Errorf("%w: Message-ID %q is not like id@domain", ErrInvalidMessage, m.MessageID)
	}
	if m.ListUnsubscribe != "" && !validUnsubscribeURL(m.ListUnsubscribe) {
		return nil, nil, fmt.Errorf("%w: List-Unsubscribe %q is not an http(s) URL", ErrInvalidMessage, m.ListUnsubscribe)
	}
	from, err = mail.ParseAddress(m.From)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: From %q: %v", ErrInvalidMessage, m.From, err)
	}
	// To is a single bare address: a display name would be text a visitor
	// typed, and a list would send one delivery to several people.
	to, err = mail.ParseAddress(m.To)
	if err != nil || to.Name != "" || to.Address != strings.TrimSpace(m.To) {
		return nil, nil, fmt.Errorf("%w: To %q is not a single address", ErrInvalidMessage, m.To)
	}
	if m.HTML == "" && m.Text == "" {
		return nil, nil, fmt.Errorf("%w: no body", ErrInvalidMessage)
	}
	seen := map[string]bool{}
	for _, h := range m.Headers {
		name := strings.ToLower(h[0])
		if !validHeaderName(h[0]) {
			return nil, nil, fmt.Errorf("%w: header name %q", ErrInvalidMessage, h[0])
		}
		if reservedHeaders[name] || seen[name] {
			return nil, nil, fmt.Errorf("%w: header %s may not be set twice", ErrInvalidMessage, h[0])
		}
		seen[name] = true
	}
	return from, to, nil
}

// validHeaderName reports whether s is a field name of RFC 5322 §3.6.8:
// printable ASCII without the colon.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == ':' {
			return false
		}
	}
	return true
}

// validUnsubscribeURL reports whether s can go between the angle brackets of
// List-Unsubscribe as is: an absolute http(s) URL of printable ASCII with no
// spaces, angle brackets or commas (which would end or split the header's
// URI list).
func validUnsubscribeURL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == ',' {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
