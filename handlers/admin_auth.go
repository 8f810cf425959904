package handlers

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"herald/accounts"
	"herald/models"
	"herald/templates"
)

// loginLocked answers a login to a locked account.
func (s *Server) loginLocked(c *gin.Context, data loginPageData, until time.Time) {
	wait := until.Sub(s.d.Now())
	minutes := max(1, int(math.Ceil(wait.Minutes())))
	c.Header("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	data.CSRFToken = s.preCSRF(c)
	data.Error = fmt.Sprintf("Too many failed attempts for this account. Try again in %d minute%s.", minutes, plural(minutes))
	s.page(c, http.StatusTooManyRequests, "admin_login", data)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

const (
	sessionCookie = "herald_session"
	preCSRFCookie = "herald_csrf"
	ctxUser       = "admin_user"
	ctxSession    = "admin_session"
)

// loginPageData is the data of the "admin_login" and "admin_setup" pages.
type loginPageData struct {
	Site      templates.Site
	Email     string
	CSRFToken string
	Error     string
	Errors    map[string]string
	Next      string
	Token     string
}

func (s *Server) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: name, Value: value, Path: "/admin", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
	})
}

// preCSRF returns the double-submit token for forms shown before login.
func (s *Server) preCSRF(c *gin.Context) string {
	if v, err := c.Cookie(preCSRFCookie); err == nil && len(v) >= 20 && len(v) <= 64 {
		return v
	}
	v := accounts.RandomToken(18)
	s.setCookie(c, preCSRFCookie, v, 3600)
	return v
}

func checkPreCSRF(c *gin.Context) bool {
	cookie, err := c.Cookie(preCSRFCookie)
	form := c.PostForm("csrf_token")
	return err == nil && cookie != "" && subtle.ConstantTimeCompare([]byte(cookie), []byte(form)) == 1
}

func safeNext(next string) string {
	if strings.HasPrefix(next, "/admin") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\r\n\\") {
		return next
	}
	return "/admin"
}

func (s *Server) loginPage(c *gin.Context) {
	s.page(c, http.StatusOK, "admin_login", loginPageData{Site: s.site, CSRFToken: s.preCSRF(c), Next: safeNext(c.Query("next"))})
}

func (s *Server) login(c *gin.Context) {
	data := loginPageData{Site: s.site, Email: c.PostForm("email"), Next: safeNext(c.PostForm("next"))}
	if !checkPreCSRF(c) {
		data.CSRFToken = s.preCSRF(c)
		data.Error = "Your session expired. Please try again."
		s.page(c, http.StatusForbidden, "admin_login", data)
		return
	}
	// Accounts are locked after too many wrong passwords: in the database
	// for real accounts (every instance sees it), and here as well, so an
	// address that is no account behaves the same and reveals nothing.
	account := strings.ToLower(strings.TrimSpace(data.Email))
	if until, locked := s.loginFails.locked(account); locked {
		s.loginLocked(c, data, until)
		return
	}
	u, err := s.d.Accounts.Authenticate(c.Request.Context(), c.PostForm("email"), c.PostForm("password"))
	var le *accounts.LockedError
	switch {
	case errors.As(err, &le):
		s.loginLocked(c, data, le.Until)
		return
	case errors.Is(err, accounts.ErrBadCredentials):
		s.loginFails.fail(account)
		data.CSRFToken = s.preCSRF(c)
		data.Error = "The email or password is not right."
		s.page(c, http.StatusUnauthorized, "admin_login", data)
		return
	case err != nil:
		_ = c.Error(err)
		return
	}
	s.loginFails.forget(account)
	s.startSession(c, u.ID, data.Next)
}

func (s *Server) startSession(c *gin.Context, userID int64, next string) {
	value, _, err := s.d.Accounts.NewSession(c.Request.Context(), userID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.setCookie(c, sessionCookie, value, int(s.d.Accounts.SessionMax().Seconds()))
	c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) logout(c *gin.Context) {
	if v, err := c.Cookie(sessionCookie); err == nil {
		_ = s.d.Accounts.EndSession(c.Request.Context(), v)
	}
	s.setCookie(c, sessionCookie, "", -1)
	c.Redirect(http.StatusSeeOther, "/admin/login")
}

// requireSession lets logged-in users through; pages redirect to login.
func (s *Server) requireSession(c *gin.Context) {
	v, _ := c.Cookie(sessionCookie)
	sess, u, err := s.d.Accounts.Session(c.Request.Context(), v)
	if err != nil {
		if !errors.Is(err, accounts.ErrNoSession) {
			_ = c.Error(err)
			c.Abort()
			return
		}
		if c.Request.Method == http.MethodGet {
			c.Redirect(http.StatusSeeOther, "/admin/login?next="+c.Request.URL.Path)
		} else {
			_ = c.Error(errStatus(http.StatusUnauthorized, "Please log in."))
		}
		c.Abort()
		return
	}
	c.Set(ctxUser, u)
	c.Set(ctxSession, sess)
	c.Next()
}

// requireCSRF refuses a state-changing admin request without the session's
// CSRF token (form field csrf_token or header X-CSRF-Token).
func (s *Server) requireCSRF(c *gin.Context) {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		c.Next()
		return
	}
	sess := c.MustGet(ctxSession).(*models.Session)
	got := c.GetHeader("X-CSRF-Token")
	if got == "" {
		got = c.PostForm("csrf_token")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRFToken)) != 1 {
		_ = c.Error(errStatus(http.StatusForbidden, "This form has expired. Go back, reload the page and try again."))
		c.Abort()
		return
	}
	c.Next()
}

// setupPage creates the first admin user through the one-time link printed
// at first start, when HERALD_ADMIN_EMAIL/PASSWORD are not set.
func (s *Server) setupPage(c *gin.Context) {
	if !s.setupOpen(c) {
		return
	}
	s.page(c, http.StatusOK, "admin_setup", loginPageData{Site: s.site, CSRFToken: s.preCSRF(c), Token: c.Param("token")})
}

func (s *Server) setupOpen(c *gin.Context) bool {
	tok := c.Param("token")
	if s.d.SetupToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.d.SetupToken)) != 1 {
		_ = c.Error(errStatus(http.StatusNotFound, "This setup link is not valid."))
		return false
	}
	has, err := s.d.Accounts.HasUsers(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return false
	}
	if has {
		_ = c.Error(errStatus(http.StatusGone, "Herald is already set up. Log in at /admin/login."))
		return false
	}
	return true
}

func (s *Server) setup(c *gin.Context) {
	if !s.setupOpen(c) {
		return
	}
	data := loginPageData{Site: s.site, Email: c.PostForm("email"), Token: c.Param("token"), CSRFToken: s.preCSRF(c)}
	if !checkPreCSRF(c) {
		data.Error = "Your session expired. Please try again."
		s.page(c, http.StatusForbidden, "admin_setup", data)
		return
	}
	pw := c.PostForm("password")
	errs := map[string]string{}
	if msg := accounts.ValidatePassword(pw); msg != "" {
		errs["password"] = msg
	} else if pw != c.PostForm("password_confirm") {
		errs["password_confirm"] = "The two passwords are not the same."
	}
	if len(errs) == 0 {
		u, err := s.d.Accounts.CreateUser(c.Request.Context(), data.Email, pw, models.RoleAdmin)
		if err == nil {
			s.startSession(c, u.ID, "/admin")
			return
		}
		errs["email"] = err.Error()
	}
	data.Errors = errs
	s.page(c, http.StatusUnprocessableEntity, "admin_setup", data)
}
