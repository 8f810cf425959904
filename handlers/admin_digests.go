package handlers

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"herald/models"
)

// digestPages are the pages of this file's routes.
var digestPages = []string{"admin_digests", "admin_digest_new", "admin_digest", "admin_digest_preview"}

// digestRoutes registers the digest pages: the list, composing a draft, a
// digest with its actions and live progress, and the preview.
func (s *Server) digestRoutes(g *gin.RouterGroup) {
	g.GET("/digests", s.digestList)
	g.GET("/digests/new", s.digestNew)
	g.POST("/digests", s.digestCreate)
	g.GET("/digests/:id", s.digestShow)
	g.GET("/digests/:id/progress", s.digestProgressJSON)
	g.GET("/digests/:id/preview", s.digestPreview)
	g.GET("/digests/:id/preview/html", s.digestPreviewHTML)
	g.POST("/digests/:id/test", s.digestTest)
	g.POST("/digests/:id/schedule", s.digestSchedule)
	for _, action := range []string{"send", "pause", "resume", "cancel"} {
		g.POST("/digests/:id/"+action, s.digestTransition(action))
	}
}

const (
	digestListSize    = 25
	digestFailureSize = 50
	// composeStories caps the stories offered on the compose page and
	// composeWindow how far back they may have been published or received.
	composeStories = 100
	composeWindow  = 30 * 24 * time.Hour
)

var digestStatuses = []string{
	models.DigestDraft, models.DigestScheduled, models.DigestSending,
	models.DigestPaused, models.DigestSent, models.DigestCancelled,
}

var digestKinds = []string{models.DigestManual, models.DigestDaily, models.DigestWeekly, models.DigestAlert}

var digestFrequencies = []string{models.FrequencyInstant, models.FrequencyDaily, models.FrequencyWeekly}

// digestListRow is one line of the digest list.
type digestListRow struct {
	*models.Digest
	Counts                       models.DigestCounts
	Created, Scheduled, Finished string
}

// digestListData is the data of the "admin_digests" page.
type digestListData struct {
	adminPage
	Rows     []digestListRow
	Status   string
	Statuses []string
	// Older and Newer are the keys of the neighbouring pages, 0 when none.
	Older, Newer int64
}

func (s *Server) digestList(c *gin.Context) {
	ctx := c.Request.Context()
	data := digestListData{adminPage: s.adminBase(c, "digests"), Statuses: digestStatuses}
	if st := c.Query("status"); slices.Contains(digestStatuses, st) {
		data.Status = st
	}
	f := models.DigestFilter{Status: data.Status, Limit: digestListSize + 1}
	f.BeforeID, _ = strconv.ParseInt(c.Query("before"), 10, 64)
	f.AfterID, _ = strconv.ParseInt(c.Query("after"), 10, 64)
	list, err := s.d.Store.ListDigests(ctx, f)
	if err != nil {
		_ = c.Error(err)
		return
	}
	// One row more than a page says whether there is a further page.
	more := len(list) > digestListSize
	switch {
	case f.AfterID > 0 && more:
		list = list[1:]
	case more:
		list = list[:digestListSize]
	}
	if len(list) > 0 {
		if (f.AfterID > 0 && more) || f.BeforeID > 0 {
			data.Newer = list[0].ID
		}
		if f.AfterID > 0 || more {
			data.Older = list[len(list)-1].ID
		}
	}
	ids := make([]int64, len(list))
	for i := range list {
		ids[i] = list[i].ID
	}
	counts, err := s.d.Store.CountDigests(ctx, ids)
	if err != nil {
		_ = c.Error(err)
		return
	}
	for i := range list {
		d := &list[i]
		data.Rows = append(data.Rows, digestListRow{Digest: d, Counts: counts[d.ID],
			Created: s.digestTime(&d.CreatedAt), Scheduled: s.digestTime(d.ScheduledAt), Finished: s.digestTime(d.FinishedAt)})
	}
	s.page(c, http.StatusOK, "admin_digests", data)
}

// digestTime formats a time in the site's time zone; nil is empty.
func (s *Server) digestTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.In(s.d.Config.Location).Format("2 Jan 2006 15:04 MST")
}

// digestDuration says a duration the way a person would.
func digestDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Second:
		return "under a second"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}

// digestPlainText reports whether s can be stored as text on every
// database Herald supports: valid UTF-8 without NUL bytes.
func digestPlainText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// digestClip shortens s to at most n bytes, on a character boundary.
func digestClip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
