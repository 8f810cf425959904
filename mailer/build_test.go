package mailer

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func testMessage() *Message {
	return &Message{
		MessageID:       "abc.123@news.example.com",
		From:            "The Daily Example <news@example.com>",
		To:              "reader@example.org",
		Subject:         "Politics UK — today’s stories",
		Text:            "Hello reader,\n\nA line that is long enough to need soft line breaks in quoted-printable, with ünïcödé too.\n",
		HTML:            "<p>Hello <b>reader</b> — ünïcödé</p>",
		ListUnsubscribe: "https://news.example.com/unsubscribe/TOKEN-123",
		ListID:          "Politics UK <politics-uk.news.example.com>",
		FeedbackID:      "digest:daily:herald",
		Headers:         [][2]string{{"X-Herald-Delivery", "42"}},
		Date:            time.Date(2026, 11, 25, 7, 30, 0, 0, time.UTC),
	}
}

// parsed is a rendered message taken apart with the standard library, the
// way a receiving client would.
type parsed struct {
	header mail.Header
	parts  []part
}

type part struct {
	contentType string
	body        string
}

func parseRaw(t *testing.T, raw []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, raw)
	}
	out := parsed{header: msg.Header}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content type: %v", err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		body, _ := io.ReadAll(decoder(msg.Header.Get("Content-Transfer-Encoding"), msg.Body))
		return parsed{header: msg.Header, parts: []part{{mt, string(body)}}}
	}
	if mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %s, want multipart/alternative", mt)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		body, err := io.ReadAll(decoder(p.Header.Get("Content-Transfer-Encoding"), p))
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		out.parts = append(out.parts, part{p.Header.Get("Content-Type"), string(body)})
	}
	return out
}

func decoder(cte string, r io.Reader) io.Reader {
	if strings.EqualFold(cte, "quoted-printable") {
		return quotedprintable.NewReader(r)
	}
	return r
}

func TestRenderHeadersAndParts(t *testing.T) {
	m := testMessage()
	raw, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("line longer than RFC 5322 allows: %d octets", len(line))
		}
	}
	p := parseRaw(t, raw)
	h := p.header
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Message-ID":            "<abc.123@news.example.com>",
		"To":                    "<reader@example.org>",
		"Auto-Submitted":        "auto-generated",
		"List-Unsubscribe":      "<https://news.example.com/unsubscribe/TOKEN-123>",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"List-Id":               "Politics UK <politics-uk.news.example.com>",
		"Feedback-ID":           "digest:daily:herald",
		"X-Herald-Delivery":     "42",
		"MIME-Version":          "1.0",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if subject != m.Subject {
		t.Errorf("Subject = %q, want %q", subject, m.Subject)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "news@example.com" || from[0].Name != "The Daily Example" {
		t.Errorf("From = %v (%v)", from, err)
	}
	if d, err := h.Date(); err != nil || !d.Equal(m.Date) {
		t.Errorf("Date = %v (%v), want %v", d, err, m.Date)
	}
	if len(p.parts) != 2 {
		t.Fatalf("got %d parts, want 2", len(p.parts))
	}
	checks := []struct{ ctype, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}}
	for i, c := range checks {
		mt, params, _ := mime.ParseMediaType(p.parts[i].contentType)
		if mt != c.ctype || !strings.EqualFold(params["charset"], "utf-8") {
			t.Errorf("part %d Content-Type = %q, want %s; charset=UTF-8", i, p.parts[i].contentType, c.ctype)
		}
		if got := strings.ReplaceAll(p.parts[i].body, "\r\n", "\n"); got != c.body {
			t.Errorf("part %d body = %q, want %q", i, got, c.body)
		}
	}
}

func TestRenderWithoutListHeaders(t *testing.T) {
	m := testMessage()
	m.ListUnsubscribe, m.ListID, m.FeedbackID, m.HTML = "", "", "", ""
	raw, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	p := parseRaw(t, raw)
	for _, k := range []string{"List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Feedback-ID"} {
		if v := p.header.Get(k); v != "" {
			t.Errorf("%s = %q, want none", k, v)
		}
	}
	if len(p.parts) != 1 || !strings.HasPrefix(p.parts[0].contentType, "text/plain") {
		t.Errorf("parts = %+v, want one text/plain", p.parts)
	}
}

func TestBuildRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(m *Message)
	}{
		{"CR in subject", func(m *Message) { m.Subject = "Hi\rBcc: victim@example.net" }},
		{"LF in subject", func(m *Message) { m.Subject = "Hi\nBcc: victim@example.net" }},
		{"CRLF in To", func(m *Message) { m.To = "reader@example.org\r\nBcc: victim@example.net" }},
		{"LF in From", func(m *Message) { m.From = "News\n <news@example.com>" }},
		{"LF in List-Id", func(m *Message) { m.ListID = "a\nb" }},
		{"LF in Feedback-ID", func(m *Message) { m.FeedbackID = "a\nb" }},
		{"LF in unsubscribe URL", func(m *Message) { m.ListUnsubscribe = "https://x.example/\n" }},
		{"LF in extra header", func(m *Message) { m.Headers = [][2]string{{"X-A", "1\nBcc: v@example.net"}} }},
		{"LF in Message-ID", func(m *Message) { m.MessageID = "a@b\n" }},
		{"unparsable From", func(m *Message) { m.From = "not an address" }},
		{"unparsable To", func(m *Message) { m.To = "reader@" }},
		{"To with a name", func(m *Message) { m.To = "Reader <reader@example.org>" }},
		{"To with two addresses", func(m *Message) { m.To = "a@example.org, b@example.org" }},
		{"Message-ID in brackets", func(m *Message) { m.MessageID = "<a@b>" }},
		{"empty Message-ID", func(m *Message) { m.MessageID = "" }},
		{"unsubscribe URL not http", func(m *Message) { m.ListUnsubscribe = "javascript:alert(1)" }},
		{"unsubscribe URL with >", func(m *Message) { m.ListUnsubscribe = "https://x.example/a>b" }},
		{"extra header named From", func(m *Message) { m.Headers = [][2]string{{"from", "x@example.net"}} }},
		{"extra header twice", func(m *Message) { m.Headers = [][2]string{{"X-A", "1"}, {"x-a", "2"}} }},
		{"extra header name with colon", func(m *Message) { m.Headers = [][2]string{{"X-A:", "1"}} }},
		{"no body", func(m *Message) { m.HTML, m.Text = "", "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMessage()
			tt.change(m)
			if _, err := Build(m); !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("Build: err = %v, want ErrInvalidMessage", err)
			}
			if _, err := Render(m); !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("Render: err = %v, want ErrInvalidMessage", err)
			}
		})
	}
}
