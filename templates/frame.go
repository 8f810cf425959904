package templates

import "strings"

// Frame is an email rendered once with placeholder strings where each
// recipient's own values go, cut at the placeholders. Filling it costs a
// few copies instead of a template execution per message.
type Frame struct {
	html, text []segment
}

// segment is literal text followed by a placeholder ("" at the end).
type segment struct {
	text string
	ph   string
}

// NewFrame cuts a rendered HTML and text pair at the placeholders.
func NewFrame(html, text string, placeholders []string) *Frame {
	return &Frame{html: cut(html, placeholders), text: cut(text, placeholders)}
}

func cut(s string, placeholders []string) []segment {
	var out []segment
	for {
		at, which := -1, ""
		for _, ph := range placeholders {
			if i := strings.Index(s, ph); i >= 0 && (at < 0 || i < at) {
				at, which = i, ph
			}
		}
		if at < 0 {
			return append(out, segment{text: s})
		}
		out = append(out, segment{text: s[:at], ph: which})
		s = s[at+len(which):]
	}
}

// Fill returns the HTML and text with each placeholder replaced by its
// value. HTML values must already be escaped for where they stand.
func (f *Frame) Fill(htmlVals, textVals map[string]string) (string, string) {
	return fill(f.html, htmlVals), fill(f.text, textVals)
}

func fill(segs []segment, vals map[string]string) string {
	size := 0
	for _, s := range segs {
		size += len(s.text)
		if s.ph != "" {
			size += len(vals[s.ph])
		}
	}
	var b strings.Builder
	b.Grow(size)
	for _, s := range segs {
		b.WriteString(s.text)
		if s.ph != "" {
			b.WriteString(vals[s.ph])
		}
	}
	return b.String()
}
