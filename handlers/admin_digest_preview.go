package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"herald/digests"
	"herald/models"
	"herald/subscribers"
)

// digestPreviewData is the data of the "admin_digest_preview" page.
type digestPreviewData struct {
	adminPage
	D *models.Digest
	// View is html or text.
	View       string
	Subscriber string
	// SubscriberError is why the typed reader cannot be shown.
	SubscriberError string
	// Notice says something about the reader worth knowing (not active).
	Notice   string
	Empty    bool
	Followed string
	Text     string
	FrameURL string
	HTMLURL  string
	TextURL  string
}

func (s *Server) digestPreview(c *gin.Context) {
	d := s.digestFor(c)
	if d == nil {
		return
	}
	ctx := c.Request.Context()
	data := digestPreviewData{adminPage: s.adminBase(c, "digests"), D: d, View: "html", Subscriber: strings.TrimSpace(c.Query("subscriber"))}
	if c.Query("view") == "text" {
		data.View = "text"
	}
	reader, msg, err := s.digestReader(ctx, data.Subscriber)
	if err != nil {
		_ = c.Error(err)
		return
	}
	data.SubscriberError = msg
	q := url.Values{}
	if reader != nil {
		q.Set("subscriber", data.Subscriber)
		if reader.Status != models.StatusActive {
			data.Notice = "This reader is " + reader.Status + ": a send skips them. This is what they would receive if they were active."
		}
	}
	base := digestURL(d.ID) + "/preview"
	data.FrameURL = base + "/html?" + q.Encode()
	q.Set("view", "html")
	data.HTMLURL = base + "?" + q.Encode()
	q.Set("view", "text")
	data.TextURL = base + "?" + q.Encode()
	p, err := s.renderDigestPreview(ctx, d.ID, reader)
	switch {
	case errors.Is(err, digests.ErrNothingForReader):
		data.Empty = true
	case err != nil:
		_ = c.Error(err)
		return
	default:
		data.Followed, data.Text = p.Followed, p.Text
	}
	s.page(c, http.StatusOK, "admin_digest_preview", data)
}

// digestPreviewCSP lets the preview frame show the email's inline styles and
// images and nothing else: no script, no form, no plugin.
const digestPreviewCSP = "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; base-uri 'self'; form-action 'none'; frame-ancestors 'self'"

// digestPreviewHTML serves the HTML part of a reader's copy for the
// preview frame; its links open in the top window.
func (s *Server) digestPreviewHTML(c *gin.Context) {
	d := s.digestFor(c)
	if d == nil {
		return
	}
	ctx := c.Request.Context()
	reader, msg, err := s.digestReader(ctx, strings.TrimSpace(c.Query("subscriber")))
	if err != nil {
		_ = c.Error(err)
		return
	}
	if msg != "" {
		_ = c.Error(errStatus(http.StatusNotFound, msg))
		return
	}
	c.Header("Content-Security-Policy", digestPreviewCSP)
	c.Header("Cache-Control", "no-store")
	p, err := s.renderDigestPreview(ctx, d.ID, reader)
	if errors.Is(err, digests.ErrNothingForReader) {
		c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(`<!doctype html><p>This reader would receive none of this digest's stories.</p>`))
		return
	}
	if err != nil {
		_ = c.Error(err)
		return
	}
	body := p.HTML
	if i := strings.Index(strings.ToLower(body), "<head>"); i >= 0 {
		body = body[:i+6] + `<base target="_top">` + body[i+6:]
	} else {
		body = `<base target="_top">` + body
	}
	c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(body))
}

// renderDigestPreview renders a reader's copy with the renderer sends use.
func (s *Server) renderDigestPreview(ctx context.Context, digestID int64, reader *models.Subscriber) (*digests.Preview, error) {
	return s.d.DigestRenderer.Preview(ctx, digestID, reader)
}

// digestReader finds the subscriber with a typed address. An empty
// address is no reader and no message; an unknown one is a message.
func (s *Server) digestReader(ctx context.Context, typed string) (*models.Subscriber, string, error) {
	if typed == "" {
		return nil, "", nil
	}
	_, norm, err := subscribers.ParseAddress(typed)
	if err != nil {
		return nil, "This is not an email address.", nil
	}
	sub, err := s.d.Store.SubscriberByEmail(ctx, norm)
	if errors.Is(err, models.ErrNotFound) {
		return nil, "No subscriber has this address.", nil
	}
	if err != nil {
		return nil, "", err
	}
	return sub, "", nil
}

// digestReaderGetsSomething says, as a message, when a test as this reader would
// fail because they follow none of the digest's stories.
func (s *Server) digestReaderGetsSomething(ctx context.Context, digestID int64, reader *models.Subscriber) (string, error) {
	_, err := s.renderDigestPreview(ctx, digestID, reader)
	if errors.Is(err, digests.ErrNothingForReader) {
		return "This reader follows none of this digest's stories: choose another, or leave it empty.", nil
	}
	return "", err
}
