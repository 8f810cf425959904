package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"herald/fielderr"
	"herald/models"
	"herald/subscribers"
	"herald/templates"
)

// httpError is an error with the status and the message the client sees.
type httpError struct {
	status int
	msg    string
	fields map[string]string
}

func (e *httpError) Error() string { return e.msg }

func errStatus(status int, msg string) *httpError { return &httpError{status: status, msg: msg} }

// renderErrors turns the error a handler recorded with c.Error into one
// answer: JSON under /api, a page elsewhere. Unknown errors are logged and
// become a generic 500; their text never reaches the client.
func (s *Server) renderErrors() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 || c.Writer.Written() {
			return
		}
		err := c.Errors.Last().Err
		he := s.classify(err)
		if he.status >= 500 {
			s.d.Logger.ErrorContext(c.Request.Context(), "request failed",
				slog.String("method", c.Request.Method), slog.String("path", c.FullPath()), slog.Any("error", err))
		}
		if wantsJSON(c) {
			body := gin.H{"error": he.msg}
			if len(he.fields) > 0 {
				body["fields"] = he.fields
			}
			c.JSON(he.status, body)
			return
		}
		s.messagePage(c, he.status, titleFor(he.status), he.msg)
	}
}

func (s *Server) classify(err error) *httpError {
	var he *httpError
	var fe fielderr.Errors
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &fe):
		return &httpError{status: http.StatusUnprocessableEntity, msg: "Please correct the highlighted fields.", fields: fe}
	case errors.As(err, &mbe):
		return errStatus(http.StatusRequestEntityTooLarge, "The request is too large.")
	case errors.Is(err, subscribers.ErrTokenExpired):
		return errStatus(http.StatusGone, "This link has expired.")
	case errors.Is(err, subscribers.ErrLinkSuperseded):
		return errStatus(http.StatusGone, "This link is no longer valid: you unsubscribed after it was sent. Sign up again to subscribe.")
	case errors.Is(err, subscribers.ErrTokenInvalid):
		return errStatus(http.StatusNotFound, "This link is not valid. Check that you copied all of it from the email.")
	case errors.Is(err, models.ErrNotFound):
		return errStatus(http.StatusNotFound, "Not found.")
	case errors.Is(err, subscribers.ErrStopped):
		return errStatus(http.StatusServiceUnavailable, "Herald is restarting. Please try again in a moment.")
	}
	return errStatus(http.StatusInternalServerError, "Something went wrong on our side. Please try again.")
}

func titleFor(status int) string {
	switch status {
	case http.StatusNotFound:
		return "Not found"
	case http.StatusGone:
		return "Link expired"
	case http.StatusTooManyRequests:
		return "Too many requests"
	case http.StatusForbidden:
		return "Not allowed"
	}
	if status >= 500 {
		return "Something went wrong"
	}
	return "Something is not right"
}

func wantsJSON(c *gin.Context) bool {
	return strings.HasPrefix(c.Request.URL.Path, "/api/")
}

func (s *Server) messagePage(c *gin.Context, status int, title, msg string) {
	s.page(c, status, "message", templates.MessagePage{Site: s.site, Title: title, Message: msg, Status: status})
}

// page renders a page; a template error is logged and becomes a plain 500.
func (s *Server) page(c *gin.Context, status int, name string, data any) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(status)
	if err := s.d.Templates.Page(c.Writer, name, data); err != nil {
		s.d.Logger.ErrorContext(c.Request.Context(), "render page", slog.String("page", name), slog.Any("error", err))
		c.String(http.StatusInternalServerError, "Something went wrong on our side.")
	}
}

func (s *Server) notFound(c *gin.Context) {
	_ = c.Error(errStatus(http.StatusNotFound, "There is no page at this address."))
}

func (s *Server) methodNotAllowed(c *gin.Context) {
	_ = c.Error(errStatus(http.StatusMethodNotAllowed, "This address does not accept that method."))
}
