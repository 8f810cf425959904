package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"herald/models"
	"herald/subscribers"
)

// subscriberPages are the pages of this file's routes.
var subscriberPages = []string{
	"admin_subscribers", "admin_subscriber", "admin_import", "admin_import_preview", "admin_import_result",
}

// subscriberRoutes registers the subscriber list, the reader's page and its
// actions, the CSV export and the two-step CSV import.
func (s *Server) subscriberRoutes(g *gin.RouterGroup) {
	g.GET("/subscribers", s.subscriberList)
	g.GET("/subscribers/export", longRequest, s.exportSubscribers)
	g.GET("/subscribers/import", s.importPage)
	g.POST("/subscribers/import", s.importPreview)
	g.POST("/subscribers/import/confirm", longRequest, s.importConfirm)
	g.GET("/subscribers/:id", s.subscriberPage)
	g.POST("/subscribers/:id/subscriptions", s.editSubscriptions)
	g.POST("/subscribers/:id/unsubscribe", s.unsubscribeSubscriber)
	g.POST("/subscribers/:id/erase", s.eraseSubscriber)
}

const subscriberPageSize = 50

// subscriberStatuses are the statuses the list filters by.
var subscriberStatuses = []string{
	models.StatusPending, models.StatusActive, models.StatusUnsubscribed,
	models.StatusBounced, models.StatusComplained, models.StatusErased,
}

// subscriberListData is the data of the "admin_subscribers" page.
type subscriberListData struct {
	adminPage
	Q, Status, Section string
	Statuses           []string
	Sections           []models.Section
	Page               *models.SubscriberPage
	OlderURL, NewerURL string
	Errors             map[string]string
}

func (s *Server) subscriberList(c *gin.Context) {
	ctx := c.Request.Context()
	data := subscriberListData{
		adminPage: s.adminBase(c, "subscribers"), Statuses: subscriberStatuses,
		Q: strings.TrimSpace(c.Query("q")), Status: c.Query("status"), Section: c.Query("section"),
		Page: &models.SubscriberPage{}, Errors: map[string]string{},
	}
	secs, err := s.d.Store.Sections(ctx)
	if err != nil {
		_ = c.Error(err)
		return
	}
	data.Sections = secs
	f := models.SubscriberFilter{Prefix: subscribers.SearchPrefix(data.Q), Limit: subscriberPageSize}
	if len(f.Prefix) > 320 {
		data.Errors["q"] = "An address is at most 320 characters."
	}
	if data.Status != "" {
		if !slices.Contains(subscriberStatuses, data.Status) {
			data.Errors["status"] = "Choose a status from the list."
		}
		f.Status = data.Status
	}
	if data.Section != "" {
		for _, sec := range secs {
			if sec.Slug == data.Section {
				f.SectionID = sec.ID
			}
		}
		if f.SectionID == 0 {
			data.Errors["section"] = "There is no such section."
		}
	}
	// A cursor that is not a positive number is ignored: the first page.
	f.Before, _ = strconv.ParseInt(c.Query("before"), 10, 64)
	f.After, _ = strconv.ParseInt(c.Query("after"), 10, 64)
	f.Before, f.After = max(f.Before, 0), max(f.After, 0)
	if f.Before > 0 {
		f.After = 0
	}
	if len(data.Errors) > 0 {
		s.page(c, http.StatusUnprocessableEntity, "admin_subscribers", data)
		return
	}
	page, err := s.d.Store.AdminSubscribers(ctx, f)
	if err != nil {
		_ = c.Error(err)
		return
	}
	data.Page = page
	link := func(key string, id int64) string {
		v := url.Values{}
		for k, val := range map[string]string{"q": data.Q, "status": data.Status, "section": data.Section} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set(key, strconv.FormatInt(id, 10))
		return "/admin/subscribers?" + v.Encode()
	}
	if page.Older > 0 {
		data.OlderURL = link("before", page.Older)
	}
	if page.Newer > 0 {
		data.NewerURL = link("after", page.Newer)
	}
	s.page(c, http.StatusOK, "admin_subscribers", data)
}

// subscriberPageData is the data of the "admin_subscriber" page.
type subscriberPageData struct {
	adminPage
	Sub        *models.Subscriber
	Choices    []preferenceRow
	Deliveries []models.Delivery
	Events     []models.ConsentEvent
	// Checked counts the consent events verified; Break is the first broken
	// link (nil when the chain verifies).
	Checked int64
	Break   *models.ChainBreak
	// Editable: the subscriptions form is shown (not for unsubscribed or
	// erased readers: only the reader can subscribe again).
	Editable bool
	Errors   map[string]string
}

// subscriberLookup loads the :id subscriber; a bad or unknown id is a 404.
func (s *Server) subscriberLookup(c *gin.Context) *models.Subscriber {
	id, ok := idParam(c)
	if !ok {
		return nil
	}
	sub, err := s.d.Store.SubscriberByID(c.Request.Context(), id)
	if err != nil {
		if errors.Is(err, models.ErrNotFound) {
			err = errStatus(http.StatusNotFound, "There is no reader with this number.")
		}
		_ = c.Error(err)
		return nil
	}
	return sub
}

func (s *Server) subscriberPage(c *gin.Context) {
	if sub := s.subscriberLookup(c); sub != nil {
		s.renderSubscriber(c, http.StatusOK, sub, nil, nil)
	}
}

// renderSubscriber shows the reader's page; picked, when set, are the
// sections of a rejected form, shown as they were submitted.
func (s *Server) renderSubscriber(c *gin.Context, status int, sub *models.Subscriber, picked map[string]string, errs map[string]string) {
	ctx := c.Request.Context()
	st := s.d.Store
	subs, err := st.Subscriptions(ctx, sub.ID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	secs, err := st.Sections(ctx)
	if err != nil {
		_ = c.Error(err)
		return
	}
	ds, err := st.DeliveriesFor(ctx, sub.ID, 50)
	if err != nil {
		_ = c.Error(err)
		return
	}
	evs, err := st.ConsentEvents(ctx, sub.ID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	checked, brk, err := st.VerifySubscriberConsent(ctx, sub.ID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if picked == nil {
		picked = map[string]string{}
		for _, v := range subs {
			picked[v.Slug] = v.Frequency
		}
	}
	data := subscriberPageData{
		adminPage: s.adminBase(c, "subscribers"), Sub: sub, Deliveries: ds, Events: evs,
		Checked: checked, Break: brk, Errors: errs,
		Editable: sub.Status != models.StatusUnsubscribed && sub.Status != models.StatusErased,
	}
	for _, sec := range secs {
		freq, ok := picked[sec.Slug]
		if !ok {
			freq = models.FrequencyDaily
		}
		data.Choices = append(data.Choices, preferenceRow{Slug: sec.Slug, Name: sec.Name, Checked: ok, Frequency: freq})
	}
	s.page(c, status, "admin_subscriber", data)
}

func subscriberTarget(id int64) string { return "subscriber #" + strconv.FormatInt(id, 10) }

// editSubscriptions reads "sections" (checked slugs) and "frequency_SLUG"
// for each (or one "frequency" for all) and replaces the subscriptions.
func (s *Server) editSubscriptions(c *gin.Context) {
	sub := s.subscriberLookup(c)
	if sub == nil {
		return
	}
	var choices []subscribers.Choice
	picked := map[string]string{}
	var pairs []string
	for _, slug := range c.PostFormArray("sections") {
		freq := c.PostForm("frequency_" + slug)
		if freq == "" {
			freq = c.PostForm("frequency")
		}
		choices = append(choices, subscribers.Choice{Section: slug, Frequency: freq})
		picked[slug] = freq
		pairs = append(pairs, slug+":"+freq)
	}
	err := s.d.Subscribers.SetSubscriptions(c.Request.Context(), sub.ID, choices, subscribers.AdminMeta(currentUser(c).Email))
	var fe subscribers.FieldErrors
	switch {
	case errors.As(err, &fe):
		s.renderSubscriber(c, http.StatusUnprocessableEntity, sub, picked, fe)
		return
	case errors.Is(err, subscribers.ErrNotEditable):
		s.renderSubscriber(c, http.StatusUnprocessableEntity, sub, picked, map[string]string{
			"sections": "This reader is " + sub.Status + ": only they can subscribe again, from a signup form.",
		})
		return
	case err != nil:
		_ = c.Error(err)
		return
	}
	detail := strings.Join(pairs, " ")
	msg := "Subscriptions saved."
	if len(pairs) == 0 {
		detail, msg = "no sections: unsubscribed", "No sections left: the reader is unsubscribed."
	}
	s.audit(c, "subscriber.edit", subscriberTarget(sub.ID), detail)
	s.redirectWith(c, "/admin/subscribers/"+strconv.FormatInt(sub.ID, 10), msg)
}

func (s *Server) unsubscribeSubscriber(c *gin.Context) {
	sub := s.subscriberLookup(c)
	if sub == nil {
		return
	}
	if sub.Status != models.StatusActive && sub.Status != models.StatusPending {
		s.redirectWith(c, "/admin/subscribers/"+strconv.FormatInt(sub.ID, 10), "The reader is "+sub.Status+": nothing to unsubscribe.")
		return
	}
	if err := s.d.Subscribers.UnsubscribeByID(c.Request.Context(), sub.ID, subscribers.AdminMeta(currentUser(c).Email)); err != nil {
		_ = c.Error(err)
		return
	}
	s.audit(c, "subscriber.unsubscribe", subscriberTarget(sub.ID), "was "+sub.Status)
	s.redirectWith(c, "/admin/subscribers/"+strconv.FormatInt(sub.ID, 10), "The reader is unsubscribed.")
}

func (s *Server) eraseSubscriber(c *gin.Context) {
	sub := s.subscriberLookup(c)
	if sub == nil {
		return
	}
	if err := s.d.Subscribers.EraseSubscriber(c.Request.Context(), sub.ID, subscribers.AdminMeta(currentUser(c).Email)); err != nil {
		_ = c.Error(err)
		return
	}
	// The audit entry names the reader by number only: the address is gone.
	s.audit(c, "subscriber.erase", subscriberTarget(sub.ID), "")
	s.redirectWith(c, "/admin/subscribers/"+strconv.FormatInt(sub.ID, 10),
		"The reader was erased: only the suppression hash of the address is left.")
}

// exportSubscribers streams every subscriber as CSV, the CLI export's columns.
func (s *Server) exportSubscribers(c *gin.Context) {
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="subscribers-`+s.d.Now().UTC().Format("2006-01-02")+`.csv"`)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	// The export is audited even when the download is cut short: part of
	// the data may have left.
	c.Request = c.Request.WithContext(context.WithoutCancel(c.Request.Context()))
	n, err := s.d.Subscribers.ExportCSV(c.Request.Context(), c.Writer)
	if err != nil {
		// Headers and part of the file are out: all that is left is to log
		// it; the download ends short.
		s.d.Logger.ErrorContext(c.Request.Context(), "export subscribers", slog.Int("rows", n), slog.Any("error", err))
	}
	s.audit(c, "subscriber.export", "subscribers", fmt.Sprintf("%d rows", n))
}
