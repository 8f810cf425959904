package handlers

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"herald/models"
	"herald/stories"
)

// storyJSON is a story as the API shows it.
type storyJSON struct {
	ID          int64     `json:"id"`
	URL         string    `json:"url"`
	GUID        string    `json:"guid,omitempty"`
	Title       string    `json:"title"`
	Summary     string    `json:"summary"`
	ImageURL    string    `json:"image_url,omitempty"`
	Author      string    `json:"author,omitempty"`
	Sections    []string  `json:"sections"`
	Origin      string    `json:"origin"`
	FeedID      *int64    `json:"feed_id,omitempty"`
	Breaking    bool      `json:"breaking"`
	Hidden      bool      `json:"hidden"`
	PublishedAt time.Time `json:"published_at"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// storiesJSON renders stories with their section slugs.
func (s *Server) storiesJSON(ctx context.Context, list []*models.Story) ([]storyJSON, error) {
	ids := make([]int64, 0, len(list))
	for _, st := range list {
		ids = append(ids, st.ID)
	}
	sectionIDs, err := s.d.Store.StorySectionIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	secs, err := s.d.Store.Sections(ctx)
	if err != nil {
		return nil, err
	}
	slugs := make(map[int64]string, len(secs))
	for _, sec := range secs {
		slugs[sec.ID] = sec.Slug
	}
	out := make([]storyJSON, 0, len(list))
	for _, st := range list {
		j := storyJSON{
			ID: st.ID, URL: st.URL, GUID: st.GUID, Title: st.Title, Summary: st.Summary, ImageURL: st.ImageURL,
			Author: st.Author, Sections: []string{}, Origin: st.Origin, FeedID: st.FeedID, Breaking: st.Breaking,
			Hidden: st.Hidden, PublishedAt: st.PublishedAt.UTC(), CreatedAt: st.CreatedAt.UTC(), UpdatedAt: st.UpdatedAt.UTC(),
		}
		for _, id := range sectionIDs[st.ID] {
			if slug, ok := slugs[id]; ok {
				j.Sections = append(j.Sections, slug)
			}
		}
		out = append(out, j)
	}
	return out, nil
}

// createStoryRequest is the body of POST /api/v1/stories.
type createStoryRequest struct {
	URL         string   `json:"url"`
	GUID        string   `json:"guid"`
	Title       string   `json:"title"`
	Summary     string   `json:"summary"`
	Sections    []string `json:"sections"`
	PublishedAt string   `json:"published_at"`
	ImageURL    string   `json:"image_url"`
	Author      string   `json:"author"`
	Breaking    bool     `json:"breaking"`
}

// createStory stores a story from the CMS: 201 when it is new, 200 when
// the same URL updated an existing one; the body is the story either way.
func (s *Server) createStory(c *gin.Context) {
	if !requireScope(c, "stories:write") {
		return
	}
	var r createStoryRequest
	if err := c.ShouldBindJSON(&r); err != nil {
		_ = c.Error(jsonError(err))
		return
	}
	in := stories.Input{
		URL: r.URL, GUID: r.GUID, Title: r.Title, Summary: r.Summary, Sections: r.Sections,
		ImageURL: r.ImageURL, Author: r.Author, Origin: models.OriginAPI, Breaking: r.Breaking,
	}
	if p := strings.TrimSpace(r.PublishedAt); p != "" {
		t, err := time.Parse(time.RFC3339, p)
		if err != nil {
			_ = c.Error(stories.FieldErrors{"published_at": "must be a time in RFC 3339 form, like 2026-11-25T09:30:00Z"})
			return
		}
		in.PublishedAt = t
	}
	st, created, err := s.d.Stories.Ingest(c.Request.Context(), in)
	if err != nil {
		_ = c.Error(err)
		return
	}
	out, err := s.storiesJSON(c.Request.Context(), []*models.Story{st})
	if err != nil {
		_ = c.Error(err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, out[0])
}

// listStories answers GET /api/v1/stories?section=slug&origin=feed&limit=N&before=ID,
// newest first.
func (s *Server) listStories(c *gin.Context) {
	if !requireScope(c, "stories:read") {
		return
	}
	ctx := c.Request.Context()
	f := models.StoryFilter{Limit: 20}
	fields := map[string]string{}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			fields["limit"] = "must be a number from 1 to 100"
		}
		f.Limit = n
	}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			fields["before"] = "must be a story id"
		}
		f.BeforeID = n
	}
	switch v := c.Query("origin"); v {
	case "", models.OriginFeed, models.OriginAPI, models.OriginEditor:
		f.Origin = v
	default:
		fields["origin"] = "must be feed, api or editor"
	}
	if slug := c.Query("section"); slug != "" {
		found, err := s.d.Store.SectionsBySlug(ctx, []string{slug})
		if err != nil {
			_ = c.Error(err)
			return
		}
		if sec, ok := found[slug]; ok {
			f.SectionID = sec.ID
		} else {
			fields["section"] = "unknown section"
		}
	}
	if len(fields) > 0 {
		_ = c.Error(&httpError{status: http.StatusUnprocessableEntity, msg: "Please correct the highlighted fields.", fields: fields})
		return
	}
	list, err := s.d.Store.ListStories(ctx, f)
	if err != nil {
		_ = c.Error(err)
		return
	}
	ptrs := make([]*models.Story, len(list))
	for i := range list {
		ptrs[i] = &list[i]
	}
	out, err := s.storiesJSON(ctx, ptrs)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"stories": out})
}
