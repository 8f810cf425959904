package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"herald/digests"
)

// createDigestRequest is the body of POST /api/v1/digests.
type createDigestRequest struct {
	Kind        string   `json:"kind"`
	Subject     string   `json:"subject"`
	Intro       string   `json:"intro"`
	StoryIDs    []int64  `json:"story_ids"`
	Sections    []string `json:"sections"`
	Frequencies []string `json:"frequencies"`
}

// digestJSON is a digest with its counters as the API shows it.
type digestJSON struct {
	ID          int64      `json:"id"`
	Key         string     `json:"key"`
	Kind        string     `json:"kind"`
	Subject     string     `json:"subject"`
	Intro       string     `json:"intro,omitempty"`
	Status      string     `json:"status"`
	PauseReason string     `json:"pause_reason,omitempty"`
	StoryIDs    []int64    `json:"story_ids"`
	Sections    string     `json:"sections,omitempty"`
	Frequencies string     `json:"frequencies"`
	Recipients  int        `json:"recipients"`
	Sent        int64      `json:"sent"`
	Failed      int64      `json:"failed"`
	Skipped     int64      `json:"skipped"`
	Pending     int64      `json:"pending"`
	CreatedAt   time.Time  `json:"created_at"`
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}

func (s *Server) digestResponse(c *gin.Context, status int, id int64) {
	p, err := s.d.Digests.Get(c.Request.Context(), id)
	if err != nil {
		_ = c.Error(err)
		return
	}
	ids, err := s.d.Store.DigestStoryIDs(c.Request.Context(), id)
	if err != nil {
		_ = c.Error(err)
		return
	}
	d := p.Digest
	c.JSON(status, digestJSON{
		ID: d.ID, Key: d.Key, Kind: d.Kind, Subject: d.Subject, Intro: d.Intro, Status: d.Status,
		PauseReason: d.PauseReason, StoryIDs: append([]int64{}, ids...), Sections: d.Sections, Frequencies: d.Frequencies,
		Recipients: d.Recipients, Sent: p.Sent, Failed: p.Failed, Skipped: p.Skipped, Pending: p.Pending,
		CreatedAt: d.CreatedAt, ScheduledAt: d.ScheduledAt, StartedAt: d.StartedAt, FinishedAt: d.FinishedAt,
	})
}

func (s *Server) createDigest(c *gin.Context) {
	if !requireScope(c, "digests:write") {
		return
	}
	var r createDigestRequest
	if err := c.ShouldBindJSON(&r); err != nil {
		_ = c.Error(jsonError(err))
		return
	}
	d, err := s.d.Digests.Create(c.Request.Context(), digests.Input{
		Kind: r.Kind, Subject: r.Subject, Intro: r.Intro, StoryIDs: r.StoryIDs, Sections: r.Sections, Frequencies: r.Frequencies,
	})
	if errors.Is(err, digests.ErrNothingNew) {
		_ = c.Error(&httpError{status: http.StatusUnprocessableEntity, msg: "There are no new stories for this digest; nothing was created.",
			fields: map[string]string{"story_ids": "no story is new since the last digest of this kind"}})
		return
	}
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.audit(c, "digest.create", digestTarget(d.ID), d.Subject)
	s.digestResponse(c, http.StatusCreated, d.ID)
}

func digestID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		_ = c.Error(errStatus(http.StatusNotFound, "There is no such digest."))
		return 0, false
	}
	return id, true
}

func (s *Server) getDigest(c *gin.Context) {
	if !requireScope(c, "digests:read") {
		return
	}
	if id, ok := digestID(c); ok {
		s.digestResponse(c, http.StatusOK, id)
	}
}

// digestAction handles send, pause, resume and cancel.
func (s *Server) digestAction(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !requireScope(c, "digests:write") {
			return
		}
		id, ok := digestID(c)
		if !ok {
			return
		}
		ctx := c.Request.Context()
		var err error
		switch action {
		case "send":
			_, err = s.d.Digests.Start(ctx, id)
		case "pause":
			err = s.d.Digests.Pause(ctx, id, "paused by an editor")
		case "resume":
			err = s.d.Digests.Resume(ctx, id)
		case "cancel":
			err = s.d.Digests.Cancel(ctx, id)
		}
		if errors.Is(err, digests.ErrBadState) {
			_ = c.Error(errStatus(http.StatusConflict, "The digest's status does not allow "+action+"."))
			return
		}
		if err != nil {
			_ = c.Error(err)
			return
		}
		s.audit(c, "digest."+action, digestTarget(id), "")
		s.digestResponse(c, http.StatusOK, id)
	}
}

// testDigestRequest is the body of POST /api/v1/digests/:id/test.
type testDigestRequest struct {
	To           []string `json:"to"`
	SubscriberID int64    `json:"subscriber_id"`
}

func (s *Server) testDigest(c *gin.Context) {
	if !requireScope(c, "digests:write") {
		return
	}
	id, ok := digestID(c)
	if !ok {
		return
	}
	var r testDigestRequest
	if err := c.ShouldBindJSON(&r); err != nil {
		_ = c.Error(jsonError(err))
		return
	}
	n, err := s.d.Digests.SendTest(c.Request.Context(), id, r.To, r.SubscriberID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.audit(c, "digest.test", digestTarget(id), strings.Join(r.To, ", "))
	c.JSON(http.StatusAccepted, gin.H{"status": "queued", "messages": n})
}
