package handlers

import (
	"errors"
	"strings"

	"github.com/gin-gonic/gin"

	"herald/fielderr"
	"herald/models"
)

// contentPages are the pages of this file's routes.
var contentPages = []string{
	"admin_stories", "admin_story_form", "admin_sections", "admin_section_form",
	"admin_feeds", "admin_feed_form", "admin_embed", "admin_embed_preview", "admin_embed_snippet",
}

// contentRoutes registers the stories, sections, feeds and embed pages,
// open to editors and admins alike.
func (s *Server) contentRoutes(g *gin.RouterGroup) {
	g.GET("/stories", s.adminStoryList)
	g.GET("/stories/new", s.adminStoryNew)
	g.POST("/stories", s.adminStoryCreate)
	g.GET("/stories/:id", s.adminStoryEdit)
	g.POST("/stories/:id", s.adminStorySave)
	g.POST("/stories/:id/hide", s.adminStoryHide(true))
	g.POST("/stories/:id/unhide", s.adminStoryHide(false))

	g.GET("/sections", s.adminSectionList)
	g.POST("/sections", s.adminSectionCreate)
	g.GET("/sections/:id", s.adminSectionEdit)
	g.POST("/sections/:id", s.adminSectionSave)

	g.GET("/feeds", s.adminFeedList)
	g.GET("/feeds/new", s.adminFeedNew)
	g.POST("/feeds", s.adminFeedCreate)
	g.GET("/feeds/:id", s.adminFeedEdit)
	g.POST("/feeds/:id", s.adminFeedSave)
	g.POST("/feeds/:id/poll", s.adminFeedPollNow)

	g.GET("/embed", s.adminEmbed)
	g.GET("/embed/preview", s.adminEmbedPreview)
}

// summaryItem is one line of a form's error summary, linking to its field.
type summaryItem struct {
	ID, Label, Msg string
}

// summaryItems orders errs as labels lists the fields (pairs of field
// name and label); a field the form does not know goes last.
func summaryItems(errs map[string]string, labels ...string) []summaryItem {
	var out []summaryItem
	known := map[string]bool{}
	for i := 0; i+1 < len(labels); i += 2 {
		known[labels[i]] = true
		if msg, ok := errs[labels[i]]; ok {
			out = append(out, summaryItem{ID: labels[i], Label: labels[i+1], Msg: msg})
		}
	}
	for k, msg := range errs {
		if !known[k] {
			out = append(out, summaryItem{Label: "This form", Msg: msg})
		}
	}
	return out
}

// mergeServiceErrors adds err's field messages to errs and reports whether
// err was nothing but field messages.
func mergeServiceErrors(errs map[string]string, err error) bool {
	var fe fielderr.Errors
	if !errors.As(err, &fe) {
		return false
	}
	for k, v := range fe {
		if _, ok := errs[k]; !ok {
			errs[k] = v
		}
	}
	return true
}

// sectionNameMap maps section ids to names, and returns the sections by name.
func (s *Server) sectionNameMap(c *gin.Context) (map[int64]string, []models.Section, bool) {
	secs, err := s.d.Store.Sections(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return nil, nil, false
	}
	names := make(map[int64]string, len(secs))
	for _, sec := range secs {
		names[sec.ID] = sec.Name
	}
	return names, secs, true
}

// formText returns a posted field as valid UTF-8 without NUL bytes: a
// browser can post any bytes, and Postgres refuses both in text.
func formText(c *gin.Context, key string) string {
	return cleanText(c.PostForm(key))
}

// formList is formText for a repeated field.
func formList(c *gin.Context, key string) []string {
	vals := c.PostFormArray(key)
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = cleanText(v)
	}
	return out
}

func cleanText(v string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\x00", "")
}
