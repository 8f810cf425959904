package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"herald/models"
	"herald/stories"
)

// storyListBack returns back when it is a page of the story list, for the hide
// buttons to return to the filtered list they were pressed on.
func storyListBack(back string) string {
	if u, err := url.Parse(back); err == nil && u.Scheme == "" && u.Host == "" && u.Path == "/admin/stories" {
		return u.String()
	}
	return "/admin/stories"
}

// parseFormTime parses a time typed into a datetime-local field, as a
// wall-clock time in loc (the site's time zone).
func parseFormTime(v string, loc *time.Location) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// storyForm is the typed state of the add and edit story forms.
type storyForm struct {
	URL, Title, Summary, PublishedAt, ImageURL, Author string
	Sections                                           map[string]bool
}

// storyRow is one story in the list, with its section names.
type storyRow struct {
	models.Story
	Sections []string
}

// storiesData is the data of "admin_stories".
type storiesData struct {
	adminPage
	Stories  []storyRow
	Sections []models.Section
	// Section, Origin and Hidden are the filters in force.
	Section, Origin, Hidden string
	// Filters is the query string of the filters; Newest is the first
	// page's address with them and Older the next page's ("" on the
	// last); Paged is true past the first page.
	Filters string
	Newest  string
	Older   string
	Paged   bool
	// Back is this page's address, where the hide buttons return.
	Back string
}

// storyFormData is the data of "admin_story_form" (add and edit).
type storyFormData struct {
	adminPage
	Story     *models.Story
	Sections  []models.Section
	Form      storyForm
	Errors    map[string]string
	ErrorList []summaryItem
	TimeZone  string
}

const storyPageSize = 50

var storyLabels = []string{"url", "Address", "title", "Title", "summary", "Summary", "sections", "Sections",
	"published_at", "Published", "image_url", "Image address", "author", "Author"}

// storyCursor and parseStoryCursor write and read the keyset cursor of the
// story list: the published time (µs) and id of the last story shown.
func storyCursor(st models.Story) string {
	return strconv.FormatInt(st.PublishedAt.UnixMicro(), 10) + "_" + strconv.FormatInt(st.ID, 10)
}

func parseStoryCursor(v string) (time.Time, int64, bool) {
	a, b, ok := strings.Cut(v, "_")
	us, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || id <= 0 {
		return time.Time{}, 0, false
	}
	return time.UnixMicro(us).UTC(), id, true
}

func (s *Server) adminStoryList(c *gin.Context) {
	names, secs, ok := s.sectionNameMap(c)
	if !ok {
		return
	}
	data := storiesData{adminPage: s.adminBase(c, "stories"), Sections: secs}
	f := models.AdminStoryFilter{Limit: storyPageSize + 1}
	q := url.Values{}
	// Filters come from select boxes; a value that names nothing is
	// dropped rather than reported.
	if slug := c.Query("section"); slug != "" {
		for _, sec := range secs {
			if sec.Slug == slug {
				f.SectionID, data.Section = sec.ID, slug
				q.Set("section", slug)
			}
		}
	}
	switch o := c.Query("origin"); o {
	case models.OriginFeed, models.OriginAPI, models.OriginEditor:
		f.Origin, data.Origin = o, o
		q.Set("origin", o)
	}
	switch h := c.Query("hidden"); h {
	case "hidden", "visible":
		hidden := h == "hidden"
		f.Hidden, data.Hidden = &hidden, h
		q.Set("hidden", h)
	}
	if at, id, ok := parseStoryCursor(c.Query("before")); ok {
		f.AfterPublished, f.AfterID, data.Paged = at, id, true
	}
	list, err := s.d.Store.AdminStories(c.Request.Context(), f)
	if err != nil {
		_ = c.Error(err)
		return
	}
	data.Filters, data.Newest = q.Encode(), "/admin/stories"
	if data.Filters != "" {
		data.Newest += "?" + data.Filters
	}
	if len(list) > storyPageSize {
		list = list[:storyPageSize]
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("before", storyCursor(list[len(list)-1]))
		data.Older = "/admin/stories?" + next.Encode()
	}
	ids := make([]int64, len(list))
	for i, st := range list {
		ids[i] = st.ID
	}
	secIDs, err := s.d.Store.StorySectionIDs(c.Request.Context(), ids)
	if err != nil {
		_ = c.Error(err)
		return
	}
	for _, st := range list {
		row := storyRow{Story: st}
		for _, id := range secIDs[st.ID] {
			row.Sections = append(row.Sections, names[id])
		}
		data.Stories = append(data.Stories, row)
	}
	data.Back = "/admin/stories"
	if raw := c.Request.URL.RawQuery; raw != "" {
		data.Back += "?" + raw
	}
	s.page(c, http.StatusOK, "admin_stories", data)
}

func (s *Server) renderStoryForm(c *gin.Context, status int, st *models.Story, f storyForm, errs map[string]string) {
	_, secs, ok := s.sectionNameMap(c)
	if !ok {
		return
	}
	s.page(c, status, "admin_story_form", storyFormData{
		adminPage: s.adminBase(c, "stories"), Story: st, Sections: secs, Form: f, Errors: errs,
		ErrorList: summaryItems(errs, storyLabels...), TimeZone: s.d.Config.Location.String(),
	})
}

func (s *Server) adminStoryNew(c *gin.Context) {
	f := storyForm{Sections: map[string]bool{}}
	if slug := c.Query("section"); slug != "" {
		f.Sections[slug] = true
	}
	s.renderStoryForm(c, http.StatusOK, nil, f, nil)
}

// localTimeLayout is how a datetime-local field writes a time.
const localTimeLayout = "2006-01-02T15:04"

// readStoryForm reads the posted story form into the service's input and
// checks it as the service will, so that every field's problem shows at
// once. keepPublished is the stored time's text on an edit: sent back
// unchanged, it keeps the stored time to the second.
func (s *Server) readStoryForm(c *gin.Context, keepPublished string) (storyForm, stories.Input, map[string]string, error) {
	f := storyForm{
		URL: strings.TrimSpace(formText(c, "url")), Title: formText(c, "title"), Summary: formText(c, "summary"),
		PublishedAt: strings.TrimSpace(formText(c, "published_at")), ImageURL: strings.TrimSpace(formText(c, "image_url")),
		Author: formText(c, "author"), Sections: map[string]bool{},
	}
	in := stories.Input{URL: f.URL, Title: f.Title, Summary: f.Summary, ImageURL: f.ImageURL, Author: f.Author,
		Origin: models.OriginEditor}
	for _, slug := range formList(c, "sections") {
		f.Sections[slug] = true
		in.Sections = append(in.Sections, slug)
	}
	errs := map[string]string{}
	if f.PublishedAt != "" && f.PublishedAt != keepPublished {
		t, ok := parseFormTime(f.PublishedAt, s.d.Config.Location)
		if ok {
			in.PublishedAt = t
		} else {
			errs["published_at"] = "Enter a date and time like 2026-11-25T09:30, or leave it empty."
		}
	}
	if f.ImageURL != "" {
		// The service drops an image address it cannot use; an editor
		// would rather be told.
		if u, err := url.Parse(f.ImageURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs["image_url"] = "Enter an absolute http or https address, or leave it empty."
		}
	}
	if err := s.d.Stories.Check(c.Request.Context(), in); err != nil && !mergeServiceErrors(errs, err) {
		return f, in, nil, err
	}
	return f, in, errs, nil
}

func (s *Server) adminStoryCreate(c *gin.Context) {
	f, in, errs, err := s.readStoryForm(c, "")
	if err != nil {
		_ = c.Error(err)
		return
	}
	if len(errs) == 0 {
		st, created, err := s.d.Stories.Ingest(c.Request.Context(), in)
		switch {
		case mergeServiceErrors(errs, err):
		case err != nil:
			_ = c.Error(err)
			return
		case created:
			s.audit(c, "story.create", "story:"+strconv.FormatInt(st.ID, 10), st.URL)
			s.redirectWith(c, "/admin/stories", "Added “"+flashTitle(st.Title)+"”.")
			return
		default:
			// The same address again updates the story, as over the API.
			s.audit(c, "story.edit", "story:"+strconv.FormatInt(st.ID, 10), "added again: "+st.URL)
			s.redirectWith(c, "/admin/stories", "A story with this address was already in Herald: “"+flashTitle(st.Title)+"” is updated.")
			return
		}
	}
	s.renderStoryForm(c, http.StatusUnprocessableEntity, nil, f, errs)
}

func (s *Server) storyParam(c *gin.Context) (*models.Story, bool) {
	id, ok := idParam(c)
	if !ok {
		return nil, false
	}
	st, err := s.d.Store.StoryByID(c.Request.Context(), id)
	if err != nil {
		_ = c.Error(err)
		return nil, false
	}
	return st, true
}

func (s *Server) adminStoryEdit(c *gin.Context) {
	st, ok := s.storyParam(c)
	if !ok {
		return
	}
	secIDs, err := s.d.Store.StorySectionIDs(c.Request.Context(), []int64{st.ID})
	if err != nil {
		_ = c.Error(err)
		return
	}
	slugs, ok := s.sectionSlugs(c)
	if !ok {
		return
	}
	f := storyForm{URL: st.URL, Title: st.Title, Summary: st.Summary, ImageURL: st.ImageURL, Author: st.Author,
		PublishedAt: st.PublishedAt.In(s.d.Config.Location).Format(localTimeLayout), Sections: map[string]bool{}}
	for _, id := range secIDs[st.ID] {
		f.Sections[slugs[id]] = true
	}
	s.renderStoryForm(c, http.StatusOK, st, f, nil)
}

func (s *Server) adminStorySave(c *gin.Context) {
	st, ok := s.storyParam(c)
	if !ok {
		return
	}
	f, in, errs, err := s.readStoryForm(c, st.PublishedAt.In(s.d.Config.Location).Format(localTimeLayout))
	if err != nil {
		_ = c.Error(err)
		return
	}
	if len(errs) == 0 {
		saved, err := s.d.Stories.Update(c.Request.Context(), st.ID, in)
		switch {
		case mergeServiceErrors(errs, err):
		case err != nil:
			_ = c.Error(err)
			return
		default:
			s.audit(c, "story.edit", "story:"+strconv.FormatInt(saved.ID, 10), saved.URL)
			s.redirectWith(c, "/admin/stories", "Saved “"+flashTitle(saved.Title)+"”.")
			return
		}
	}
	s.renderStoryForm(c, http.StatusUnprocessableEntity, st, f, errs)
}

// adminStoryHide hides a story from digests, or shows it again.
func (s *Server) adminStoryHide(hidden bool) gin.HandlerFunc {
	action, msg := "story.unhide", "is back in digests."
	if hidden {
		action, msg = "story.hide", "is hidden: no digest will include it."
	}
	return func(c *gin.Context) {
		st, ok := s.storyParam(c)
		if !ok {
			return
		}
		if err := s.d.Stories.SetHidden(c.Request.Context(), st.ID, hidden); err != nil {
			_ = c.Error(err)
			return
		}
		s.audit(c, action, "story:"+strconv.FormatInt(st.ID, 10), st.URL)
		s.redirectWith(c, storyListBack(formText(c, "back")), "“"+flashTitle(st.Title)+"” "+msg)
	}
}

// flashTitle shortens a title for a flash message, which has room for 300
// bytes.
func flashTitle(t string) string {
	if r := []rune(t); len(r) > 80 {
		return string(r[:79]) + "…"
	}
	return t
}
