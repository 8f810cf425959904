package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"herald/models"
	"herald/stories"
)

// feedForm is the typed state of the add and edit feed forms.
type feedForm struct {
	URL, Section, Categories, Interval string
}

// feedRow is one feed in the list.
type feedRow struct {
	models.Feed
	Section    string
	Interval   string
	Status     string
	Categories int
}

// feedsData is the data of "admin_feeds" and "admin_feed_form".
type feedsData struct {
	adminPage
	Feeds     []feedRow
	Feed      *models.Feed
	Sections  []models.Section
	Form      feedForm
	Errors    map[string]string
	ErrorList []summaryItem
}

var feedLabels = []string{"url", "Feed address", "section", "Default section", "categories", "Categories", "poll_interval", "Poll every"}

func (s *Server) adminFeedList(c *gin.Context) {
	feeds, err := s.d.Store.Feeds(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return
	}
	names, _, ok := s.sectionNameMap(c)
	if !ok {
		return
	}
	data := feedsData{adminPage: s.adminBase(c, "feeds")}
	for _, f := range feeds {
		row := feedRow{Feed: f, Section: names[f.SectionID], Interval: shortDuration(stories.Interval(&f)),
			Status: f.LastStatus, Categories: len(stories.CategoryMap(&f))}
		if row.Status == "" {
			row.Status = "pending"
		}
		data.Feeds = append(data.Feeds, row)
	}
	s.page(c, http.StatusOK, "admin_feeds", data)
}

func (s *Server) renderFeedForm(c *gin.Context, status int, feed *models.Feed, f feedForm, errs map[string]string) {
	_, secs, ok := s.sectionNameMap(c)
	if !ok {
		return
	}
	s.page(c, status, "admin_feed_form", feedsData{
		adminPage: s.adminBase(c, "feeds"), Feed: feed, Sections: secs, Form: f, Errors: errs,
		ErrorList: summaryItems(errs, feedLabels...),
	})
}

func (s *Server) adminFeedNew(c *gin.Context) {
	s.renderFeedForm(c, http.StatusOK, nil, feedForm{Interval: shortDuration(stories.DefaultPollInterval)}, nil)
}

// readFeedForm reads the posted feed form and checks it as the stories
// service will, so that every field's problem shows at once.
func (s *Server) readFeedForm(c *gin.Context) (feedForm, stories.FeedInput, map[string]string, error) {
	f := feedForm{URL: strings.TrimSpace(formText(c, "url")), Section: formText(c, "section"),
		Categories: formText(c, "categories"), Interval: strings.TrimSpace(formText(c, "poll_interval"))}
	in := stories.FeedInput{URL: f.URL, Section: f.Section, PollInterval: f.Interval}
	errs := map[string]string{}
	cats, err := stories.ParseCategoryLines(f.Categories)
	if err != nil {
		errs["categories"] = err.Error() + "."
	} else {
		in.Categories = cats
	}
	if err := s.d.Stories.CheckFeed(c.Request.Context(), in); err != nil && !mergeServiceErrors(errs, err) {
		return f, in, nil, err
	}
	return f, in, errs, nil
}

func (s *Server) adminFeedCreate(c *gin.Context) {
	f, in, errs, err := s.readFeedForm(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if len(errs) == 0 {
		feed, err := s.d.Stories.AddFeed(c.Request.Context(), in)
		switch {
		case errors.Is(err, stories.ErrFeedExists):
			errs["url"] = "Herald already polls this feed."
		case mergeServiceErrors(errs, err):
		case err != nil:
			_ = c.Error(err)
			return
		default:
			s.audit(c, "feed.create", "feed:"+strconv.FormatInt(feed.ID, 10), feed.URL)
			s.redirectWith(c, "/admin/feeds", "Added the feed. Herald polls it within a minute.")
			return
		}
	}
	s.renderFeedForm(c, http.StatusUnprocessableEntity, nil, f, errs)
}

func (s *Server) feedParam(c *gin.Context) (*models.Feed, bool) {
	id, ok := idParam(c)
	if !ok {
		return nil, false
	}
	f, err := s.d.Store.FeedByID(c.Request.Context(), id)
	if err != nil {
		_ = c.Error(err)
		return nil, false
	}
	return f, true
}

func (s *Server) adminFeedEdit(c *gin.Context) {
	feed, ok := s.feedParam(c)
	if !ok {
		return
	}
	slugs, ok := s.sectionSlugs(c)
	if !ok {
		return
	}
	s.renderFeedForm(c, http.StatusOK, feed, feedForm{
		URL: feed.URL, Section: slugs[feed.SectionID], Categories: stories.CategoryLines(feed),
		Interval: shortDuration(stories.Interval(feed)),
	}, nil)
}

func (s *Server) adminFeedSave(c *gin.Context) {
	feed, ok := s.feedParam(c)
	if !ok {
		return
	}
	f, in, errs, err := s.readFeedForm(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if len(errs) == 0 {
		_, err := s.d.Stories.UpdateFeed(c.Request.Context(), feed.ID, in)
		switch {
		case errors.Is(err, stories.ErrFeedExists):
			errs["url"] = "Another feed has this address."
		case mergeServiceErrors(errs, err):
		case err != nil:
			_ = c.Error(err)
			return
		default:
			detail := in.URL
			if in.URL != feed.URL {
				detail = feed.URL + " → " + in.URL
			}
			s.audit(c, "feed.edit", "feed:"+strconv.FormatInt(feed.ID, 10), detail)
			s.redirectWith(c, "/admin/feeds", "Saved the feed.")
			return
		}
	}
	s.renderFeedForm(c, http.StatusUnprocessableEntity, feed, f, errs)
}

// adminFeedPollNow makes a feed due now; the poller takes it on its next
// round rather than the request fetching it, so a slow feed never holds
// up the page and two instances never poll it twice.
func (s *Server) adminFeedPollNow(c *gin.Context) {
	id, ok := idParam(c)
	if !ok {
		return
	}
	if err := s.d.Store.PollFeedNow(c.Request.Context(), id, s.d.Now()); err != nil {
		_ = c.Error(err)
		return
	}
	s.audit(c, "feed.poll", "feed:"+strconv.FormatInt(id, 10), "poll now")
	s.redirectWith(c, "/admin/feeds", "The feed is due now: Herald polls it within a minute.")
}
