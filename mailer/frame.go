package mailer

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"sync"
	"time"
)

// A frame is one shape of message as go-mail writes it, with a slot where
// each value that changes from one recipient to the next goes: the Date,
// Message-ID, To and List-Unsubscribe values and the two bodies. The
// confirmations of one site, or every copy of one digest, share a shape,
// so go-mail builds it once and each message is the frame with its slots
// filled: the values as go-mail would write them, the bodies quoted-
// printable encoded with the encoder go-mail uses. The result is the same
// bytes go-mail gives for that message and that multipart boundary (see
// TestFrameMatchesGoMail); a message the frame cannot write exactly so
// (a header go-mail would fold, a body holding the boundary) is built by
// go-mail whole.

// The placeholders a frame is built with: values go-mail writes unchanged.
const (
	phMessageID = "herald-ph-message-id@frame.invalid"
	phTo        = "herald-ph-to@frame.invalid"
	phUnsub     = "https://frame.invalid/herald-ph-unsubscribe"
	phText      = "HERALDPHTEXTBODY"
	phHTML      = "HERALDPHHTMLBODY"
)

// phDate is the frame's Date, as go-mail formats it.
var phDate = time.Date(2000, 1, 2, 3, 4, 5, 0, time.UTC)

type slotKind uint8

const (
	slotDate slotKind = iota
	slotMessageID
	slotTo
	slotUnsub
	slotText
	slotHTML
)

type frame struct {
	boundary string
	segs     [][]byte   // len(slots)+1 pieces of the frame around the slots
	slots    []slotKind // in the order they appear
}

// frameKey is what a frame holds constant.
type frameKey struct {
	from, subject, listID, feedbackID, headers string
	unsub, text, html                          bool
}

func keyOf(m *Message) frameKey {
	var h strings.Builder
	for _, kv := range m.Headers {
		h.WriteString(kv[0])
		h.WriteByte(0)
		h.WriteString(kv[1])
		h.WriteByte(0)
	}
	return frameKey{from: m.From, subject: m.Subject, listID: m.ListID, feedbackID: m.FeedbackID, headers: h.String(),
		unsub: m.ListUnsubscribe != "", text: m.Text != "", html: m.HTML != ""}
}

// maxFrames bounds the cache: a frame per site email and per digest.
const maxFrames = 256

// frames caches frames by shape; a nil entry is a shape no frame can
// write (its constant parts hold a placeholder).
type frames struct {
	mu sync.Mutex
	m  map[frameKey]*frame
}

func (fs *frames) get(m *Message) *frame {
	k := keyOf(m)
	fs.mu.Lock()
	f, ok := fs.m[k]
	fs.mu.Unlock()
	if ok {
		return f
	}
	f = buildFrame(m)
	fs.mu.Lock()
	if fs.m == nil || len(fs.m) >= maxFrames {
		fs.m = make(map[frameKey]*frame)
	}
	fs.m[k] = f
	fs.mu.Unlock()
	return f
}

// buildFrame has go-mail write m's shape with placeholders, and cuts the
// result at them. It returns nil when a placeholder is not found exactly
// once (a subject that quotes one, say).
func buildFrame(m *Message) *frame {
	pm := *m
	pm.MessageID, pm.To, pm.Date = phMessageID, phTo, phDate
	if pm.ListUnsubscribe != "" {
		pm.ListUnsubscribe = phUnsub
	}
	if pm.Text != "" {
		pm.Text = phText
	}
	if pm.HTML != "" {
		pm.HTML = phHTML
	}
	msg, err := Build(&pm)
	if err != nil {
		return nil
	}
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	boundary := hex.EncodeToString(b)
	msg.SetBoundary(boundary)
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil
	}
	raw := buf.Bytes()
	marks := []struct {
		kind slotKind
		ph   string
		on   bool
	}{
		{slotDate, phDate.Format(time.RFC1123Z), true},
		{slotMessageID, phMessageID, true},
		{slotTo, (&mail.Address{Address: phTo}).String(), true},
		{slotUnsub, phUnsub, m.ListUnsubscribe != ""},
		{slotText, phText, m.Text != ""},
		{slotHTML, phHTML, m.HTML != ""},
	}
	type at struct {
		kind     slotKind
		pos, end int
	}
	var found []at
	for _, mk := range marks {
		if !mk.on {
			continue
		}
		if bytes.Count(raw, []byte(mk.ph)) != 1 {
			return nil
		}
		i := bytes.Index(raw, []byte(mk.ph))
		found = append(found, at{mk.kind, i, i + len(mk.ph)})
	}
	// Order the slots as they appear (a handful: insertion sort).
	for i := 1; i < len(found); i++ {
		for j := i; j > 0 && found[j].pos < found[j-1].pos; j-- {
			found[j], found[j-1] = found[j-1], found[j]
		}
	}
	f := &frame{boundary: boundary}
	last := 0
	for _, a := range found {
		f.segs = append(f.segs, raw[last:a.pos])
		f.slots = append(f.slots, a.kind)
		last = a.end
	}
	f.segs = append(f.segs, raw[last:])
	return f
}

// headerFits reports whether go-mail writes "key: value" on one line: it
// folds a value with spaces, and one word too long for the line.
func headerFits(key, value string) bool {
	return !strings.Contains(value, " ") && len(key)+len(value) < 71
}

// write writes m into buf through f and reports true, or reports false
// (having written nothing) when m cannot go through the frame. m has
// passed validate; to is its parsed recipient.
func (f *frame) write(buf *bytes.Buffer, m *Message, to *mail.Address) bool {
	toValue := to.String()
	mid := "<" + m.MessageID + ">"
	if !headerFits("To", toValue) || !headerFits("Message-ID", mid) ||
		strings.Contains(m.Text, f.boundary) || strings.Contains(m.HTML, f.boundary) {
		return false
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	for i, seg := range f.segs {
		buf.Write(seg)
		if i == len(f.slots) {
			break
		}
		switch f.slots[i] {
		case slotDate:
			buf.Write(date.AppendFormat(buf.AvailableBuffer(), time.RFC1123Z))
		case slotMessageID:
			buf.WriteString(m.MessageID)
		case slotTo:
			buf.WriteString(toValue)
		case slotUnsub:
			buf.WriteString(m.ListUnsubscribe)
		case slotText:
			writeQP(buf, m.Text)
		case slotHTML:
			writeQP(buf, m.HTML)
		}
	}
	return true
}

// writeQP encodes s as go-mail's quoted-printable parts are: the standard
// library's encoder, closed at the end of the body.
func writeQP(buf *bytes.Buffer, s string) {
	w := quotedprintable.NewWriter(buf)
	// Through a small array rather than []byte(s): the body is not copied
	// whole for the encoder.
	var chunk [1024]byte
	for len(s) > 0 {
		n := copy(chunk[:], s)
		_, _ = w.Write(chunk[:n])
		s = s[n:]
	}
	_ = w.Close()
}
