package handlers

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"herald/models"
	"herald/subscribers"
	"herald/templates"
)

// confirmPageData is the data of the "confirm" page.
type confirmPageData struct {
	Site  templates.Site
	Token string
	Email string
	// State is ready (show the button), done, active (already confirmed),
	// expired (offer a new link) or resent.
	State    string
	Sections []models.SubscriptionView
}

func (s *Server) meta(c *gin.Context, form string) subscribers.RequestMeta {
	return subscribers.RequestMeta{IP: c.ClientIP(), UserAgent: c.GetHeader("User-Agent"), Form: form}
}

// confirmPage shows the confirm button; it changes nothing, because mail
// scanners fetch links.
func (s *Server) confirmPage(c *gin.Context) {
	token := c.Param("token")
	sub, err := s.d.Subscribers.Lookup(c.Request.Context(), subscribers.PurposeConfirm, token)
	data := confirmPageData{Site: s.site, Token: token, State: "ready"}
	switch {
	case errors.Is(err, subscribers.ErrTokenExpired):
		data.State = "expired"
	case err != nil:
		_ = c.Error(err)
		return
	}
	data.Email = sub.Email
	if sub.Status == models.StatusActive {
		data.State = "active"
	}
	if data.Sections, err = s.d.Store.Subscriptions(c.Request.Context(), sub.ID); err != nil {
		_ = c.Error(err)
		return
	}
	status := http.StatusOK
	if data.State == "expired" {
		status = http.StatusGone
	}
	s.page(c, status, "confirm", data)
}

func (s *Server) confirm(c *gin.Context) {
	token := c.Param("token")
	sub, err := s.d.Subscribers.Confirm(c.Request.Context(), token, s.meta(c, "confirm-page"))
	if errors.Is(err, subscribers.ErrTokenExpired) {
		s.confirmPage(c)
		return
	}
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.metrics.confirmations.Inc()
	data := confirmPageData{Site: s.site, Token: token, Email: sub.Email, State: "done"}
	if data.Sections, err = s.d.Store.Subscriptions(c.Request.Context(), sub.ID); err != nil {
		_ = c.Error(err)
		return
	}
	data.Token = s.d.Subscribers.Tokens().Make(subscribers.PurposePreferences, sub.ID, zeroTime)
	s.page(c, http.StatusOK, "confirm", data)
}

func (s *Server) resendConfirmation(c *gin.Context) {
	if err := s.d.Subscribers.ResendConfirmation(c.Request.Context(), c.Param("token")); err != nil {
		_ = c.Error(err)
		return
	}
	s.page(c, http.StatusOK, "confirm", confirmPageData{Site: s.site, State: "resent"})
}

// unsubscribePageData is the data of the "unsubscribe" page.
type unsubscribePageData struct {
	Site  templates.Site
	Token string
	Email string
	Done  bool
	// PreferencesToken links to the preference centre instead.
	PreferencesToken string
}

func (s *Server) unsubscribePage(c *gin.Context) {
	token := c.Param("token")
	sub, err := s.d.Subscribers.Lookup(c.Request.Context(), subscribers.PurposeUnsubscribe, token)
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.page(c, http.StatusOK, "unsubscribe", unsubscribePageData{
		Site: s.site, Token: token, Email: sub.Email, Done: sub.Status == models.StatusUnsubscribed,
		PreferencesToken: s.d.Subscribers.Tokens().Make(subscribers.PurposePreferences, sub.ID, zeroTime),
	})
}

// unsubscribe is RFC 8058 one-click: it needs no cookie and no CSRF token
// (mail providers POST "List-Unsubscribe=One-Click" from their servers), and
// answers 200, never a redirect.
func (s *Server) unsubscribe(c *gin.Context) {
	token := c.Param("token")
	if err := s.d.Subscribers.Unsubscribe(c.Request.Context(), token, s.meta(c, unsubscribeForm(c))); err != nil {
		_ = c.Error(err)
		return
	}
	s.metrics.unsubscribes.Inc()
	sub, err := s.d.Subscribers.Lookup(c.Request.Context(), subscribers.PurposeUnsubscribe, token)
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.page(c, http.StatusOK, "unsubscribe", unsubscribePageData{
		Site: s.site, Token: token, Email: sub.Email, Done: true,
		PreferencesToken: s.d.Subscribers.Tokens().Make(subscribers.PurposePreferences, sub.ID, zeroTime),
	})
}

func unsubscribeForm(c *gin.Context) string {
	if c.PostForm("List-Unsubscribe") == "One-Click" {
		return "one-click"
	}
	return "unsubscribe-page"
}
