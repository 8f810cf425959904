package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"herald/models"
	"herald/subscribers"
	"herald/templates"
)

var zeroTime time.Time

// preferencesPageData is the data of the "preferences" page.
type preferencesPageData struct {
	Site     templates.Site
	Token    string
	Email    string
	Status   string
	Sections []preferenceRow
	// Notice is a confirmation line after a change; Erased ends the page.
	Notice string
	Errors map[string]string
	Erased bool
}

type preferenceRow struct {
	Slug        string
	Name        string
	Description string
	Checked     bool
	Frequency   string
}

func (s *Server) preferencesData(c *gin.Context, token string) (*preferencesPageData, error) {
	p, err := s.d.Subscribers.Preferences(c.Request.Context(), token)
	if err != nil {
		return nil, err
	}
	current := map[string]string{}
	for _, v := range p.Subscriptions {
		current[v.Slug] = v.Frequency
	}
	data := &preferencesPageData{Site: s.site, Token: token, Email: p.Subscriber.Email, Status: p.Subscriber.Status}
	for _, sec := range p.Sections {
		freq, ok := current[sec.Slug]
		if !ok {
			freq = models.FrequencyDaily
		}
		data.Sections = append(data.Sections, preferenceRow{
			Slug: sec.Slug, Name: sec.Name, Description: sec.Description,
			Checked: ok && p.Subscriber.Status != models.StatusUnsubscribed, Frequency: freq,
		})
	}
	return data, nil
}

func (s *Server) preferencesPage(c *gin.Context) {
	data, err := s.preferencesData(c, c.Param("token"))
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.page(c, http.StatusOK, "preferences", data)
}

// savePreferences reads "sections" (checked slugs) and "frequency_SLUG"
// for each, and replaces the reader's subscriptions.
func (s *Server) savePreferences(c *gin.Context) {
	token := c.Param("token")
	var choices []subscribers.Choice
	for _, slug := range c.PostFormArray("sections") {
		freq := c.PostForm("frequency_" + slug)
		if freq == "" {
			freq = c.PostForm("frequency")
		}
		choices = append(choices, subscribers.Choice{Section: slug, Frequency: freq})
	}
	err := s.d.Subscribers.UpdatePreferences(c.Request.Context(), token, choices, s.meta(c, "preferences"))
	var fe subscribers.FieldErrors
	if err != nil && !errors.As(err, &fe) {
		_ = c.Error(err)
		return
	}
	data, derr := s.preferencesData(c, token)
	if derr != nil {
		_ = c.Error(derr)
		return
	}
	status := http.StatusOK
	switch {
	case fe != nil:
		data.Errors, status = fe, http.StatusUnprocessableEntity
	case len(choices) == 0:
		data.Notice = "You chose no sections, so you are unsubscribed from everything."
	default:
		data.Notice = "Your preferences are saved."
	}
	s.page(c, status, "preferences", data)
}

func (s *Server) unsubscribeAll(c *gin.Context) {
	token := c.Param("token")
	if err := s.d.Subscribers.UnsubscribeAll(c.Request.Context(), token, s.meta(c, "preferences")); err != nil {
		_ = c.Error(err)
		return
	}
	s.metrics.unsubscribes.Inc()
	data, err := s.preferencesData(c, token)
	if err != nil {
		_ = c.Error(err)
		return
	}
	data.Notice = "You are unsubscribed from everything. You can pick sections again here at any time."
	s.page(c, http.StatusOK, "preferences", data)
}

// exportData downloads everything Herald holds about the reader as JSON.
func (s *Server) exportData(c *gin.Context) {
	out, err := s.d.Subscribers.Export(c.Request.Context(), c.Param("token"))
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-my-data.json"`, "herald"))
	c.Header("Cache-Control", "no-store")
	c.IndentedJSON(http.StatusOK, out)
}

// erase removes the reader's personal data; the form must tick "confirm".
func (s *Server) erase(c *gin.Context) {
	token := c.Param("token")
	if c.PostForm("confirm") != "yes" {
		data, err := s.preferencesData(c, token)
		if err != nil {
			_ = c.Error(err)
			return
		}
		data.Errors = map[string]string{"confirm": "Tick the box to confirm that you want your data erased."}
		s.page(c, http.StatusUnprocessableEntity, "preferences", data)
		return
	}
	if err := s.d.Subscribers.Erase(c.Request.Context(), token, s.meta(c, "preferences")); err != nil {
		_ = c.Error(err)
		return
	}
	s.page(c, http.StatusOK, "preferences", &preferencesPageData{Site: s.site, Erased: true})
}
