package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/digests"
	"herald/models"
	"herald/subscribers"
)

// digestWorld is a harness with sections, stories and readers for the
// digest pages.
type digestWorld struct {
	*harness
	ctx      context.Context
	sections map[string]int64 // id by slug
	client   *http.Client
	csrf     string
}

func newDigestWorld(t *testing.T, dsn string, env map[string]string) *digestWorld {
	t.Helper()
	h := newHarness(t, dsn, env)
	w := &digestWorld{harness: h, ctx: context.Background(), sections: map[string]int64{}}
	secs, err := h.store.SectionsBySlug(w.ctx, []string{"politics-uk", "world"})
	if err != nil {
		t.Fatal(err)
	}
	for slug, sec := range secs {
		w.sections[slug] = sec.ID
	}
	w.client, w.csrf = h.adminClient(models.RoleEditor)
	return w
}

// story adds a story in a section, published age before the harness's now.
func (w *digestWorld) story(title, section string, age time.Duration) int64 {
	w.t.Helper()
	at := w.clock.Now().Add(-age)
	st := &models.Story{URL: "https://news.example.com/" + strings.ReplaceAll(strings.ToLower(title), " ", "-"), Title: title,
		Summary: "<p>In brief: " + title + ".</p>", Origin: models.OriginAPI, PublishedAt: at, CreatedAt: at, UpdatedAt: at}
	if _, err := w.store.UpsertStory(w.ctx, st, []int64{w.sections[section]}); err != nil {
		w.t.Fatal(err)
	}
	return st.ID
}

// reader adds an active reader following section at freq.
func (w *digestWorld) reader(email, section, freq string) *models.Subscriber {
	w.t.Helper()
	now := w.clock.Now()
	sub := &models.Subscriber{Email: email, EmailNorm: strings.ToLower(email), Status: models.StatusActive, CreatedAt: now, UpdatedAt: now, ConfirmedAt: &now}
	if err := w.store.CreateSubscribers(w.ctx, []*models.Subscriber{sub}); err != nil {
		w.t.Fatal(err)
	}
	if err := w.store.CreateSubscriptions(w.ctx, map[int64][]models.Subscription{sub.ID: {{SectionID: w.sections[section], Frequency: freq, CreatedAt: now}}}); err != nil {
		w.t.Fatal(err)
	}
	return sub
}

// draft makes a draft manual digest of the stories through the service.
func (w *digestWorld) draft(subject string, storyIDs ...int64) *models.Digest {
	w.t.Helper()
	d, err := digests.New(w.store, digests.Config{Now: w.clock.Now}).Create(w.ctx, digests.Input{
		Kind: models.DigestManual, Subject: subject, StoryIDs: storyIDs})
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

func (w *digestWorld) get(path string) response {
	w.t.Helper()
	return w.do(w.client, http.MethodGet, path, "", "", nil)
}

func (w *digestWorld) post(path string, v url.Values) response {
	w.t.Helper()
	return w.adminPost(w.client, w.csrf, path, v)
}

// flash follows a redirect and returns the page it leads to.
func (w *digestWorld) follow(r response) response {
	w.t.Helper()
	if r.status != http.StatusSeeOther {
		w.t.Fatalf("want a redirect, got %d: %.400s", r.status, r.body)
	}
	return w.get(r.header.Get("Location"))
}

func (w *digestWorld) digest(id int64) *models.Digest {
	w.t.Helper()
	d, err := w.store.DigestByID(w.ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

// audited reports whether the audit log has action on target.
func (w *digestWorld) audited(action, target string) bool {
	w.t.Helper()
	entries, err := w.store.AuditEntries(w.ctx, models.AuditFilter{Action: action, Limit: 100})
	if err != nil {
		w.t.Fatal(err)
	}
	return slices.ContainsFunc(entries, func(e models.AuditEntry) bool { return e.Target == target && e.UserEmail != "" })
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(body, want) {
			t.Errorf("%s: missing %q in:\n%.3000s", what, want, body)
		}
	}
}

func TestAdminDigestComposeRefusesBadInput(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		w := newDigestWorld(t, dsn, nil)
		older := w.story("Budget vote tonight", "politics-uk", 2*time.Hour)
		w.story("Floods in the north", "world", time.Hour)

		page := w.get("/admin/digests/new")
		if page.status != http.StatusOK {
			t.Fatalf("compose page: %d %.300s", page.status, page.body)
		}
		mustContain(t, "compose page", page.body, "Budget vote tonight", "Floods in the north", "Politics UK", "World",
			`name="csrf_token"`, `name="story"`, `name="frequency" value="daily"`, `/static/digest.js`)
		if strings.Index(page.body, "Floods in the north") > strings.Index(page.body, "Budget vote tonight") {
			t.Error("compose page: stories are not newest first")
		}

		long := strings.Repeat("x", 201)
		manyStories := url.Values{"kind": {"manual"}, "subject": {"S"}, "frequency": {"daily"}}
		for i := range 51 {
			filler := strconv.FormatInt(w.story(fmt.Sprintf("Filler %d", i), "world", 3*time.Hour), 10)
			manyStories.Add("story", filler)
			manyStories.Set("order-"+filler, strconv.Itoa(i+1))
		}
		id := strconv.FormatInt(older, 10)
		cases := []struct {
			name   string
			form   url.Values
			fields []string
			kept   []string
		}{
			{"nothing chosen, no subject", url.Values{"kind": {"manual"}, "intro": {"Kept intro"}, "frequency": {"daily"}},
				[]string{"stories", "subject"}, []string{"Kept intro"}},
			{"subject too long", url.Values{"kind": {"manual"}, "story": {id}, "order-" + id: {"1"}, "subject": {long}, "frequency": {"daily"}},
				[]string{"subject"}, []string{`value="` + long + `"`, "too long"}},
			{"unknown section", url.Values{"kind": {"manual"}, "story": {id}, "order-" + id: {"1"}, "subject": {"Kept subject"}, "section": {"sport"}, "frequency": {"daily"}},
				[]string{"sections"}, []string{`value="Kept subject"`, "sport"}},
			{"bad frequency", url.Values{"kind": {"manual"}, "story": {id}, "order-" + id: {"1"}, "subject": {"S"}, "frequency": {"hourly"}},
				[]string{"frequencies"}, nil},
			{"no frequency", url.Values{"kind": {"manual"}, "story": {id}, "order-" + id: {"1"}, "subject": {"S"}},
				[]string{"frequencies"}, nil},
			{"bad kind", url.Values{"kind": {"yearly"}, "story": {id}, "order-" + id: {"1"}, "subject": {"S"}, "frequency": {"daily"}},
				[]string{"kind"}, nil},
			{"bad story id", url.Values{"kind": {"manual"}, "story": {"abc"}, "subject": {"S"}, "frequency": {"daily"}},
				[]string{"stories"}, nil},
			{"unknown story", url.Values{"kind": {"manual"}, "story": {"99999"}, "order-99999": {"1"}, "subject": {"S"}, "frequency": {"daily"}},
				[]string{"stories"}, []string{"99999"}},
			{"bad position", url.Values{"kind": {"manual"}, "story": {id}, "order-" + id: {"first"}, "subject": {"S"}, "frequency": {"daily"}},
				[]string{"stories"}, []string{`value="first"`, `aria-invalid="true" aria-describedby="stories-error"`}},
			{"subject not text", url.Values{"kind": {"manual"}, "story": {id}, "order-" + id: {"1"}, "subject": {"bad \xff\xfe"}, "frequency": {"daily"}},
				[]string{"subject"}, nil},
			{"intro with NUL", url.Values{"kind": {"manual"}, "story": {id}, "order-" + id: {"1"}, "subject": {"S"}, "intro": {"a\x00b"}, "frequency": {"daily"}},
				[]string{"intro"}, nil},
			{"too many stories", manyStories,
				[]string{"stories"}, []string{"At most 50 stories."}},
			{"intro too long", url.Values{"kind": {"manual"}, "story": {id}, "order-" + id: {"1"}, "subject": {"S"}, "intro": {strings.Repeat("y", 5001)}, "frequency": {"daily"}},
				[]string{"intro"}, nil},
		}
		for _, tc := range cases {
			r := w.post("/admin/digests", tc.form)
			if r.status != http.StatusUnprocessableEntity {
				t.Errorf("%s: status %d, want 422: %.300s", tc.name, r.status, r.body)
				continue
			}
			mustContain(t, tc.name, r.body, `class="error-summary"`)
			for _, f := range tc.fields {
				mustContain(t, tc.name, r.body, `<p class="field-error" id="`+f+`-error">`)
			}
			mustContain(t, tc.name, r.body, tc.kept...)
		}
		r := w.post("/admin/digests", url.Values{"kind": {"manual"}, "subject": {"S"}, "frequency": {"daily"}})
		mustContain(t, "subject field", r.body, `id="subject" name="subject" value="S"`)
		r = w.post("/admin/digests", url.Values{"kind": {"manual"}, "story": {id}, "order-" + id: {"1"}, "frequency": {"daily"}})
		mustContain(t, "empty subject", r.body, `aria-invalid="true" aria-describedby="subject-error"`)
		if list, _ := w.store.ListDigests(w.ctx, models.DigestFilter{}); len(list) != 0 {
			t.Fatalf("refused forms created %d digests", len(list))
		}
	})
}

func TestAdminDigestComposeKeepsChosenOrder(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		w := newDigestWorld(t, dsn, nil)
		a := w.story("Budget vote tonight", "politics-uk", 2*time.Hour)
		b := w.story("Floods in the north", "world", time.Hour)
		w.story("Not chosen", "world", 3*time.Hour)
		ids := func(id int64) string { return strconv.FormatInt(id, 10) }
		// The newer story is listed first, but the editor puts it second.
		form := url.Values{"kind": {"manual"}, "story": {ids(b), ids(a)}, "order-" + ids(b): {"2"}, "order-" + ids(a): {"1"},
			"subject": {"  Tonight's   news "}, "intro": {"Hello"}, "section": {"politics-uk", "world"}, "frequency": {"daily", "weekly"}}
		r := w.post("/admin/digests", form)
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/admin/digests/") {
			t.Fatalf("create: %d %s %.300s", r.status, r.header.Get("Location"), r.body)
		}
		id, _ := strconv.ParseInt(strings.TrimPrefix(r.header.Get("Location"), "/admin/digests/"), 10, 64)
		d := w.digest(id)
		if d.Status != models.DigestDraft || d.Subject != "Tonight's news" || d.Sections != "politics-uk world" || d.Frequencies != "daily weekly" {
			t.Fatalf("digest: %+v", d)
		}
		order, err := w.store.DigestStoryIDs(w.ctx, id)
		if err != nil || !slices.Equal(order, []int64{a, b}) {
			t.Fatalf("story order %v (%v), want [%d %d]", order, err, a, b)
		}
		if !w.audited("digest.create", fmt.Sprintf("digest #%d", id)) {
			t.Error("no digest.create audit entry")
		}
		page := w.follow(r)
		mustContain(t, "digest page", page.body, "Draft saved", "Tonight&#39;s news", "Politics UK, World", "daily, weekly",
			`action="/admin/digests/`+ids(id)+`/send"`, `action="/admin/digests/`+ids(id)+`/schedule"`, `action="/admin/digests/`+ids(id)+`/test"`)
		if strings.Index(page.body, "Budget vote tonight") > strings.Index(page.body, "Floods in the north") {
			t.Error("digest page: stories are not in the chosen order")
		}
		// Both stories are now in a manual digest: composing again offers neither.
		again := w.get("/admin/digests/new?kind=manual")
		if strings.Contains(again.body, "Budget vote tonight") || !strings.Contains(again.body, "Not chosen") {
			t.Errorf("second compose page offers stories already in a manual digest:\n%.2000s", again.body)
		}
		if daily := w.get("/admin/digests/new?kind=daily"); !strings.Contains(daily.body, "Budget vote tonight") {
			t.Error("the daily compose page does not offer a story only a manual digest included")
		}
	})
}

func TestAdminDigestPreviewIsTheReadersEmail(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		w := newDigestWorld(t, dsn, nil)
		politics := w.story("Budget vote tonight", "politics-uk", 2*time.Hour)
		world := w.story("Floods in the north", "world", time.Hour)
		reader := w.reader("Reader@Example.com", "politics-uk", models.FrequencyDaily)
		w.reader("other@example.com", "world", models.FrequencyWeekly)
		d := w.draft("Evening briefing", politics, world)
		base := fmt.Sprintf("/admin/digests/%d/preview", d.ID)
		unsub := w.srv.URL + "/unsubscribe/" + w.subs.Tokens().Make(subscribers.PurposeUnsubscribe, reader.ID, time.Time{})

		text := w.get(base + "?view=text&subscriber=reader@example.com")
		if text.status != http.StatusOK {
			t.Fatalf("text preview: %d %.300s", text.status, text.body)
		}
		mustContain(t, "text preview", text.body, `<pre class="mail-text">`, "Budget vote tonight", unsub, "Politics UK")
		if strings.Contains(text.body, "Floods in the north") {
			t.Error("the reader's preview has a story from a section they do not follow")
		}
		page := w.get(base + "?subscriber=reader@example.com")
		mustContain(t, "html preview page", page.body, `<iframe class="preview-frame" sandbox src="/admin/digests/`, `subscriber=reader%40example.com`)

		frame := w.get(base + "/html?subscriber=reader@example.com")
		if frame.status != http.StatusOK || !strings.Contains(frame.header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Fatalf("frame: %d, CSP %q", frame.status, frame.header.Get("Content-Security-Policy"))
		}
		mustContain(t, "frame", frame.body, "Budget vote tonight", unsub, "Reader@Example.com", `<base target="_top">`)
		if strings.Contains(frame.body, "Floods in the north") {
			t.Error("the reader's frame has a story from a section they do not follow")
		}

		// Without a reader: every story of the audience.
		all := w.get(base + "/html")
		mustContain(t, "frame without a reader", all.body, "Budget vote tonight", "Floods in the north")

		if r := w.get(base + "?subscriber=nobody@example.com"); r.status != http.StatusOK ||
			!strings.Contains(r.body, "No subscriber has this address.") || !strings.Contains(r.body, `aria-invalid="true"`) {
			t.Errorf("unknown reader: %d %.500s", r.status, r.body)
		}
		if r := w.get(base + "/html?subscriber=nobody@example.com"); r.status != http.StatusNotFound {
			t.Errorf("unknown reader's frame: %d", r.status)
		}
		// A reader of neither section at the digest's frequencies gets nothing.
		w.reader("sport@example.com", "world", models.FrequencyInstant)
		alert := w.draft("Only politics", politics)
		if r := w.get(fmt.Sprintf("/admin/digests/%d/preview?subscriber=sport@example.com", alert.ID)); !strings.Contains(r.body, "follows none of this digest") {
			t.Errorf("reader with nothing: %.500s", r.body)
		}
		if r := w.get("/admin/digests/99999/preview"); r.status != http.StatusNotFound {
			t.Errorf("unknown digest: %d", r.status)
		}
	})
}

func TestAdminDigestTestSend(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		w := newDigestWorld(t, dsn, nil)
		d := w.draft("Evening briefing", w.story("Budget vote tonight", "politics-uk", time.Hour))
		reader := w.reader("reader@example.com", "politics-uk", models.FrequencyDaily)
		path := fmt.Sprintf("/admin/digests/%d/test", d.ID)

		for name, tc := range map[string]struct{ to, as, field string }{
			"bad address":   {"editor@example.com, not-an-address", "", "to"},
			"none":          {"  ", "", "to"},
			"too many":      {strings.Repeat("e@example.com\n", 11), "", "to"},
			"unknown as":    {"editor@example.com", "nobody@example.com", "as"},
			"header inject": {"a@example.com\r\nBcc: b@example.com", "", "to"},
		} {
			r := w.post(path, url.Values{"to": {tc.to}, "as": {tc.as}})
			if r.status != http.StatusUnprocessableEntity {
				t.Errorf("%s: %d, want 422", name, r.status)
				continue
			}
			mustContain(t, name, r.body, `id="`+tc.field+`-error"`, `aria-invalid="true"`)
		}
		r := w.post(path, url.Values{"to": {"editor@example.com, not-an-address"}})
		mustContain(t, "typed addresses kept", r.body, "editor@example.com, not-an-address</textarea>")

		r = w.post(path, url.Values{"to": {"editor@example.com\nchief@example.com"}, "as": {"reader@example.com"}})
		page := w.follow(r)
		mustContain(t, "after the test", page.body, "Test queued for editor@example.com, chief@example.com")
		claimed, err := w.store.ClaimDeliveries(w.ctx, w.clock.Now().Add(time.Hour), time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, dl := range claimed {
			if dl.Kind != models.KindTest {
				continue
			}
			got = append(got, dl.ToAddress)
			var data struct {
				DigestID int64 `json:"digest_id"`
				As       int64 `json:"as_subscriber_id"`
			}
			if err := json.Unmarshal([]byte(dl.Data), &data); err != nil || data.DigestID != d.ID || data.As != reader.ID {
				t.Errorf("test delivery data %s", dl.Data)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"chief@example.com", "editor@example.com"}) {
			t.Fatalf("test deliveries to %v", got)
		}
		if !w.audited("digest.test", fmt.Sprintf("digest #%d", d.ID)) {
			t.Error("no digest.test audit entry")
		}
		if c, _ := w.store.CountDigest(w.ctx, d.ID); c != (models.DigestCounts{}) {
			t.Errorf("a test changed the digest's counts: %+v", c)
		}
	})
}

func TestAdminDigestScheduleSendAndTransitions(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		// 09:00 UTC is 04:00 in New York: a time typed there is read there.
		w := newDigestWorld(t, dsn, map[string]string{"HERALD_TIMEZONE": "America/New_York"})
		d := w.draft("Evening briefing", w.story("Budget vote tonight", "politics-uk", time.Hour))
		for i := range 3 {
			w.reader(fmt.Sprintf("r%d@example.com", i), "politics-uk", models.FrequencyDaily)
		}
		base := fmt.Sprintf("/admin/digests/%d", d.ID)
		target := fmt.Sprintf("digest #%d", d.ID)

		for name, at := range map[string]string{"past": "2026-11-25T03:59", "garbage": "tomorrow", "empty": "", "too far": "2028-01-01T10:00"} {
			r := w.post(base+"/schedule", url.Values{"scheduled_at": {at}})
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="scheduled_at-error"`) {
				t.Errorf("schedule %s: %d %.300s", name, r.status, r.body)
			}
		}
		r := w.post(base+"/schedule", url.Values{"scheduled_at": {"2026-11-25T03:59"}})
		mustContain(t, "past", r.body, "in the future", `value="2026-11-25T03:59"`)
		if st := w.digest(d.ID).Status; st != models.DigestDraft {
			t.Fatalf("a refused schedule left the digest %s", st)
		}
		page := w.follow(w.post(base+"/schedule", url.Values{"scheduled_at": {"2026-11-25T04:30"}}))
		got := w.digest(d.ID)
		if got.Status != models.DigestScheduled || got.ScheduledAt == nil || !got.ScheduledAt.Equal(time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)) {
			t.Fatalf("scheduled: %s at %v", got.Status, got.ScheduledAt)
		}
		mustContain(t, "scheduled page", page.body, "Scheduled for 25 Nov 2026 04:30 EST", "data-live", `data-status="scheduled"`)

		page = w.follow(w.post(base+"/send", nil))
		if got := w.digest(d.ID); got.Status != models.DigestSending || got.Recipients != 3 {
			t.Fatalf("after send: %s, %d recipients", got.Status, got.Recipients)
		}
		mustContain(t, "sending page", page.body, "Sending to 3 readers.", `role="progressbar"`, `data-field="pending">3<`, `action="`+base+`/pause"`)
		mustContain(t, "send again", w.follow(w.post(base+"/send", nil)).body, "already sending")

		steps := []struct{ action, status, flash string }{
			{"pause", models.DigestPaused, "Paused."},
			{"pause", models.DigestPaused, "You cannot pause this digest: it is paused."},
			{"resume", models.DigestSending, "Sending again."},
			{"cancel", models.DigestCancelled, "Cancelled."},
			{"resume", models.DigestCancelled, "You cannot resume this digest: it is cancelled."},
			{"send", models.DigestCancelled, "You cannot send this digest: it is cancelled."},
		}
		for _, st := range steps {
			r := w.post(base+"/"+st.action, nil)
			if r.status != http.StatusSeeOther {
				t.Fatalf("%s: %d %.300s", st.action, r.status, r.body)
			}
			page := w.follow(r)
			if got := w.digest(d.ID).Status; got != st.status {
				t.Fatalf("after %s: %s, want %s", st.action, got, st.status)
			}
			mustContain(t, st.action, page.body, st.flash)
		}
		if r := w.post(base+"/schedule", url.Values{"scheduled_at": {"2026-11-25T05:00"}}); !strings.Contains(w.follow(r).body, "You cannot schedule this digest") {
			t.Error("scheduling a cancelled digest was not refused")
		}
		for _, action := range []string{"digest.schedule", "digest.send", "digest.pause", "digest.resume", "digest.cancel"} {
			if !w.audited(action, target) {
				t.Errorf("no %s audit entry", action)
			}
		}
		// A cancelled digest's unsent deliveries are skipped, and its page says so.
		c, _ := w.store.CountDigest(w.ctx, d.ID)
		if c.Pending != 0 || c.Skipped != 3 {
			t.Errorf("after cancel: %+v", c)
		}
		if r := w.post("/admin/digests/99999/pause", nil); r.status != http.StatusNotFound {
			t.Errorf("unknown digest: %d", r.status)
		}
		// Without the CSRF token nothing happens.
		if r := w.do(w.client, http.MethodPost, base+"/resume", "application/x-www-form-urlencoded", "", nil); r.status != http.StatusForbidden {
			t.Errorf("no CSRF token: %d", r.status)
		}
	})
}

func TestAdminDigestProgressAndFailures(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		w := newDigestWorld(t, dsn, nil)
		d := w.draft("Evening briefing", w.story("Budget vote tonight", "politics-uk", time.Hour))
		for i := range 5 {
			w.reader(fmt.Sprintf("r%d@example.com", i), "politics-uk", models.FrequencyDaily)
		}
		w.reader("elsewhere@example.com", "world", models.FrequencyDaily) // in the audience, nothing for them: skipped
		base := fmt.Sprintf("/admin/digests/%d", d.ID)
		w.follow(w.post(base+"/send", nil))

		// Two sent, two failed for good, one back for a retry.
		claimed, err := w.store.ClaimDeliveries(w.ctx, w.clock.Now(), time.Minute, 100)
		if err != nil || len(claimed) != 5 {
			t.Fatalf("claimed %d (%v)", len(claimed), err)
		}
		var results []models.DeliveryResult
		for i, dl := range claimed {
			res := models.DeliveryResult{ID: dl.ID, Status: models.DeliverySent}
			switch i {
			case 2, 3:
				res.Status, res.Error = models.DeliveryFailed, fmt.Sprintf("550 5.1.1 mailbox %d unavailable", i)
			case 4:
				res.Status, res.NextAttemptAt = models.DeliveryPending, w.clock.Now().Add(time.Minute)
			}
			results = append(results, res)
		}
		w.clock.Add(10 * time.Second)
		if err := w.store.RecordDeliveryResults(w.ctx, w.clock.Now(), results); err != nil {
			t.Fatal(err)
		}

		r := w.get(base + "/progress")
		var p struct {
			Status                                string
			Total, Sent, Failed, Skipped, Pending int64
			Done                                  int64
			Percent                               int
			Rate                                  float64
			ETASeconds                            int64 `json:"eta_seconds"`
			ElapsedSeconds                        int64 `json:"elapsed_seconds"`
		}
		if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &p) != nil {
			t.Fatalf("progress: %d %s", r.status, r.body)
		}
		if p.Status != "sending" || p.Total != 6 || p.Sent != 2 || p.Failed != 2 || p.Skipped != 1 || p.Pending != 1 || p.Done != 5 || p.Percent != 83 {
			t.Fatalf("progress numbers: %s", r.body)
		}
		// Four finished in the ten seconds since the start: 0.4 a second,
		// so the last one is due in about 2.5 s.
		if p.ElapsedSeconds != 10 || p.Rate < 0.39 || p.Rate > 0.41 || p.ETASeconds != 2 {
			t.Fatalf("rate and time left: %s", r.body)
		}

		page := w.get(base)
		mustContain(t, "digest page", page.body, `aria-valuenow="83"`, `style="width: 83%"`, `data-field="sent">2<`, `data-field="failed">2<`,
			`data-field="pending">1<`, "0.4 /s", "Failed deliveries", "550 5.1.1 mailbox 2 unavailable", "550 5.1.1 mailbox 3 unavailable")
		failedTo := 0
		for i := range 5 {
			if strings.Contains(page.body, fmt.Sprintf("<td>r%d@example.com</td>", i)) {
				failedTo++
			}
		}
		if failedTo != 2 {
			t.Errorf("the failures list shows %d addresses, want 2", failedTo)
		}

		list := w.get("/admin/digests")
		mustContain(t, "list", list.body, "Evening briefing", `badge s-sending`, `<td class="num">2</td>`)
		if r := w.get("/admin/digests/abc/progress"); r.status != http.StatusNotFound {
			t.Errorf("bad id: %d", r.status)
		}
	})
}

func TestAdminDigestListPagesAndFilters(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		w := newDigestWorld(t, dsn, nil)
		st := w.story("Budget vote tonight", "politics-uk", time.Hour)
		var ids []int64
		for i := range 30 {
			ids = append(ids, w.draft(fmt.Sprintf("Edition %02d", i), st).ID)
		}
		svc := digests.New(w.store, digests.Config{Now: w.clock.Now})
		if err := svc.Cancel(w.ctx, ids[3]); err != nil {
			t.Fatal(err)
		}
		first := w.get("/admin/digests")
		mustContain(t, "first page", first.body, "Edition 29", "Edition 05", "Older digests", `before=`+strconv.FormatInt(ids[5], 10))
		if strings.Contains(first.body, "Edition 04") || strings.Contains(first.body, "Newer digests") {
			t.Error("first page has more than 25 digests or a newer link")
		}
		second := w.get("/admin/digests?before=" + strconv.FormatInt(ids[5], 10))
		mustContain(t, "second page", second.body, "Edition 04", "Edition 00", "Newer digests", "after="+strconv.FormatInt(ids[4], 10))
		if strings.Contains(second.body, "Edition 05") || strings.Contains(second.body, "Older digests") {
			t.Error("second page overlaps the first or has an older link")
		}
		back := w.get("/admin/digests?after=" + strconv.FormatInt(ids[4], 10))
		mustContain(t, "back to newer", back.body, "Edition 29", "Edition 05", "Older digests")
		if strings.Contains(back.body, "Edition 04") || strings.Contains(back.body, "Newer digests") {
			t.Error("the newer page is not the first page")
		}
		cancelled := w.get("/admin/digests?status=cancelled")
		mustContain(t, "filtered", cancelled.body, "Edition 03", `<option value="cancelled" selected>`)
		if strings.Contains(cancelled.body, "Edition 04") {
			t.Error("the status filter lets other digests through")
		}
		for _, q := range []string{"?status=nonsense", "?before=xyz", "?after=-1", "?before=99999999999999999999"} {
			if r := w.get("/admin/digests" + q); r.status != http.StatusOK {
				t.Errorf("list%s: %d", q, r.status)
			}
		}
	})
}
