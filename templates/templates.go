// Package templates holds Herald's embedded page and email templates and
// static files. Everything is parsed once by New; a missing or broken
// template fails at start, never on a request.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"path"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed pages/*.html emails/* static/*
var files embed.FS

// Set is the parsed templates.
type Set struct {
	pages     map[string]*htmltemplate.Template
	emailHTML map[string]*htmltemplate.Template
	emailText map[string]*texttemplate.Template
}

// SectionOption is one section offered on a signup form.
type SectionOption struct {
	Slug        string
	Name        string
	Description string
	Checked     bool
}

// SignupForm is what the "signup_form" partial needs. Its field names are
// those of the JSON API: email, sections (repeated), frequency, consent,
// source, return_to; plus the honeypot "website" and the time trap "t".
type SignupForm struct {
	// Action is the absolute URL the form posts to (POST /subscribe).
	Action         string
	Sections       []SectionOption
	Frequency      string
	Email          string
	Errors         map[string]string
	TimeToken      string
	ConsentText    string
	PrivacyURL     string
	PrivacyVersion string
	RequireConsent bool
	Source         string
	ReturnTo       string
	// Heading is the box's title, e.g. "Want to be notified of stories we publish?"
	Heading string
}

var funcs = map[string]any{
	"date": func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 MST") },
	"join": strings.Join,
	// fieldOf bundles what a form field's partial needs: its name, label,
	// autocomplete hint and its error from a map of field errors.
	"fieldOf": func(name, label, auto string, errs map[string]string) FieldView {
		return FieldView{Name: name, Label: label, Auto: auto, Error: errs[name]}
	},
}

// FieldView is one form field as a partial renders it.
type FieldView struct {
	Name, Label, Auto, Error string
}

// New parses every template. Pages are pages/*.html, each executed through
// pages/layout.html unless it defines its own "page" template; partials are
// pages/_*.html and are available to every page.
func New() (*Set, error) {
	s := &Set{
		pages:     map[string]*htmltemplate.Template{},
		emailHTML: map[string]*htmltemplate.Template{},
		emailText: map[string]*texttemplate.Template{},
	}
	pageFiles, err := fs.Glob(files, "pages/*.html")
	if err != nil {
		return nil, err
	}
	var partials []string
	for _, f := range pageFiles {
		if strings.HasPrefix(path.Base(f), "_") {
			partials = append(partials, f)
		}
	}
	for _, f := range pageFiles {
		base := path.Base(f)
		if strings.HasPrefix(base, "_") || base == "layout.html" {
			continue
		}
		name := strings.TrimSuffix(base, ".html")
		list := append([]string{"pages/layout.html"}, partials...)
		list = append(list, f)
		t, err := htmltemplate.New("layout.html").Funcs(funcs).ParseFS(files, list...)
		if err != nil {
			return nil, fmt.Errorf("templates: page %s: %w", name, err)
		}
		s.pages[name] = t
	}
	emailFiles, err := fs.Glob(files, "emails/*")
	if err != nil {
		return nil, err
	}
	for _, f := range emailFiles {
		base := path.Base(f)
		if strings.HasPrefix(base, "_") {
			continue
		}
		switch {
		case strings.HasSuffix(base, ".html"):
			list := append(globOrNil("emails/_*.html"), f)
			t, err := htmltemplate.New(base).Funcs(funcs).ParseFS(files, list...)
			if err != nil {
				return nil, fmt.Errorf("templates: email %s: %w", base, err)
			}
			s.emailHTML[strings.TrimSuffix(base, ".html")] = t
		case strings.HasSuffix(base, ".txt"):
			list := append(globOrNil("emails/_*.txt"), f)
			t, err := texttemplate.New(base).Funcs(funcs).ParseFS(files, list...)
			if err != nil {
				return nil, fmt.Errorf("templates: email %s: %w", base, err)
			}
			s.emailText[strings.TrimSuffix(base, ".txt")] = t
		}
	}
	for name := range s.emailHTML {
		if s.emailText[name] == nil {
			return nil, fmt.Errorf("templates: email %s has HTML but no .txt version", name)
		}
	}
	return s, nil
}

func globOrNil(pattern string) []string {
	m, _ := fs.Glob(files, pattern)
	return m
}

// Require fails unless every named page and email exists, so callers can
// check at start that the templates they use are there.
func (s *Set) Require(pages, emails []string) error {
	for _, p := range pages {
		if s.pages[p] == nil {
			return fmt.Errorf("templates: page %q is missing", p)
		}
	}
	for _, e := range emails {
		if s.emailHTML[e] == nil || s.emailText[e] == nil {
			return fmt.Errorf("templates: email %q is missing", e)
		}
	}
	return nil
}

// Page renders a page into w. It renders into a buffer first so that a
// template error never leaves half a page behind.
func (s *Set) Page(w io.Writer, name string, data any) error {
	t := s.pages[name]
	if t == nil {
		return fmt.Errorf("templates: no page %q", name)
	}
	entry := "layout.html"
	if t.Lookup("page") != nil {
		entry = "page"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, entry, data); err != nil {
		return fmt.Errorf("templates: page %s: %w", name, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// Email renders an email's HTML and plain-text bodies.
func (s *Set) Email(name string, data any) (html, text string, err error) {
	ht, tt := s.emailHTML[name], s.emailText[name]
	if ht == nil || tt == nil {
		return "", "", fmt.Errorf("templates: no email %q", name)
	}
	var hb, tb bytes.Buffer
	if err := ht.Execute(&hb, data); err != nil {
		return "", "", fmt.Errorf("templates: email %s html: %w", name, err)
	}
	if err := tt.Execute(&tb, data); err != nil {
		return "", "", fmt.Errorf("templates: email %s text: %w", name, err)
	}
	return hb.String(), tb.String(), nil
}

// EmailPart renders one template defined inside an email's files, such as
// a story block, so that a part shared by many messages is rendered once.
// HTML parts come back as template.HTML, ready to place in the email.
func (s *Set) EmailPart(email, part string, data any) (htmltemplate.HTML, string, error) {
	ht, tt := s.emailHTML[email], s.emailText[email]
	if ht == nil || tt == nil {
		return "", "", fmt.Errorf("templates: no email %q", email)
	}
	var hb, tb bytes.Buffer
	if err := ht.ExecuteTemplate(&hb, part+"_html", data); err != nil {
		return "", "", fmt.Errorf("templates: %s/%s html: %w", email, part, err)
	}
	if err := tt.ExecuteTemplate(&tb, part+"_text", data); err != nil {
		return "", "", fmt.Errorf("templates: %s/%s text: %w", email, part, err)
	}
	// The block was escaped by html/template as it was rendered.
	return htmltemplate.HTML(hb.String()), tb.String(), nil //nolint:gosec
}

// Static returns the static files (widget.js, CSS).
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder exists
	}
	return sub
}

// StaticFile returns one static file's contents.
func StaticFile(name string) ([]byte, error) {
	return fs.ReadFile(files, "static/"+name)
}

// Site is the publication's identity. Every page's data has a Site field
// named Site, which the layout uses.
type Site struct {
	Name          string
	URL           string
	PrivacyURL    string
	PostalAddress string
	// BaseURL is Herald's own public URL, without a trailing slash.
	BaseURL string
}

// SignupPage is the data of the hosted signup page ("home") and the demo
// article page ("demo").
type SignupPage struct {
	Site Site
	Form SignupForm
	// WidgetURL is the absolute URL of widget.js.
	WidgetURL string
}

// MessagePage is the data of simple pages that say one thing: "thanks",
// "error" and the like.
type MessagePage struct {
	Site    Site
	Title   string
	Message string
	// Status is an HTTP status shown on error pages, 0 otherwise.
	Status int
}
