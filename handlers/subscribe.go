package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"herald/models"
	"herald/subscribers"
	"herald/templates"
)

// consentValue accepts true/false and the strings a form might send.
type consentValue bool

func (v *consentValue) UnmarshalJSON(b []byte) error {
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	switch t := x.(type) {
	case bool:
		*v = consentValue(t)
	case string:
		*v = consentValue(truthy(t))
	case nil:
		*v = false
	default:
		return errors.New("consent must be true or false")
	}
	return nil
}

func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "on", "true", "1", "y":
		return true
	}
	return false
}

// subscribeRequest is the JSON body of POST /api/v1/subscribe; the form
// uses the same names.
type subscribeRequest struct {
	Email     string       `json:"email"`
	Sections  []string     `json:"sections"`
	Frequency string       `json:"frequency"`
	Consent   consentValue `json:"consent"`
	Source    string       `json:"source"`
	// T is the time-trap token; Website the honeypot.
	T       string `json:"t"`
	Website string `json:"website"`
}

// isBot applies the honeypot and the time trap. A bot gets the normal
// success answer and nothing is stored or sent.
func (s *Server) isBot(website, t string) bool {
	if strings.TrimSpace(website) != "" {
		return true
	}
	return s.d.Subscribers.Tokens().TooFast(t, s.d.Now(), s.d.Config.MinSubmitTime)
}

func (s *Server) signupInput(c *gin.Context, r subscribeRequest, form string) subscribers.SignupInput {
	page := c.GetHeader("Referer")
	if page == "" {
		page = c.GetHeader("Origin")
	}
	return subscribers.SignupInput{
		Email: r.Email, Sections: r.Sections, Frequency: r.Frequency, Consent: bool(r.Consent),
		Source: r.Source, Form: form, IP: c.ClientIP(), UserAgent: c.GetHeader("User-Agent"), PageURL: page,
		Locale: firstLang(c.GetHeader("Accept-Language")),
	}
}

const pendingMessage = "Thanks! Check your inbox: we've sent you an email to confirm your subscription."

func (s *Server) subscribeJSON(c *gin.Context) {
	var r subscribeRequest
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		_ = c.Error(err)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&r); err != nil {
		_ = c.Error(jsonError(err))
		return
	}
	if s.isBot(r.Website, r.T) {
		s.metrics.signups.WithLabelValues("bot").Inc()
		c.Data(http.StatusAccepted, jsonType, s.pendingJSON)
		return
	}
	form := "api"
	if r.T != "" {
		form = "widget"
	}
	if err := s.d.Subscribers.Signup(c.Request.Context(), s.signupInput(c, r, form)); err != nil {
		s.countSignupError(err)
		_ = c.Error(err)
		return
	}
	s.metrics.signups.WithLabelValues("accepted").Inc()
	c.Data(http.StatusAccepted, jsonType, s.pendingJSON)
}

// jsonType is the Content-Type gin gives JSON answers.
const jsonType = "application/json; charset=utf-8"

func jsonError(err error) *httpError {
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errStatus(http.StatusRequestEntityTooLarge, "The request is too large.")
	case errors.As(err, &te) && te.Field != "":
		field := strings.SplitN(te.Field, ".", 2)[0]
		msg := map[string]string{
			"email": "must be a string", "sections": "must be a list of section slugs",
			"frequency": "must be one of instant, daily, weekly", "source": "must be a string",
		}[field]
		if msg == "" {
			msg = "has the wrong type"
		}
		return &httpError{status: http.StatusBadRequest, msg: "The request has a field of the wrong type.", fields: map[string]string{field: msg}}
	case errors.Is(err, io.EOF):
		return errStatus(http.StatusBadRequest, "The request body is empty; send a JSON object.")
	}
	if strings.Contains(err.Error(), "consent") {
		return &httpError{status: http.StatusBadRequest, msg: "The request has a field of the wrong type.", fields: map[string]string{"consent": "must be true or false"}}
	}
	return errStatus(http.StatusBadRequest, "The request body is not valid JSON.")
}

func (s *Server) countSignupError(err error) {
	var fe subscribers.FieldErrors
	if errors.As(err, &fe) {
		s.metrics.signups.WithLabelValues("invalid").Inc()
		return
	}
	s.metrics.signups.WithLabelValues("error").Inc()
}

func (s *Server) subscribeForm(c *gin.Context) {
	if err := c.Request.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			_ = c.Error(err)
			return
		}
		_ = c.Error(errStatus(http.StatusBadRequest, "The form could not be read."))
		return
	}
	f := c.Request.PostForm
	r := subscribeRequest{
		Email: f.Get("email"), Sections: f["sections"], Frequency: f.Get("frequency"),
		Consent: consentValue(truthy(f.Get("consent"))), Source: f.Get("source"), T: f.Get("t"), Website: f.Get("website"),
	}
	returnTo := s.allowedReturn(f.Get("return_to"))
	if s.isBot(r.Website, r.T) {
		s.metrics.signups.WithLabelValues("bot").Inc()
		c.Redirect(http.StatusSeeOther, returnTo)
		return
	}
	err := s.d.Subscribers.Signup(c.Request.Context(), s.signupInput(c, r, "form"))
	var fe subscribers.FieldErrors
	switch {
	case errors.As(err, &fe):
		s.metrics.signups.WithLabelValues("invalid").Inc()
		data, derr := s.signupPage(c, r.Sections, r.Frequency)
		if derr != nil {
			_ = c.Error(derr)
			return
		}
		data.Form.Email = r.Email
		data.Form.Source = r.Source
		data.Form.ReturnTo = f.Get("return_to")
		data.Form.Errors = fe
		s.page(c, http.StatusUnprocessableEntity, "home", data)
		return
	case err != nil:
		s.countSignupError(err)
		_ = c.Error(err)
		return
	}
	s.metrics.signups.WithLabelValues("accepted").Inc()
	c.Redirect(http.StatusSeeOther, returnTo)
}

// allowedReturn returns return_to when it is on Herald or an allowed
// origin, and the thank-you page otherwise (no open redirect).
func (s *Server) allowedReturn(raw string) string {
	thanks := s.site.BaseURL + "/thanks"
	if raw == "" || len(raw) > 2048 || strings.ContainsAny(raw, "\r\n") {
		return thanks
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return thanks
	}
	if !s.origins[u.Scheme+"://"+u.Host] {
		return thanks
	}
	return u.String()
}

// signupPage builds the data of the hosted signup page and the demo.
func (s *Server) signupPage(c *gin.Context, checked []string, freq string) (templates.SignupPage, error) {
	secs, err := s.d.Store.Sections(c.Request.Context())
	if err != nil {
		return templates.SignupPage{}, err
	}
	isChecked := map[string]bool{}
	for _, slug := range checked {
		isChecked[slug] = true
	}
	opts := make([]templates.SectionOption, 0, len(secs))
	for _, sec := range secs {
		opts = append(opts, templates.SectionOption{
			Slug: sec.Slug, Name: sec.Name, Description: sec.Description,
			Checked: isChecked[sec.Slug] || len(secs) == 1,
		})
	}
	if freq == "" {
		freq = models.FrequencyDaily
	}
	cfg := s.d.Config
	return templates.SignupPage{
		Site: s.site,
		Form: templates.SignupForm{
			Action: s.site.BaseURL + "/subscribe", Sections: opts, Frequency: freq,
			TimeToken: s.d.Subscribers.Tokens().TimeToken(s.d.Now()), ConsentText: cfg.ConsentText,
			PrivacyURL: cfg.PrivacyURL, PrivacyVersion: cfg.PrivacyVersion, RequireConsent: cfg.RequireConsent,
			Source: "herald-signup-page", Heading: "Get our stories by email",
		},
		WidgetURL: s.site.BaseURL + "/widget.js",
	}, nil
}

func (s *Server) home(c *gin.Context) {
	data, err := s.signupPage(c, nil, "")
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.page(c, http.StatusOK, "home", data)
}

func (s *Server) demo(c *gin.Context) {
	data, err := s.signupPage(c, []string{"politics-uk"}, models.FrequencyDaily)
	if err != nil {
		_ = c.Error(err)
		return
	}
	data.Form.Source = "demo-article-footer"
	data.Form.Heading = "Want to be notified of stories we publish?"
	data.Form.ReturnTo = s.site.BaseURL + "/thanks"
	s.page(c, http.StatusOK, "demo", data)
}

func (s *Server) thanks(c *gin.Context) {
	s.page(c, http.StatusOK, "thanks", templates.MessagePage{
		Site: s.site, Title: "Check your inbox",
		Message: "We've sent you an email with a link to confirm your subscription. If you don't confirm, you won't be subscribed.",
	})
}

// widget serves widget.js with a fresh time-trap token and the API URL.
func (s *Server) widget(c *gin.Context) {
	src, err := templates.StaticFile("widget.js")
	if err != nil {
		_ = c.Error(err)
		return
	}
	js := strings.NewReplacer(
		"__HERALD_T__", s.d.Subscribers.Tokens().TimeToken(s.d.Now()),
		"__HERALD_API__", s.site.BaseURL+"/api/v1/subscribe",
	).Replace(string(src))
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/javascript; charset=utf-8", []byte(js))
}

func firstLang(h string) string {
	tag, _, _ := strings.Cut(h, ",")
	tag, _, _ = strings.Cut(tag, ";")
	tag = strings.TrimSpace(tag)
	if len(tag) > 16 {
		return ""
	}
	return tag
}
