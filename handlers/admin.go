package handlers

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"herald/models"
	"herald/templates"
)

// adminPage is the common part of every admin page's data, used by the
// "admin" layout: the signed-in user, the CSRF token for forms, the nav
// entry to highlight and a one-time message from the previous action.
type adminPage struct {
	Site      templates.Site
	User      *models.AdminUser
	CSRFToken string
	DevMode   bool
	IsAdmin   bool
	// Nav names the main navigation entry of the page ("digests", ...).
	Nav string
	// Flash is the result of the action that redirected here.
	Flash string
}

const flashCookie = "herald_flash"

// adminBase returns the common page data for the request's user, and takes
// the flash message left by a redirect.
func (s *Server) adminBase(c *gin.Context, nav string) adminPage {
	p := adminPage{Site: s.site, DevMode: s.d.Config.DevMailbox(), Nav: nav}
	if u, ok := c.Get(ctxUser); ok {
		p.User = u.(*models.AdminUser)
		p.IsAdmin = p.User.Role == models.RoleAdmin
	}
	if sess, ok := c.Get(ctxSession); ok {
		p.CSRFToken = sess.(*models.Session).CSRFToken
	}
	if v, err := c.Cookie(flashCookie); err == nil && v != "" {
		if msg, err := url.QueryUnescape(v); err == nil && len(msg) <= 300 {
			p.Flash = msg
		}
		s.setCookie(c, flashCookie, "", -1)
	}
	return p
}

// redirectWith redirects (303) after an action, showing msg on the next page.
func (s *Server) redirectWith(c *gin.Context, to, msg string) {
	if msg != "" {
		s.setCookie(c, flashCookie, url.QueryEscape(msg), 60)
	}
	c.Redirect(http.StatusSeeOther, to)
}

// currentUser returns the signed-in admin user (requireSession ran).
func currentUser(c *gin.Context) *models.AdminUser {
	return c.MustGet(ctxUser).(*models.AdminUser)
}

// requireRole lets only users with the role through: others get 403.
func (s *Server) requireRole(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if u := currentUser(c); u.Role != role {
			_ = c.Error(errStatus(http.StatusForbidden, "Only an "+role+" can do this. Ask an admin of this Herald."))
			c.Abort()
			return
		}
		c.Next()
	}
}

// audit records an action of an admin user, or of a program with an API
// key, in the audit log. A failure to record is logged, not shown: the
// action itself has already happened.
func (s *Server) audit(c *gin.Context, action, target, detail string) {
	e := &models.AuditEntry{At: s.d.Now(), Action: action, Target: target, Detail: detail, IP: c.ClientIP()}
	if u, ok := c.Get(ctxUser); ok {
		e.UserID, e.UserEmail = u.(*models.AdminUser).ID, u.(*models.AdminUser).Email
	} else if k, ok := c.Get(ctxAPIKey); ok {
		e.UserEmail = "API key “" + k.(*models.APIKey).Name + "” (" + k.(*models.APIKey).Prefix + "…)"
	}
	if err := s.d.Store.AddAudit(c.Request.Context(), e); err != nil {
		s.d.Logger.ErrorContext(c.Request.Context(), "audit log", "action", action, "error", err)
	}
}

// idParam parses the :id route parameter; a bad one is a 404.
func idParam(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		_ = c.Error(errStatus(http.StatusNotFound, "There is nothing at this address."))
		return 0, false
	}
	return id, true
}
