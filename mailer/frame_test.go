package mailer

import (
	"bytes"
	"math/rand/v2"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/config"
)

// goMailBytes is what go-mail writes for m with this boundary.
func goMailBytes(t *testing.T, m *Message, boundary string) []byte {
	t.Helper()
	msg, err := Build(m)
	if err != nil {
		t.Fatal(err)
	}
	msg.SetBoundary(boundary)
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// canonical splits a message into its header fields, sorted (go-mail
// writes its preformatted headers, the List-Unsubscribe pair, in map
// order), and its body.
func canonical(raw []byte) ([]string, []byte) {
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	var fields []string
	for _, line := range strings.Split(string(head), "\r\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(fields) > 0 {
			fields[len(fields)-1] += "\r\n" + line
			continue
		}
		fields = append(fields, line)
	}
	slices.Sort(fields)
	return fields, body
}

// framed writes m through its frame, failing the test if the frame
// refuses it.
func framed(t *testing.T, fs *frames, m *Message) ([]byte, *frame) {
	t.Helper()
	_, to, err := validate(m)
	if err != nil {
		t.Fatal(err)
	}
	f := fs.get(m)
	if f == nil {
		t.Fatalf("no frame for %+v", m)
	}
	var buf bytes.Buffer
	if !f.write(&buf, m, to) {
		t.Fatalf("frame refused %+v", m)
	}
	return buf.Bytes(), f
}

func sameAsGoMail(t *testing.T, name string, got []byte, m *Message, boundary string) {
	t.Helper()
	want := goMailBytes(t, m, boundary)
	gh, gb := canonical(got)
	wh, wb := canonical(want)
	if !slices.Equal(gh, wh) {
		t.Errorf("%s: headers differ from go-mail's:\n got %q\nwant %q", name, gh, wh)
	}
	if !bytes.Equal(gb, wb) {
		t.Errorf("%s: body differs from go-mail's:\n got %q\nwant %q", name, gb, wb)
	}
}

// TestFrameMatchesGoMail: a message written through its frame has exactly
// the header fields and the body go-mail writes for it (with the frame's
// boundary), across the headers and bodies Herald sends and bodies chosen
// to trip quoted-printable up.
func TestFrameMatchesGoMail(t *testing.T) {
	date := time.Date(2026, 12, 1, 9, 30, 0, 0, time.FixedZone("", 3600))
	cases := map[string]*Message{
		"confirmation": {MessageID: "a1b2c3@example.com", From: "The Daily Herald <news@example.com>", To: "reader@example.com",
			Subject: "Confirm your subscription to The Daily Herald", Date: date,
			Text: "Hello,\n\nconfirm: https://herald.example.com/confirm/abc_DEF-1\n", HTML: `<p style="margin:0">Confirm <a href="https://x.example/c?a=1&b=2">here</a></p>`},
		"notice with list headers": {MessageID: "n1@example.com", From: "news@example.com", To: "o'brien&co+tag@example.com",
			Subject: "You're already subscribed", ListUnsubscribe: "https://herald.example.com/unsubscribe/tok_EN-1",
			ListID: "The Daily Herald <news.herald.example.com>", FeedbackID: "notice:herald", Date: date,
			Headers: [][2]string{{"X-Herald-Kind", "notice"}, {"Precedence", "bulk"}},
			Text:    "You're subscribed.\n", HTML: "<p>You&#39;re subscribed.</p>"},
		"utf-8 everywhere": {MessageID: "u@example.com", From: "Le Quotidien Élysée <nouvelles@example.com>", To: "lecteur@example.com",
			Subject: "Confirmez votre abonnement au Quotidien — Élysée ✓", Date: date,
			Text: "Déjà abonné ? Très bien. 🎉\nLigne avec = signe et tabulation\t\n", HTML: "<p>Déjà — « citation » 🎉</p>\n"},
		"awkward bodies": {MessageID: "w@example.com", From: "news@example.com", To: "r@example.com", Subject: "Awkward", Date: date,
			Text: strings.Repeat("long line without breaks ", 60) + "\n.\n.leading dot\nFrom the start\ntrailing space \ntrailing tab\t\r\nCRLF line\r\nend without newline ",
			HTML: strings.Repeat("x", 2000) + "\n" + strings.Repeat("=", 100) + " \n"},
		"text only": {MessageID: "t@example.com", From: "news@example.com", To: "r@example.com", Subject: "Plain", Date: date, Text: "only text\n"},
		"html only": {MessageID: "h@example.com", From: "news@example.com", To: "r@example.com", Subject: "Rich", Date: date, HTML: "<b>only html</b>"},
		"zero date": {MessageID: "z@example.com", From: "news@example.com", To: "r@example.com", Subject: "Now", Text: "t", HTML: "h"},
		"long subject": {MessageID: "l@example.com", From: "news@example.com", To: "r@example.com", Date: date,
			Subject: strings.Repeat("A subject long enough to be folded by go-mail ", 4), Text: "t", HTML: "h"},
	}
	var fs frames
	for name, m := range cases {
		got, f := framed(t, &fs, m)
		if m.Date.IsZero() {
			// The frame stamps the time of writing: compare with that.
			h, _ := canonical(got)
			for _, field := range h {
				if v, ok := strings.CutPrefix(field, "Date: "); ok {
					d, err := time.Parse(time.RFC1123Z, v)
					if err != nil || time.Since(d) > time.Minute {
						t.Fatalf("%s: Date %q", name, v)
					}
					mm := *m
					mm.Date = d
					m = &mm
				}
			}
		}
		sameAsGoMail(t, name, got, m, f.boundary)
	}

	// One frame serves every message of a shape: other recipients, ids,
	// dates, links and bodies.
	base := cases["notice with list headers"]
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", " ", "\t", "\n", "\r\n", "=", ".", "é", "🎉", "<", ">", "&", "-", "\r", strings.Repeat("w", 80)}
	for i := range 200 {
		m := *base
		m.To = "reader" + strings.Repeat("x", rng.IntN(40)) + "@example.com"
		m.MessageID = strings.Repeat("m", 1+rng.IntN(30)) + "@example.com"
		m.Date = date.Add(time.Duration(rng.IntN(1e6)) * time.Second)
		m.ListUnsubscribe = "https://herald.example.com/unsubscribe/" + strings.Repeat("k", rng.IntN(200))
		var text, html strings.Builder
		for range 1 + rng.IntN(400) {
			text.WriteString(alphabet[rng.IntN(len(alphabet))])
			html.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		m.Text, m.HTML = text.String(), html.String()
		got, f := framed(t, &fs, &m)
		sameAsGoMail(t, "random message", got, &m, f.boundary)
		if t.Failed() {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	if n := len(fs.m); n != len(cases) {
		t.Errorf("%d frames cached for %d shapes", n, len(cases))
	}
}

// TestFrameRefuses: what a frame cannot write exactly as go-mail would (a
// recipient or Message-ID long enough to be folded, a body holding the
// boundary, a subject that holds a placeholder) is left to go-mail, and
// SMTP.prepare then still gives go-mail's message.
func TestFrameRefuses(t *testing.T) {
	var fs frames
	ok := &Message{MessageID: "a@example.com", From: "news@example.com", To: "r@example.com", Subject: "S", Text: "t", HTML: "h"}
	f := fs.get(ok)
	if f == nil {
		t.Fatal("no frame")
	}
	longTo := *ok
	longTo.To = strings.Repeat("r", 60) + "@example.com"
	longID := *ok
	longID.MessageID = strings.Repeat("i", 50) + "@example.com"
	boundaryInBody := *ok
	boundaryInBody.HTML = "<p>--" + f.boundary + "</p>"
	for name, m := range map[string]*Message{"long To": &longTo, "long Message-ID": &longID, "boundary in body": &boundaryInBody} {
		to, err := mail.ParseAddress(m.To)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if fs.get(m) != f || f.write(&buf, m, to) || buf.Len() != 0 {
			t.Errorf("%s: the frame wrote it (%d bytes)", name, buf.Len())
		}
	}
	quoting := *ok
	quoting.Subject = "About " + phText
	if fs.get(&quoting) != nil {
		t.Error("a subject holding a placeholder got a frame")
	}

	// prepare falls back to go-mail whole for them: the message parses and
	// carries the long header folded as go-mail folds it.
	s, err := NewSMTP(SMTPConfig{Servers: []config.SMTPServer{{Host: "127.0.0.1", Port: 1, TLS: "none"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.prepare(&longTo)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.data, []byte("To:\r\n <"+longTo.To+">\r\n")) || out.rcpt != "<"+longTo.To+">" {
		t.Errorf("long To through prepare:\n%s", out.data)
	}
	if _, err := mail.ReadMessage(bytes.NewReader(out.data)); err != nil {
		t.Errorf("fallback message does not parse: %v", err)
	}
}

// TestFrameFoldingThreshold: around the length at which go-mail folds a
// To or Message-ID header, the frame writes exactly the messages go-mail
// writes on one line, and refuses exactly those it folds.
func TestFrameFoldingThreshold(t *testing.T) {
	var fs frames
	for n := 40; n < 80; n++ {
		for _, header := range []string{"To", "Message-ID"} {
			m := &Message{MessageID: "id@example.com", From: "news@example.com", To: "r@example.com", Subject: "S", Text: "t", HTML: "h",
				Date: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
			if header == "To" {
				m.To = strings.Repeat("r", n) + "@example.com"
			} else {
				m.MessageID = strings.Repeat("i", n) + "@example.com"
			}
			f := fs.get(m)
			_, to, err := validate(m)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			wrote := f.write(&buf, m, to)
			folded := bytes.Contains(goMailBytes(t, m, f.boundary), []byte(header+":\r\n "))
			if wrote == folded {
				t.Fatalf("%s of %d characters: frame wrote it %v, go-mail folds it %v", header, n, wrote, folded)
			}
			if wrote {
				sameAsGoMail(t, header, buf.Bytes(), m, f.boundary)
			}
		}
	}
}

// BenchmarkPrepare: turning a confirmation-sized message into the bytes
// sent, through its frame and through go-mail whole
// (go test -run '^$' -bench Prepare -benchmem ./mailer).
func BenchmarkPrepare(b *testing.B) {
	html := strings.Repeat(`<p style="margin:0 0 16px;">Someone, hopefully you, asked The Daily Herald to email you.</p>`+"\n", 34)
	text := strings.Repeat("Someone, hopefully you, asked The Daily Herald to email you when we publish.\n", 6)
	m := &Message{MessageID: "0123456789abcdef01234567@herald.example.com", From: "The Daily Herald <news@example.com>",
		To: "reader@example.com", Subject: "Confirm your subscription to The Daily Herald", HTML: html, Text: text}
	s, err := NewSMTP(SMTPConfig{Servers: []config.SMTPServer{{Host: "127.0.0.1", Port: 1, TLS: "none"}}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.Run("frame", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := s.prepare(m)
			if err != nil {
				b.Fatal(err)
			}
			s.bufs.Put(out.buf)
		}
	})
	b.Run("go-mail", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			msg, err := Build(m)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := msg.WriteTo(&buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
