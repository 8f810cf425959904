package handlers

import (
	"html/template"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"herald/models"
)

// mailboxPageData is the data of the "admin_mailbox" page.
type mailboxPageData struct {
	adminPage
	Messages []models.MailboxMessage
	Page     int
	// Newer and Older are the neighbouring page numbers, 0 when none.
	Newer int
	Older int
}

// messagePageData is the data of the "admin_message" page.
type messagePageData struct {
	adminPage
	Message *models.MailboxMessage
	// TextHTML is the plain-text body, escaped, with its links clickable.
	TextHTML template.HTML
	View     string
}

const mailboxPageSize = 50

func (s *Server) mailbox(c *gin.Context) {
	pageNo, _ := strconv.Atoi(c.Query("page"))
	if pageNo < 1 {
		pageNo = 1
	}
	msgs, err := s.d.Store.MailboxMessages(c.Request.Context(), mailboxPageSize+1, (pageNo-1)*mailboxPageSize)
	if err != nil {
		_ = c.Error(err)
		return
	}
	data := mailboxPageData{adminPage: s.adminBase(c, "mailbox"), Page: pageNo}
	if len(msgs) > mailboxPageSize {
		msgs, data.Older = msgs[:mailboxPageSize], pageNo+1
	}
	if pageNo > 1 {
		data.Newer = pageNo - 1
	}
	data.Messages = msgs
	s.page(c, http.StatusOK, "admin_mailbox", data)
}

func (s *Server) mailboxLookup(c *gin.Context) *models.MailboxMessage {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		_ = c.Error(errStatus(http.StatusNotFound, "There is no such message."))
		return nil
	}
	m, err := s.d.Store.MailboxMessage(c.Request.Context(), id)
	if err != nil {
		_ = c.Error(err)
		return nil
	}
	return m
}

func (s *Server) mailboxMessage(c *gin.Context) {
	m := s.mailboxLookup(c)
	if m == nil {
		return
	}
	view := c.DefaultQuery("view", "html")
	if view != "text" && view != "raw" {
		view = "html"
	}
	s.page(c, http.StatusOK, "admin_message", messagePageData{
		adminPage: s.adminBase(c, "mailbox"), Message: m, TextHTML: linkify(m.Text), View: view,
	})
}

// mailboxHTML serves a message's HTML body for the preview frame, with a
// policy that lets no script run and opens links in the top window.
func (s *Server) mailboxHTML(c *gin.Context) {
	m := s.mailboxLookup(c)
	if m == nil {
		return
	}
	c.Header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; base-uri 'self'; form-action 'none'; frame-ancestors 'self'")
	body := m.HTML
	if i := strings.Index(strings.ToLower(body), "<head>"); i >= 0 {
		body = body[:i+6] + `<base target="_top">` + body[i+6:]
	} else {
		body = `<base target="_top">` + body
	}
	c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(body))
}

func (s *Server) clearMailbox(c *gin.Context) {
	if err := s.d.Store.ClearMailbox(c.Request.Context()); err != nil {
		_ = c.Error(err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/mailbox")
}

var urlPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// linkify escapes text and turns its URLs into links.
func linkify(text string) template.HTML {
	var b strings.Builder
	last := 0
	for _, loc := range urlPattern.FindAllStringIndex(text, -1) {
		b.WriteString(template.HTMLEscapeString(text[last:loc[0]]))
		u := template.HTMLEscapeString(text[loc[0]:loc[1]])
		b.WriteString(`<a href="` + u + `" target="_top">` + u + `</a>`)
		last = loc[1]
	}
	b.WriteString(template.HTMLEscapeString(text[last:]))
	return template.HTML(b.String())
}
