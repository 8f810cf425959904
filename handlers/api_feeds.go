package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"herald/models"
	"herald/stories"
)

// feedJSON is a feed as the API shows it, with its last poll.
type feedJSON struct {
	ID                  int64             `json:"id"`
	URL                 string            `json:"url"`
	Section             string            `json:"section"`
	Categories          map[string]string `json:"categories"`
	PollInterval        string            `json:"poll_interval"`
	PollIntervalSeconds int               `json:"poll_interval_seconds"`
	LastStatus          string            `json:"last_status"`
	LastError           string            `json:"last_error,omitempty"`
	LastNew             int               `json:"last_new"`
	LastPolledAt        *time.Time        `json:"last_polled_at"`
	NextPollAt          time.Time         `json:"next_poll_at"`
	Failures            int               `json:"failures"`
	CreatedAt           time.Time         `json:"created_at"`
}

func toFeedJSON(f *models.Feed, slugs map[int64]string) feedJSON {
	j := feedJSON{
		ID: f.ID, URL: f.URL, Section: slugs[f.SectionID], Categories: stories.CategoryMap(f),
		PollInterval: shortDuration(stories.Interval(f)), PollIntervalSeconds: f.PollInterval,
		LastStatus: f.LastStatus, LastError: f.LastError, LastNew: f.LastNew,
		NextPollAt: f.NextPollAt.UTC(), Failures: f.Failures, CreatedAt: f.CreatedAt.UTC(),
	}
	if j.LastStatus == "" {
		j.LastStatus = "pending"
	}
	if f.LastPolledAt != nil {
		t := f.LastPolledAt.UTC()
		j.LastPolledAt = &t
	}
	return j
}

// shortDuration writes 5m rather than 5m0s.
func shortDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

func (s *Server) sectionSlugs(c *gin.Context) (map[int64]string, bool) {
	secs, err := s.d.Store.Sections(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return nil, false
	}
	out := make(map[int64]string, len(secs))
	for _, sec := range secs {
		out[sec.ID] = sec.Slug
	}
	return out, true
}

// createFeedRequest is the body of POST /api/v1/feeds.
type createFeedRequest struct {
	URL          string            `json:"url"`
	Section      string            `json:"section"`
	Categories   map[string]string `json:"categories"`
	PollInterval string            `json:"poll_interval"`
}

func (s *Server) createFeed(c *gin.Context) {
	if !requireScope(c, "feeds:write") {
		return
	}
	var r createFeedRequest
	if err := c.ShouldBindJSON(&r); err != nil {
		_ = c.Error(jsonError(err))
		return
	}
	f, err := s.d.Stories.AddFeed(c.Request.Context(), stories.FeedInput{
		URL: r.URL, Section: r.Section, Categories: r.Categories, PollInterval: r.PollInterval,
	})
	if errors.Is(err, stories.ErrFeedExists) {
		_ = c.Error(&httpError{status: http.StatusConflict, msg: "Herald already polls this feed.", fields: map[string]string{"url": "is already a feed"}})
		return
	}
	if err != nil {
		_ = c.Error(err)
		return
	}
	slugs, ok := s.sectionSlugs(c)
	if !ok {
		return
	}
	c.JSON(http.StatusCreated, toFeedJSON(f, slugs))
}

func (s *Server) listFeeds(c *gin.Context) {
	if !requireScope(c, "feeds:read") {
		return
	}
	feeds, err := s.d.Store.Feeds(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return
	}
	slugs, ok := s.sectionSlugs(c)
	if !ok {
		return
	}
	out := make([]feedJSON, 0, len(feeds))
	for i := range feeds {
		out = append(out, toFeedJSON(&feeds[i], slugs))
	}
	c.JSON(http.StatusOK, gin.H{"feeds": out})
}
