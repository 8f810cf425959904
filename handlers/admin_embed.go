package handlers

import (
	"html/template"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"herald/models"
	"herald/templates"
)

// embedSnippet is one copy-paste snippet of the embed page.
type embedSnippet struct {
	// ID is the textarea's id, for its Copy button.
	ID, Kind, Code string
}

// embedSection is a section with its two snippets.
type embedSection struct {
	models.Section
	HTML, Widget embedSnippet
}

// embedData is the data of "admin_embed".
type embedData struct {
	adminPage
	Sections []embedSection
	Origins  []string
}

// embedSnippetData is the data of "admin_embed_snippet": the signup form
// as a site pastes it, with Herald's stylesheet and, for the widget, its
// script.
type embedSnippetData struct {
	Base   string
	Form   templates.SignupForm
	Widget bool
}

// embedCode renders a section's snippet of the kind "html" or "widget".
// It is the hosted form's partial, so the field names are the same; it has
// no time-trap token, which a pasted form could only carry stale.
func (s *Server) embedCode(sec models.Section, kind string) (string, error) {
	cfg := s.d.Config
	data := embedSnippetData{Base: s.site.BaseURL, Widget: kind == "widget", Form: templates.SignupForm{
		Action: s.site.BaseURL + "/subscribe",
		Sections: []templates.SectionOption{
			{Slug: sec.Slug, Name: sec.Name, Description: sec.Description, Checked: true},
		},
		Frequency: models.FrequencyDaily, ConsentText: cfg.ConsentText, PrivacyURL: cfg.PrivacyURL,
		PrivacyVersion: cfg.PrivacyVersion, RequireConsent: cfg.RequireConsent,
		Source: "embed-" + kind + ":" + sec.Slug, Heading: "Want to be notified of stories we publish?",
	}}
	var b strings.Builder
	if err := s.d.Templates.Page(&b, "admin_embed_snippet", data); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.String()) + "\n", nil
}

func (s *Server) adminEmbed(c *gin.Context) {
	secs, err := s.d.Store.Sections(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return
	}
	data := embedData{adminPage: s.adminBase(c, "embed"), Origins: s.d.Config.AllowedOrigins}
	for _, sec := range secs {
		es := embedSection{Section: sec}
		for _, sn := range []*embedSnippet{{Kind: "html"}, {Kind: "widget"}} {
			if sn.Code, err = s.embedCode(sec, sn.Kind); err != nil {
				_ = c.Error(err)
				return
			}
			sn.ID = "embed-" + sn.Kind + "-" + sec.Slug
			if sn.Kind == "html" {
				es.HTML = *sn
			} else {
				es.Widget = *sn
			}
		}
		data.Sections = append(data.Sections, es)
	}
	s.page(c, http.StatusOK, "admin_embed", data)
}

// adminEmbedPreview serves a bare page holding exactly one snippet, for the
// embed page's preview frame: what it shows is what a site gets.
func (s *Server) adminEmbedPreview(c *gin.Context) {
	kind, slug := c.Query("kind"), c.Query("section")
	if !slugPattern.MatchString(slug) || (kind != "html" && kind != "widget") {
		_ = c.Error(errStatus(http.StatusNotFound, "There is no such section or kind of snippet."))
		return
	}
	found, err := s.d.Store.SectionsBySlug(c.Request.Context(), []string{slug})
	if err != nil {
		_ = c.Error(err)
		return
	}
	sec, ok := found[slug]
	if !ok {
		_ = c.Error(errStatus(http.StatusNotFound, "There is no such section or kind of snippet."))
		return
	}
	code, err := s.embedCode(sec, kind)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.Header("Cache-Control", "no-store")
	s.page(c, http.StatusOK, "admin_embed_preview", struct {
		Title string
		Code  template.HTML
	}{
		Title: "Preview: " + sec.Name,
		Code:  template.HTML(code), //nolint:gosec // rendered by html/template from Herald's own data
	})
}
