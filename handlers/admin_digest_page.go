package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"herald/digests"
	"herald/fielderr"
	"herald/models"
	"herald/subscribers"
)

// digestStoryRow is a story of a digest, in order.
type digestStoryRow struct {
	Title, URL, Sections string
	Hidden               bool
}

// digestPageData is the data of the "admin_digest" page.
type digestPageData struct {
	adminPage
	D                                     *models.Digest
	Stories                               []digestStoryRow
	Audience, Frequencies                 string
	Created, Scheduled, Started, Finished string
	Progress                              digestProgress
	// Live: the page polls for progress (the status can still change by itself).
	Live                                                          bool
	ShowProgress, ShowResults                                     bool
	CanTest, CanSchedule, CanSend, CanPause, CanResume, CanCancel bool
	Failures                                                      []models.FailedDelivery
	// FailuresAfter is the key of this page of failures, FailuresNext of the next.
	FailuresAfter, FailuresNext int64
	// The action forms' values and errors, kept when one is refused.
	TestTo, TestAs, ScheduleAt string
	Errors                     map[string]string
	Timezone, Now              string
}

// digestActionForm is what a refused action form sends back to the page.
type digestActionForm struct {
	testTo, testAs, scheduleAt string
	errors                     fielderr.Errors
}

// digestFor loads the :id digest; a bad or unknown id is a 404.
func (s *Server) digestFor(c *gin.Context) *models.Digest {
	id, ok := idParam(c)
	if !ok {
		return nil
	}
	d, err := s.d.Store.DigestByID(c.Request.Context(), id)
	if errors.Is(err, models.ErrNotFound) {
		_ = c.Error(errStatus(http.StatusNotFound, "There is no such digest."))
		return nil
	}
	if err != nil {
		_ = c.Error(err)
		return nil
	}
	return d
}

func (s *Server) digestShow(c *gin.Context) {
	if d := s.digestFor(c); d != nil {
		s.showDigest(c, http.StatusOK, d, digestActionForm{})
	}
}

func (s *Server) showDigest(c *gin.Context, status int, d *models.Digest, form digestActionForm) {
	ctx := c.Request.Context()
	data := digestPageData{
		adminPage: s.adminBase(c, "digests"), D: d, Frequencies: strings.ReplaceAll(d.Frequencies, " ", ", "),
		Created: s.digestTime(&d.CreatedAt), Scheduled: s.digestTime(d.ScheduledAt),
		Started: s.digestTime(d.StartedAt), Finished: s.digestTime(d.FinishedAt),
		TestTo: form.testTo, TestAs: form.testAs, ScheduleAt: form.scheduleAt, Errors: form.errors,
		Timezone: s.d.Config.Location.String(), Now: s.d.Now().In(s.d.Config.Location).Format("2006-01-02T15:04"),
	}
	st := d.Status
	data.Live = st == models.DigestScheduled || st == models.DigestSending || st == models.DigestPaused
	data.ShowProgress = st != models.DigestDraft
	data.ShowResults = st == models.DigestSent || st == models.DigestCancelled
	data.CanTest = st != models.DigestCancelled
	data.CanSchedule = st == models.DigestDraft || st == models.DigestScheduled
	data.CanSend = data.CanSchedule
	data.CanPause = st == models.DigestSending
	data.CanResume = st == models.DigestPaused
	data.CanCancel = st != models.DigestSent && st != models.DigestCancelled
	counts, err := s.d.Store.CountDigest(ctx, d.ID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	data.Progress = s.digestProgressOf(d, counts)
	if err := s.digestContents(ctx, d, &data); err != nil {
		_ = c.Error(err)
		return
	}
	if counts.Failed > 0 {
		data.FailuresAfter, _ = strconv.ParseInt(c.Query("failed_after"), 10, 64)
		list, err := s.d.Store.DigestFailures(ctx, d.ID, data.FailuresAfter, digestFailureSize+1)
		if err != nil {
			_ = c.Error(err)
			return
		}
		if len(list) > digestFailureSize {
			list = list[:digestFailureSize]
			data.FailuresNext = list[len(list)-1].ID
		}
		data.Failures = list
	}
	s.page(c, status, "admin_digest", data)
}

// digestContents fills in a digest's stories, in order, and its audience.
func (s *Server) digestContents(ctx context.Context, d *models.Digest, data *digestPageData) error {
	stories, err := s.d.Digests.Stories(ctx, d)
	if err != nil {
		return err
	}
	ids := make([]int64, len(stories))
	for i, st := range stories {
		ids[i] = st.ID
	}
	secs, err := s.d.Store.StorySectionIDs(ctx, ids)
	if err != nil {
		return err
	}
	all, err := s.d.Store.Sections(ctx)
	if err != nil {
		return err
	}
	names, bySlug := map[int64]string{}, map[string]string{}
	for _, sec := range all {
		names[sec.ID], bySlug[sec.Slug] = sec.Name, sec.Name
	}
	for _, st := range stories {
		var secNames []string
		for _, sid := range secs[st.ID] {
			secNames = append(secNames, names[sid])
		}
		sort.Strings(secNames)
		data.Stories = append(data.Stories, digestStoryRow{Title: st.Title, URL: st.URL, Sections: strings.Join(secNames, ", "), Hidden: st.Hidden})
	}
	var audience []string
	for _, slug := range strings.Fields(d.Sections) {
		if n := bySlug[slug]; n != "" {
			audience = append(audience, n)
		} else {
			audience = append(audience, slug)
		}
	}
	data.Audience = strings.Join(audience, ", ")
	return nil
}

// digestProgress is how far a send has gone: the page shows it and
// GET /admin/digests/:id/progress returns it for digest.js.
type digestProgress struct {
	Status      string  `json:"status"`
	PauseReason string  `json:"pause_reason,omitempty"`
	Recipients  int     `json:"recipients"`
	Total       int64   `json:"total"`
	Sent        int64   `json:"sent"`
	Failed      int64   `json:"failed"`
	Skipped     int64   `json:"skipped"`
	Pending     int64   `json:"pending"`
	Done        int64   `json:"done"`
	Percent     int     `json:"percent"`
	Rate        float64 `json:"rate"`
	// ETASeconds is the estimated time left, -1 when unknown.
	ETASeconds     int64 `json:"eta_seconds"`
	ElapsedSeconds int64 `json:"elapsed_seconds"`
}

// digestProgressOf works out a digest's progress from its delivery counts. The
// rate is the average since the send started; digest.js refines it from
// the last seconds' samples while the page is open.
func (s *Server) digestProgressOf(d *models.Digest, c models.DigestCounts) digestProgress {
	p := digestProgress{Status: d.Status, PauseReason: d.PauseReason, Recipients: d.Recipients,
		Sent: c.Sent, Failed: c.Failed, Skipped: c.Skipped, Pending: c.Pending, ETASeconds: -1}
	p.Total = c.Sent + c.Failed + c.Skipped + c.Pending
	p.Done = p.Total - p.Pending
	switch {
	case p.Total > 0:
		p.Percent = int(p.Done * 100 / p.Total)
	case d.Status == models.DigestSent:
		p.Percent = 100
	}
	if d.StartedAt != nil {
		end := s.d.Now()
		if d.FinishedAt != nil {
			end = *d.FinishedAt
		}
		elapsed := end.Sub(*d.StartedAt)
		p.ElapsedSeconds = int64(elapsed.Seconds())
		if elapsed >= time.Second {
			p.Rate = float64(c.Sent+c.Failed) / elapsed.Seconds()
		}
	}
	if p.Rate > 0 && d.Status == models.DigestSending {
		p.ETASeconds = int64(float64(p.Pending) / p.Rate)
	}
	return p
}

// RateText is the send rate for people.
func (p digestProgress) RateText() string {
	if p.Rate <= 0 {
		return "–"
	}
	return strconv.FormatFloat(p.Rate, 'f', 1, 64) + " /s"
}

// ETAText is the estimated time left for people.
func (p digestProgress) ETAText() string {
	switch {
	case p.Pending == 0 && p.Total > 0:
		return "done"
	case p.ETASeconds < 0:
		return "–"
	}
	return digestDuration(time.Duration(p.ETASeconds) * time.Second)
}

// ElapsedText is the time the send has taken so far.
func (p digestProgress) ElapsedText() string {
	return digestDuration(time.Duration(p.ElapsedSeconds) * time.Second)
}

func (s *Server) digestProgressJSON(c *gin.Context) {
	d := s.digestFor(c)
	if d == nil {
		return
	}
	counts, err := s.d.Store.CountDigest(c.Request.Context(), d.ID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, s.digestProgressOf(d, counts))
}

func digestURL(id int64) string    { return "/admin/digests/" + strconv.FormatInt(id, 10) }
func digestTarget(id int64) string { return "digest #" + strconv.FormatInt(id, 10) }

// digestTransition handles send, pause, resume and cancel.
func (s *Server) digestTransition(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		d := s.digestFor(c)
		if d == nil {
			return
		}
		ctx := c.Request.Context()
		var err error
		var msg string
		switch action {
		case "send":
			if d.Status == models.DigestSending || d.Status == models.DigestPaused || d.Status == models.DigestSent {
				s.redirectWith(c, digestURL(d.ID), "This digest is already "+d.Status+": nothing more was sent.")
				return
			}
			var started *models.Digest
			if started, err = s.d.Digests.Start(ctx, d.ID); err == nil {
				msg = fmt.Sprintf("Sending to %d readers.", started.Recipients)
			}
		case "pause":
			err, msg = s.d.Digests.Pause(ctx, d.ID, "paused by "+currentUser(c).Email), "Paused. Messages already on their way still go; resume to send the rest."
		case "resume":
			err, msg = s.d.Digests.Resume(ctx, d.ID), "Sending again."
		case "cancel":
			err, msg = s.d.Digests.Cancel(ctx, d.ID), "Cancelled. Nothing more of this digest will be sent."
		}
		if errors.Is(err, digests.ErrBadState) {
			s.redirectWith(c, digestURL(d.ID), fmt.Sprintf("You cannot %s this digest: it is %s.", action, d.Status))
			return
		}
		if err != nil {
			_ = c.Error(err)
			return
		}
		s.audit(c, "digest."+action, digestTarget(d.ID), d.Subject)
		s.redirectWith(c, digestURL(d.ID), msg)
	}
}

// digestMaxTests caps a test send, as the service does.
const digestMaxTests = 10

func (s *Server) digestTest(c *gin.Context) {
	d := s.digestFor(c)
	if d == nil {
		return
	}
	ctx := c.Request.Context()
	form := digestActionForm{testTo: c.PostForm("to"), testAs: strings.TrimSpace(c.PostForm("as")), errors: fielderr.Errors{}}
	to, msg := digestTestAddresses(form.testTo)
	if msg != "" {
		form.errors["to"] = msg
	}
	var asID int64
	if form.testAs != "" {
		reader, msg, err := s.digestReader(ctx, form.testAs)
		if err != nil {
			_ = c.Error(err)
			return
		}
		if reader == nil {
			form.errors["as"] = msg
		} else if msg, err := s.digestReaderGetsSomething(ctx, d.ID, reader); err != nil {
			_ = c.Error(err)
			return
		} else if msg != "" {
			form.errors["as"] = msg
		} else {
			asID = reader.ID
		}
	}
	if len(form.errors) > 0 {
		s.showDigest(c, http.StatusUnprocessableEntity, d, form)
		return
	}
	n, err := s.d.Digests.SendTest(ctx, d.ID, to, asID)
	var fe fielderr.Errors
	if errors.As(err, &fe) {
		form.errors["to"] = "Check the addresses: " + fe.Error() + "."
		s.showDigest(c, http.StatusUnprocessableEntity, d, form)
		return
	}
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.audit(c, "digest.test", digestTarget(d.ID), d.Subject+" → "+strings.Join(to, ", "))
	msg = fmt.Sprintf("Test queued for %s. It arrives within a minute or so.", strings.Join(to, ", "))
	if len(msg) > 250 { // the flash cookie holds a short message
		msg = fmt.Sprintf("Test queued for %d addresses. It arrives within a minute or so.", n)
	}
	s.redirectWith(c, digestURL(d.ID), msg)
}

// digestTestAddresses splits the typed list (commas, semicolons, spaces or
// lines) and checks each address; a message says what is wrong.
func digestTestAddresses(typed string) ([]string, string) {
	fields := strings.FieldsFunc(typed, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	switch {
	case len(fields) == 0:
		return nil, "Give at least one address."
	case len(fields) > digestMaxTests:
		return nil, fmt.Sprintf("Give at most %d addresses (there are %d).", digestMaxTests, len(fields))
	}
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		addr, _, err := subscribers.ParseAddress(f)
		if err != nil {
			return nil, "This is not an email address: " + strconv.Quote(digestClip(f, 60)) + "."
		}
		if !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	return out, ""
}

// digestMaxAhead is how far ahead a digest may be scheduled: further is
// almost certainly a typing slip in the year.
const digestMaxAhead = 366 * 24 * time.Hour

func (s *Server) digestSchedule(c *gin.Context) {
	d := s.digestFor(c)
	if d == nil {
		return
	}
	form := digestActionForm{scheduleAt: strings.TrimSpace(c.PostForm("scheduled_at")), errors: fielderr.Errors{}}
	loc, now := s.d.Config.Location, s.d.Now()
	at, err := time.ParseInLocation("2006-01-02T15:04", form.scheduleAt, loc)
	if err != nil {
		at, err = time.ParseInLocation("2006-01-02T15:04:05", form.scheduleAt, loc)
	}
	switch {
	case form.scheduleAt == "":
		form.errors["scheduled_at"] = "Choose the date and time to send it."
	case err != nil:
		form.errors["scheduled_at"] = "Give a date and time such as 2026-12-01T07:30."
	case !at.After(now):
		form.errors["scheduled_at"] = "Choose a time in the future: it is now " + now.In(loc).Format("2 Jan 2006 15:04 MST") + "."
	case at.Sub(now) > digestMaxAhead:
		form.errors["scheduled_at"] = "Choose a time within the next year."
	}
	if len(form.errors) > 0 {
		s.showDigest(c, http.StatusUnprocessableEntity, d, form)
		return
	}
	err = s.d.Digests.Schedule(c.Request.Context(), d.ID, at)
	if errors.Is(err, digests.ErrBadState) {
		s.redirectWith(c, digestURL(d.ID), "You cannot schedule this digest: it is "+d.Status+".")
		return
	}
	if err != nil {
		_ = c.Error(err)
		return
	}
	when := s.digestTime(&at)
	s.audit(c, "digest.schedule", digestTarget(d.ID), d.Subject+" at "+when)
	s.redirectWith(c, digestURL(d.ID), "Scheduled for "+when+".")
}
