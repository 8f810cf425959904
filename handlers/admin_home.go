package handlers

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"herald/models"
)

// homePages are the pages of homeRoutes.
var homePages = []string{"admin_dashboard", "admin_account", "admin_audit"}

// homeRoutes registers the dashboard, the user's own account and the audit log.
func (s *Server) homeRoutes(g *gin.RouterGroup) {
	g.GET("", s.dashboard)
	g.GET("/account", s.accountPage)
	g.POST("/account/password", s.changePassword)
	g.GET("/audit", s.auditPage)
}

// sectionFigures is one row of the dashboard's readers-by-section table.
type sectionFigures struct {
	Name                          string
	Slug                          string
	Active, Pending, Unsubscribed int64
}

// digestRow is a digest with its delivery counts.
type digestRow struct {
	models.Digest
	models.DigestCounts
}

// dashboardData is the data of the "admin_dashboard" page.
type dashboardData struct {
	adminPage
	Stats      *dashStats
	Totals     map[string]int64
	Sections   []sectionFigures
	Chart      dailyChart
	ChartDays  int
	Digests    []digestRow
	Stories    []models.Story
	Warnings   []dashWarning
	Subscribed int64
}

// dashWarning is something on the dashboard that needs an editor's action.
type dashWarning struct {
	Bad  bool
	Text string
	Link string
	Act  string
}

func (s *Server) dashboard(c *gin.Context) {
	ctx := c.Request.Context()
	st, err := s.stats.get(ctx)
	if err != nil {
		_ = c.Error(err)
		return
	}
	data := dashboardData{adminPage: s.adminBase(c, "dashboard"), Stats: st, Totals: st.ByStatus, ChartDays: 30}
	if c.Query("days") == "90" {
		data.ChartDays = 90
	}
	data.Chart = st.chart(data.ChartDays)
	sections, err := s.d.Store.Sections(ctx)
	if err != nil {
		_ = c.Error(err)
		return
	}
	data.Sections = make([]sectionFigures, len(sections))
	bySection := make(map[int64]*sectionFigures, len(sections))
	for i, sec := range sections {
		data.Sections[i] = sectionFigures{Name: sec.Name, Slug: sec.Slug}
		bySection[sec.ID] = &data.Sections[i]
	}
	for _, n := range st.BySection {
		f := bySection[n.SectionID]
		if f == nil {
			continue
		}
		switch n.Status {
		case models.StatusActive:
			f.Active += n.N
		case models.StatusPending:
			f.Pending += n.N
		case models.StatusUnsubscribed:
			f.Unsubscribed += n.N
		}
	}
	if data.Digests, err = s.digestRows(c, 6); err != nil {
		_ = c.Error(err)
		return
	}
	if data.Stories, err = s.d.Store.ListStories(ctx, models.StoryFilter{Limit: 6}); err != nil {
		_ = c.Error(err)
		return
	}
	if data.Warnings, err = s.warnings(c, st); err != nil {
		_ = c.Error(err)
		return
	}
	s.page(c, http.StatusOK, "admin_dashboard", data)
}

func (s *Server) digestRows(c *gin.Context, n int) ([]digestRow, error) {
	ds, err := s.d.Store.RecentDigests(c.Request.Context(), n)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	counts, err := s.d.Store.CountDigests(c.Request.Context(), ids)
	if err != nil {
		return nil, err
	}
	out := make([]digestRow, 0, len(ds))
	for _, d := range ds {
		out = append(out, digestRow{Digest: d, DigestCounts: counts[d.ID]})
	}
	return out, nil
}

// warnings lists what needs action: mail not going out, broken feeds,
// paused sends and drafts waiting for review.
func (s *Server) warnings(c *gin.Context, st *dashStats) ([]dashWarning, error) {
	ctx := c.Request.Context()
	var out []dashWarning
	if st.Retrying > 0 {
		n := strconv.FormatInt(st.Retrying, 10)
		if st.Retrying >= statsMaxRetry {
			n += "+"
		}
		w := dashWarning{Bad: true, Text: n + " emails are waiting to be retried after the mail server refused or failed them."}
		if st.RetryErr != "" {
			w.Text += " Last error: " + st.RetryErr
		}
		if currentUser(c).Role == models.RoleAdmin {
			w.Link, w.Act = "/admin/settings", "Test the SMTP connection"
		}
		out = append(out, w)
	}
	feeds, err := s.d.Store.BrokenFeeds(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range feeds {
		out = append(out, dashWarning{Bad: true, Text: "The feed " + f.URL + " failed: " + f.LastError, Link: "/admin/feeds", Act: "See feeds"})
	}
	paused, err := s.d.Store.PausedDigests(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range paused {
		text := "“" + d.Subject + "” is paused."
		if d.PauseReason != "" {
			text += " " + d.PauseReason
		}
		out = append(out, dashWarning{Text: text, Link: "/admin/digests/" + strconv.FormatInt(d.ID, 10), Act: "Open the digest"})
	}
	drafts, err := s.d.Store.DigestsByStatus(ctx, models.DigestDraft)
	if err != nil {
		return nil, err
	}
	for _, d := range drafts {
		if d.Kind == models.DigestDaily || d.Kind == models.DigestWeekly {
			out = append(out, dashWarning{Text: "The " + d.Kind + " digest “" + d.Subject + "” is waiting for review.",
				Link: "/admin/digests/" + strconv.FormatInt(d.ID, 10), Act: "Review and send"})
		}
	}
	return out, nil
}

// accountData is the data of the "admin_account" page.
type accountData struct {
	adminPage
	Errors map[string]string
}

func (s *Server) accountPage(c *gin.Context) {
	s.page(c, http.StatusOK, "admin_account", accountData{adminPage: s.adminBase(c, "account")})
}

// changePassword changes the user's own password; their other sessions end.
func (s *Server) changePassword(c *gin.Context) {
	u := currentUser(c)
	sess := c.MustGet(ctxSession).(*models.Session)
	errs, err := s.d.Accounts.ChangePassword(c.Request.Context(), u.ID, sess.ID,
		c.PostForm("current_password"), c.PostForm("new_password"), c.PostForm("new_password_confirm"))
	if err != nil {
		_ = c.Error(err)
		return
	}
	if len(errs) > 0 {
		s.page(c, http.StatusUnprocessableEntity, "admin_account", accountData{adminPage: s.adminBase(c, "account"), Errors: errs})
		return
	}
	s.audit(c, "user.password", u.Email, "changed own password; other sessions ended")
	s.redirectWith(c, "/admin/account", "Your password is changed. You were logged out everywhere else.")
}

// auditData is the data of the "admin_audit" page.
type auditData struct {
	adminPage
	Entries []models.AuditEntry
	Actions []string
	Action  string
	Older   int64
}

const auditPageSize = 100

func (s *Server) auditPage(c *gin.Context) {
	ctx := c.Request.Context()
	data := auditData{adminPage: s.adminBase(c, "audit"), Action: cleanText(c.Query("action"))}
	before, _ := strconv.ParseInt(c.Query("before"), 10, 64)
	entries, err := s.d.Store.AuditEntries(ctx, models.AuditFilter{Action: data.Action, BeforeID: before, Limit: auditPageSize + 1})
	if err != nil {
		_ = c.Error(err)
		return
	}
	if len(entries) > auditPageSize {
		entries = entries[:auditPageSize]
		data.Older = entries[len(entries)-1].ID
	}
	data.Entries = entries
	if data.Actions, err = s.d.Store.AuditActions(ctx); err != nil {
		_ = c.Error(err)
		return
	}
	s.page(c, http.StatusOK, "admin_audit", data)
}
