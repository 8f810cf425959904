package templates

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/vanng822/go-premailer/premailer"
)

// Inline moves the CSS of an HTML document's <style> blocks into style
// attributes, as email clients need. It runs once per edition (on a
// digest's frame and on each story block), never per message.
func Inline(html string) (string, error) {
	p, err := premailer.NewPremailerFromString(html, premailer.NewOptions(premailer.WithKeepBangImportant(true)))
	if err != nil {
		return "", fmt.Errorf("templates: inline css: %w", err)
	}
	out, err := p.Transform()
	if err != nil {
		return "", fmt.Errorf("templates: inline css: %w", err)
	}
	return out, nil
}

// InlineFragment inlines the email stylesheet into an HTML fragment (such
// as a story block) and returns the fragment.
func (s *Set) InlineFragment(email, fragment string) (string, error) {
	t := s.emailHTML[email]
	if t == nil {
		return "", fmt.Errorf("templates: no email %q", email)
	}
	var css bytes.Buffer
	if err := t.ExecuteTemplate(&css, "email_css", nil); err != nil {
		return "", fmt.Errorf("templates: email css: %w", err)
	}
	doc, err := Inline("<html><head><style>" + css.String() + "</style></head><body>" + fragment + "</body></html>")
	if err != nil {
		return "", err
	}
	start := strings.Index(doc, "<body>")
	end := strings.LastIndex(doc, "</body>")
	if start < 0 || end < start {
		return "", fmt.Errorf("templates: inline css: no body in the result")
	}
	return doc[start+len("<body>") : end], nil
}
