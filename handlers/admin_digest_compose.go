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
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"herald/digests"
	"herald/fielderr"
	"herald/models"
)

// composeStory is a story offered on the compose page.
type composeStory struct {
	ID                  int64
	Title, URL          string
	Sections, Published string
	Checked             bool
	Order               string
	OrderInvalid        bool
	// order is Order as a number, for sorting the rows.
	order int
}

// digestChoice is a checkbox or option.
type digestChoice struct {
	Value, Label string
	Checked      bool
}

// digestFieldMessage is one line of a form's error summary.
type digestFieldMessage struct{ Field, Label, Message string }

// composeData is the data of the "admin_digest_new" page.
type composeData struct {
	adminPage
	Kind        string
	Kinds       []digestChoice
	Stories     []composeStory
	Subject     string
	Intro       string
	Sections    []digestChoice
	Frequencies []digestChoice
	Errors      map[string]string
	Summary     []digestFieldMessage
}

// composeForm is what the compose form posted.
type composeForm struct {
	kind, subject, intro string
	chosen               []int64 // in the order the editor set
	orders               map[int64]string
	badOrders            map[int64]bool
	sections, freqs      []string
}

var composeLabels = []digestFieldMessage{
	{"kind", "Kind", ""}, {"stories", "Stories", ""}, {"subject", "Subject", ""},
	{"intro", "Introduction", ""}, {"sections", "Sections", ""}, {"frequencies", "Frequencies", ""},
}

func (s *Server) digestNew(c *gin.Context) {
	kind := c.Query("kind")
	if !slices.Contains(digestKinds, kind) {
		kind = models.DigestManual
	}
	form := composeForm{kind: kind, freqs: digestDefaultFrequencies(kind)}
	s.showCompose(c, http.StatusOK, form, nil)
}

func digestDefaultFrequencies(kind string) []string {
	switch kind {
	case models.DigestDaily:
		return []string{models.FrequencyDaily}
	case models.DigestWeekly:
		return []string{models.FrequencyWeekly}
	case models.DigestAlert:
		return []string{models.FrequencyInstant}
	}
	return digestFrequencies
}

func (s *Server) digestCreate(c *gin.Context) {
	ctx := c.Request.Context()
	form, fe := readComposeForm(c)
	sections, err := s.d.Store.Sections(ctx)
	if err != nil {
		_ = c.Error(err)
		return
	}
	for _, slug := range form.sections {
		if !slices.ContainsFunc(sections, func(sec models.Section) bool { return sec.Slug == slug }) {
			fe["sections"] = "There is no section " + strconv.Quote(digestClip(slug, 40)) + "."
		}
	}
	if len(fe) > 0 {
		s.showCompose(c, http.StatusUnprocessableEntity, form, fe)
		return
	}
	d, err := s.d.Digests.Create(ctx, digests.Input{Kind: form.kind, Subject: form.subject, Intro: form.intro,
		StoryIDs: form.chosen, Sections: form.sections, Frequencies: form.freqs})
	var serviceErrs fielderr.Errors
	if errors.As(err, &serviceErrs) {
		for k, v := range serviceErrs {
			if k == "story_ids" {
				k = "stories"
			}
			if v != "" {
				fe[k] = strings.ToUpper(v[:1]) + v[1:] + "."
			}
		}
		s.showCompose(c, http.StatusUnprocessableEntity, form, fe)
		return
	}
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.audit(c, "digest.create", digestTarget(d.ID), d.Subject)
	s.redirectWith(c, digestURL(d.ID), "Draft saved. Preview it and send a test, then schedule or send it.")
}

// readComposeForm reads and checks the compose form; what it cannot check
// without the database (sections, stories) is left to the caller.
func readComposeForm(c *gin.Context) (composeForm, fielderr.Errors) {
	fe := fielderr.Errors{}
	f := composeForm{
		kind: c.PostForm("kind"), subject: strings.TrimSpace(c.PostForm("subject")), intro: strings.TrimSpace(c.PostForm("intro")),
		orders: map[int64]string{}, badOrders: map[int64]bool{},
		sections: c.PostFormArray("section"), freqs: c.PostFormArray("frequency"),
	}
	if !slices.Contains(digestKinds, f.kind) {
		fe["kind"] = "Choose manual, daily, weekly or alert."
		f.kind = models.DigestManual
	}
	type pick struct {
		id    int64
		order int
	}
	var picks []pick
	for _, v := range c.PostFormArray("story") {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			fe["stories"] = "One of the chosen stories is not valid. Reload the page and choose again."
			continue
		}
		if slices.ContainsFunc(picks, func(p pick) bool { return p.id == id }) {
			continue
		}
		typed := strings.TrimSpace(c.PostForm("order-" + v))
		f.orders[id] = typed
		n, err := strconv.Atoi(typed)
		if err != nil || n < 1 || n > 999 {
			f.badOrders[id] = true
			fe["stories"] = "Give each chosen story its position: a whole number from 1 to 999."
		}
		picks = append(picks, pick{id, n})
	}
	// Equal positions keep the order the stories came in.
	sort.SliceStable(picks, func(i, j int) bool { return picks[i].order < picks[j].order })
	for _, p := range picks {
		f.chosen = append(f.chosen, p.id)
	}
	if len(picks) == 0 && fe["stories"] == "" {
		fe["stories"] = "Choose at least one story."
	}
	switch n := utf8.RuneCountInString(f.subject); {
	case !digestPlainText(f.subject):
		fe["subject"] = "The subject has characters that cannot be stored: type it again as plain text."
	case n == 0:
		fe["subject"] = "Write a subject: it is the first thing readers see."
	case n > 200:
		fe["subject"] = fmt.Sprintf("The subject is too long: at most 200 characters (this one has %d).", n)
	}
	if !digestPlainText(f.intro) {
		fe["intro"] = "The introduction has characters that cannot be stored: type it again as plain text."
	} else if n := utf8.RuneCountInString(f.intro); n > 5000 {
		fe["intro"] = fmt.Sprintf("The introduction is too long: at most 5000 characters (this one has %d).", n)
	}
	if len(f.freqs) == 0 {
		fe["frequencies"] = "Choose at least one frequency."
	}
	for _, fr := range f.freqs {
		if !slices.Contains(digestFrequencies, fr) {
			fe["frequencies"] = "A frequency is instant, daily or weekly."
		}
	}
	return f, fe
}

// showCompose renders the compose page with the form's values and errors.
func (s *Server) showCompose(c *gin.Context, status int, f composeForm, fe fielderr.Errors) {
	ctx := c.Request.Context()
	data := composeData{adminPage: s.adminBase(c, "digests"), Kind: f.kind, Subject: f.subject, Intro: f.intro, Errors: fe}
	for _, k := range digestKinds {
		data.Kinds = append(data.Kinds, digestChoice{Value: k, Label: k, Checked: k == f.kind})
	}
	labels := map[string]string{models.FrequencyInstant: "Instant alerts", models.FrequencyDaily: "Daily", models.FrequencyWeekly: "Weekly"}
	for _, fr := range digestFrequencies {
		data.Frequencies = append(data.Frequencies, digestChoice{Value: fr, Label: labels[fr], Checked: slices.Contains(f.freqs, fr)})
	}
	sections, err := s.d.Store.Sections(ctx)
	if err != nil {
		_ = c.Error(err)
		return
	}
	names := map[int64]string{}
	for _, sec := range sections {
		names[sec.ID] = sec.Name
		data.Sections = append(data.Sections, digestChoice{Value: sec.Slug, Label: sec.Name, Checked: slices.Contains(f.sections, sec.Slug)})
	}
	if data.Stories, err = s.composeStories(ctx, f, names); err != nil {
		_ = c.Error(err)
		return
	}
	for _, l := range composeLabels {
		if msg := fe[l.Field]; msg != "" {
			data.Summary = append(data.Summary, digestFieldMessage{Field: l.Field, Label: l.Label, Message: msg})
		}
	}
	s.page(c, status, "admin_digest_new", data)
}

// composeStories lists the stories no digest of the form's kind has
// included yet, newest first, plus any the editor chose that are no longer
// among them, in the order the editor set.
func (s *Server) composeStories(ctx context.Context, f composeForm, sectionNames map[int64]string) ([]composeStory, error) {
	fresh, err := s.d.Store.NewStoriesFor(ctx, f.kind, s.d.Now().Add(-composeWindow), composeStories)
	if err != nil {
		return nil, err
	}
	list := make([]*models.Story, 0, len(fresh))
	seen := map[int64]bool{}
	for i := range fresh {
		list, seen[fresh[i].ID] = append(list, &fresh[i]), true
	}
	var missing []int64
	for _, id := range f.chosen {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		byID, err := s.d.Store.StoriesByID(ctx, missing)
		if err != nil {
			return nil, err
		}
		for _, id := range missing {
			if st := byID[id]; st != nil {
				list = append(list, st)
			}
		}
	}
	ids := make([]int64, len(list))
	for i, st := range list {
		ids[i] = st.ID
	}
	secs, err := s.d.Store.StorySectionIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]composeStory, 0, len(list))
	for i, st := range list {
		var secNames []string
		for _, sid := range secs[st.ID] {
			secNames = append(secNames, sectionNames[sid])
		}
		sort.Strings(secNames)
		row := composeStory{ID: st.ID, Title: st.Title, URL: st.URL, Sections: strings.Join(secNames, ", "),
			Published: s.digestTime(&st.PublishedAt), order: i + 1, Order: strconv.Itoa(i + 1)}
		if typed, ok := f.orders[st.ID]; ok {
			row.Checked, row.Order, row.OrderInvalid = true, typed, f.badOrders[st.ID]
			if n, err := strconv.Atoi(typed); err == nil {
				row.order = n
			} else {
				row.order = 1000 // unreadable positions go last, where the editor sees them
			}
		}
		out = append(out, row)
	}
	// Shown in the order the editor set, so that a returned form looks as sent.
	sort.SliceStable(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out, nil
}
