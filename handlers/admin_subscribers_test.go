package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/models"
	"herald/models/testdb"
	"herald/subscribers"
)

// importReaders adds n readers through the CSV import: reader001@… upwards,
// every tenth unsubscribed, the other even ones active, the rest pending;
// sections by i%3: politics-uk, world, or both.
func importReaders(t *testing.T, h *harness, n int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("email,status,subscriptions,created_at,confirmed_at,source\n")
	for i := 1; i <= n; i++ {
		status, confirmed := "pending", ""
		switch {
		case i%10 == 0:
			status = "unsubscribed"
		case i%2 == 0:
			status, confirmed = "active", "2026-01-02T10:00:00Z"
		}
		subs := []string{"politics-uk:daily", "world:weekly", "politics-uk:instant world:daily"}[i%3]
		fmt.Fprintf(&b, "reader%03d@example.com,%s,%s,2026-01-01T10:00:00Z,%s,test\n", i, status, subs, confirmed)
	}
	res, err := h.subs.ImportCSV(context.Background(), strings.NewReader(b.String()), subscribers.ImportOptions{})
	if err != nil || res.Imported != n {
		t.Fatalf("import readers: %+v %v", res, err)
	}
}

var (
	rowLink   = regexp.MustCompile(`<td><a href="/admin/subscribers/(\d+)">`)
	olderLink = regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	newerLink = regexp.MustCompile(`<a href="([^"]+)" rel="prev">`)
)

// listIDs returns the reader ids a list page shows, in order.
func listIDs(t *testing.T, body string) []int64 {
	t.Helper()
	var ids []int64
	for _, m := range rowLink.FindAllStringSubmatch(body, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		ids = append(ids, id)
	}
	return ids
}

func unescapeHref(s string) string { return strings.ReplaceAll(s, "&amp;", "&") }

// walkList follows "Older" links from path and returns every id shown,
// checking that each page is newest first.
func walkList(t *testing.T, h *harness, c *http.Client, path string) []int64 {
	t.Helper()
	var all []int64
	for i := 0; path != ""; i++ {
		if i > 100 {
			t.Fatal("too many pages")
		}
		r := h.do(c, http.MethodGet, path, "", "", nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %.300s", path, r.status, r.body)
		}
		ids := listIDs(t, r.body)
		for j := 1; j < len(ids); j++ {
			if ids[j] >= ids[j-1] {
				t.Fatalf("%s: not newest first: %v", path, ids)
			}
		}
		all = append(all, ids...)
		path = ""
		if m := olderLink.FindStringSubmatch(r.body); m != nil {
			path = unescapeHref(m[1])
		}
	}
	return all
}

// matching returns the ids of readers for which keep is true, newest first.
func matching(t *testing.T, h *harness, keep func(*models.Subscriber, []models.SubscriptionView) bool) []int64 {
	t.Helper()
	ctx := context.Background()
	var out []int64
	var after int64
	for {
		page, err := h.store.SubscribersAfter(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for i := range page {
			subs, err := h.store.Subscriptions(ctx, page[i].ID)
			if err != nil {
				t.Fatal(err)
			}
			if keep(&page[i], subs) {
				out = append([]int64{page[i].ID}, out...)
			}
		}
		after = page[len(page)-1].ID
	}
	return out
}

func inSection(slug string) func(*models.Subscriber, []models.SubscriptionView) bool {
	return func(_ *models.Subscriber, subs []models.SubscriptionView) bool {
		for _, v := range subs {
			if v.Slug == slug {
				return true
			}
		}
		return false
	}
}

func sameIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAdminSubscriberList(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		importReaders(t, h, 130)
		if r := h.postJSON("/api/v1/subscribe", signupJSON("Mixed.Case@Example.COM")); r.status != http.StatusAccepted {
			t.Fatalf("signup: %d %s", r.status, r.body)
		}
		c, _ := h.adminClient("editor")
		all := func(*models.Subscriber, []models.SubscriptionView) bool { return true }

		cases := []struct {
			name, query string
			keep        func(*models.Subscriber, []models.SubscriptionView) bool
		}{
			{"all", "", all},
			{"prefix case-insensitive", "q=READER01", func(s *models.Subscriber, _ []models.SubscriptionView) bool {
				return strings.HasPrefix(s.EmailNorm, "reader01")
			}},
			{"whole address", "q=" + url.QueryEscape(" mixed.case@EXAMPLE.com "), func(s *models.Subscriber, _ []models.SubscriptionView) bool {
				return s.EmailNorm == "mixed.case@example.com"
			}},
			{"no match", "q=nobody", func(*models.Subscriber, []models.SubscriptionView) bool { return false }},
			{"status", "status=unsubscribed", func(s *models.Subscriber, _ []models.SubscriptionView) bool {
				return s.Status == models.StatusUnsubscribed
			}},
			{"section", "section=world", inSection("world")},
			{"section and status", "section=world&status=active", func(s *models.Subscriber, v []models.SubscriptionView) bool {
				return s.Status == models.StatusActive && inSection("world")(s, v)
			}},
			{"everything", "q=reader1&section=politics-uk&status=pending", func(s *models.Subscriber, v []models.SubscriptionView) bool {
				return strings.HasPrefix(s.EmailNorm, "reader1") && s.Status == models.StatusPending && inSection("politics-uk")(s, v)
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				want := matching(t, h, tc.keep)
				got := walkList(t, h, c, "/admin/subscribers?"+tc.query)
				if !sameIDs(got, want) {
					t.Fatalf("got %d readers %v\nwant %d %v", len(got), got, len(want), want)
				}
			})
		}

		// The first page has 50 readers and an Older link; going Older then
		// Newer comes back to the same page.
		first := h.do(c, http.MethodGet, "/admin/subscribers", "", "", nil)
		ids := listIDs(t, first.body)
		if len(ids) != 50 || !strings.Contains(first.body, "reader130@example.com") {
			t.Fatalf("first page: %d rows", len(ids))
		}
		if newerLink.MatchString(first.body) {
			t.Fatal("the first page offers Newer")
		}
		older := h.do(c, http.MethodGet, unescapeHref(olderLink.FindStringSubmatch(first.body)[1]), "", "", nil)
		back := h.do(c, http.MethodGet, unescapeHref(newerLink.FindStringSubmatch(older.body)[1]), "", "", nil)
		if got := listIDs(t, back.body); !sameIDs(got, ids) {
			t.Fatalf("Older then Newer: %v, want %v", got, ids)
		}

		// The windowed scan (used when no filter is selective) gives the
		// same pages as the candidate path.
		ctx := context.Background()
		world, err := h.store.AdminSectionBySlug(ctx, "world")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []models.SubscriberFilter{
			{SectionID: world.ID}, {SectionID: world.ID, Status: models.StatusActive}, {Prefix: "reader0"},
			{Prefix: "reader", Status: models.StatusPending, SectionID: world.ID},
		} {
			for _, before := range []int64{0, 100, 40} {
				f.Before, f.Limit = before, 7
				small, err := h.store.AdminSubscribers(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				f.SmallSet = 1
				scan, err := h.store.AdminSubscribers(ctx, f)
				f.SmallSet = 0
				if err != nil {
					t.Fatal(err)
				}
				a, b := rowIDs(small), rowIDs(scan)
				if !sameIDs(a, b) || small.Older != scan.Older || small.Newer != scan.Newer || len(a) == 0 {
					t.Fatalf("%+v: candidates %v (older %d) vs scan %v (older %d)", f, a, small.Older, b, scan.Older)
				}
			}
		}

		// Bad filters re-render with a message next to the field.
		for _, q := range []string{"status=gone", "section=nope"} {
			r := h.do(c, http.MethodGet, "/admin/subscribers?"+q, "", "", nil)
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `class="field-error"`) || !strings.Contains(r.body, `aria-invalid="true"`) {
				t.Fatalf("%s: %d %.300s", q, r.status, r.body)
			}
		}
		// Odd input is no error: control characters and broken UTF-8 in
		// the search match nothing.
		if r := h.do(c, http.MethodGet, "/admin/subscribers?q=%00%ff%1b&before=7&after=3", "", "", nil); r.status != http.StatusOK {
			t.Fatalf("odd search: %d", r.status)
		}
		// A cursor that is not a number shows the first page.
		if r := h.do(c, http.MethodGet, "/admin/subscribers?before=x%27&after=-3", "", "", nil); r.status != http.StatusOK || len(listIDs(t, r.body)) != 50 {
			t.Fatalf("bad cursor: %d", r.status)
		}
	})
}

func rowIDs(p *models.SubscriberPage) []int64 {
	var out []int64
	for _, r := range p.Rows {
		out = append(out, r.ID)
	}
	return out
}

func TestAdminSubscriberReaderPage(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		const email = "reader@example.com"
		if r := h.postJSON("/api/v1/subscribe", signupJSON(email)); r.status != http.StatusAccepted {
			t.Fatalf("signup: %d %s", r.status, r.body)
		}
		tok := h.token(subscribers.PurposeConfirm, email, h.clock.Now().Add(time.Hour))
		if r := h.postForm("/confirm/"+tok, nil); r.status >= 400 {
			t.Fatalf("confirm: %d %.300s", r.status, r.body)
		}
		sub := h.subscriber(email)
		if sub.Status != models.StatusActive {
			t.Fatalf("status %s", sub.Status)
		}
		c, _ := h.adminClient("editor")
		path := "/admin/subscribers/" + strconv.FormatInt(sub.ID, 10)
		r := h.do(c, http.MethodGet, path, "", "", nil)
		if r.status != http.StatusOK {
			t.Fatalf("reader page: %d %.300s", r.status, r.body)
		}
		for _, want := range []string{email, "Politics UK", ">confirmation<", ">signup<", ">confirm<", ">verified<", `name="csrf_token"`, "data-confirm"} {
			if !strings.Contains(r.body, want) {
				t.Errorf("reader page lacks %q", want)
			}
		}
		// Tampering with the signup event breaks the chain there.
		evs, err := h.store.ConsentEvents(context.Background(), sub.ID)
		if err != nil || len(evs) < 2 {
			t.Fatalf("events: %v %v", evs, err)
		}
		testdb.Exec(t, dsn, "UPDATE consent_events SET consent_text = ? WHERE id = ?", "I agreed to nothing", evs[0].ID)
		r = h.do(c, http.MethodGet, path, "", "", nil)
		if !strings.Contains(r.body, "Chain broken") || !strings.Contains(r.body, "event #"+strconv.FormatInt(evs[0].ID, 10)) ||
			strings.Contains(r.body, ">verified<") {
			t.Fatalf("tampered ledger not shown as broken: %.2000s", r.body)
		}

		for _, p := range []string{"/admin/subscribers/0", "/admin/subscribers/x", "/admin/subscribers/99999999", "/admin/subscribers/-1",
			"/admin/subscribers/99999999999999999999999"} {
			if r := h.do(c, http.MethodGet, p, "", "", nil); r.status != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 404", p, r.status)
			}
		}
	})
}

// auditCount returns how many audit entries of action name target.
func auditCount(t *testing.T, h *harness, action, target string) int {
	t.Helper()
	es, err := h.store.AuditEntries(context.Background(), models.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if e.Target == target {
			n++
		}
	}
	return n
}

func lastEvent(t *testing.T, h *harness, id int64) models.ConsentEvent {
	t.Helper()
	evs, err := h.store.ConsentEvents(context.Background(), id)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events: %v", err)
	}
	return evs[len(evs)-1]
}

func TestAdminSubscriberActions(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		ctx := context.Background()
		const email = "acted-on@example.com"
		if r := h.postJSON("/api/v1/subscribe", signupJSON(email)); r.status != http.StatusAccepted {
			t.Fatalf("signup: %d", r.status)
		}
		sub := h.subscriber(email)
		id := strconv.FormatInt(sub.ID, 10)
		target := "subscriber #" + id
		base := "/admin/subscribers/" + id
		c, csrf := h.adminClient("editor")
		actor := "admin:" + func() string {
			r := h.do(c, http.MethodGet, "/admin", "", "", nil)
			m := regexp.MustCompile(`title="Your account">([^<]+)<`).FindStringSubmatch(r.body)
			if m == nil {
				t.Fatal("no user in the top bar")
			}
			return m[1]
		}()

		// Without the CSRF token every action is refused.
		for _, p := range []string{"/subscriptions", "/unsubscribe", "/erase"} {
			if r := h.do(c, http.MethodPost, base+p, "application/x-www-form-urlencoded", "sections=world", nil); r.status != http.StatusForbidden {
				t.Fatalf("POST %s without CSRF: %d", p, r.status)
			}
		}
		if r := h.do(c, http.MethodPost, "/admin/subscribers/import", "application/x-www-form-urlencoded", "", nil); r.status != http.StatusForbidden {
			t.Fatalf("import without CSRF: %d", r.status)
		}

		// A bad frequency or an unknown section re-renders with a message.
		for _, v := range []url.Values{
			{"sections": {"world"}, "frequency_world": {"hourly"}},
			{"sections": {"sport"}, "frequency": {"daily"}},
		} {
			r := h.adminPost(c, csrf, base+"/subscriptions", v)
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `class="field-error"`) {
				t.Fatalf("bad edit %v: %d %.300s", v, r.status, r.body)
			}
		}

		// Edit: world weekly and politics instant.
		r := h.adminPost(c, csrf, base+"/subscriptions", url.Values{
			"sections": {"world", "politics-uk"}, "frequency_world": {"weekly"}, "frequency_politics-uk": {"instant"},
		})
		if r.status != http.StatusSeeOther {
			t.Fatalf("edit: %d %.300s", r.status, r.body)
		}
		subs, _ := h.store.Subscriptions(ctx, sub.ID)
		got := map[string]string{}
		for _, v := range subs {
			got[v.Slug] = v.Frequency
		}
		if len(got) != 2 || got["world"] != "weekly" || got["politics-uk"] != "instant" {
			t.Fatalf("subscriptions after edit: %v", got)
		}
		if ev := lastEvent(t, h, sub.ID); ev.Kind != models.ConsentPreferences || ev.Form != actor || !strings.Contains(ev.Sections, "world:weekly") {
			t.Fatalf("edit event: %+v", ev)
		}
		if n := auditCount(t, h, "subscriber.edit", target); n != 1 {
			t.Fatalf("subscriber.edit entries: %d", n)
		}
		if r := h.do(c, http.MethodGet, base, "", "", nil); !strings.Contains(r.body, "Subscriptions saved.") {
			t.Fatal("no flash after edit")
		}

		// Unsubscribe.
		if r := h.adminPost(c, csrf, base+"/unsubscribe", nil); r.status != http.StatusSeeOther {
			t.Fatalf("unsubscribe: %d", r.status)
		}
		if s := h.subscriber(email); s.Status != models.StatusUnsubscribed {
			t.Fatalf("status after unsubscribe: %s", s.Status)
		}
		if ev := lastEvent(t, h, sub.ID); ev.Kind != models.ConsentUnsubscribe || ev.Form != actor {
			t.Fatalf("unsubscribe event: %+v", ev)
		}
		if n := auditCount(t, h, "subscriber.unsubscribe", target); n != 1 {
			t.Fatalf("subscriber.unsubscribe entries: %d", n)
		}
		// An editor cannot subscribe an unsubscribed reader again.
		if r := h.adminPost(c, csrf, base+"/subscriptions", url.Values{"sections": {"world"}, "frequency": {"daily"}}); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("edit of an unsubscribed reader: %d", r.status)
		}

		// Erase.
		if r := h.adminPost(c, csrf, base+"/erase", nil); r.status != http.StatusSeeOther {
			t.Fatalf("erase: %d", r.status)
		}
		if h.subscriber(email) != nil {
			t.Fatal("the address is still there after erasure")
		}
		after, err := h.store.SubscriberByID(ctx, sub.ID)
		if err != nil || after.Status != models.StatusErased {
			t.Fatalf("after erase: %+v %v", after, err)
		}
		if ev := lastEvent(t, h, sub.ID); ev.Kind != models.ConsentErase || ev.Form != actor {
			t.Fatalf("erase event: %+v", ev)
		}
		if n := auditCount(t, h, "subscriber.erase", target); n != 1 {
			t.Fatalf("subscriber.erase entries: %d", n)
		}
		r = h.do(c, http.MethodGet, base, "", "", nil)
		if r.status != http.StatusOK || !strings.Contains(r.body, "was erased") || !strings.Contains(r.body, "suppression hash") ||
			strings.Contains(r.body, email) || !strings.Contains(r.body, ">verified<") {
			t.Fatalf("reader page after erase: %d %.3000s", r.status, r.body)
		}
		// Actions on unknown readers are 404s.
		for _, p := range []string{"/admin/subscribers/99999999/erase", "/admin/subscribers/x/unsubscribe", "/admin/subscribers/0/subscriptions"} {
			if r := h.adminPost(c, csrf, p, nil); r.status != http.StatusNotFound {
				t.Fatalf("POST %s: %d", p, r.status)
			}
		}
	})
}

func TestAdminSubscriberExport(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	importReaders(t, h, 3)
	c, _ := h.adminClient("admin")
	r := h.do(c, http.MethodGet, "/admin/subscribers/export", "", "", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", r.status, r.header)
	}
	want := "email,status,subscriptions,created_at,confirmed_at,source\n" +
		"reader001@example.com,pending,world:weekly,2026-01-01T10:00:00Z,,test\n" +
		"reader002@example.com,active,politics-uk:instant world:daily,2026-01-01T10:00:00Z,2026-01-02T10:00:00Z,test\n" +
		"reader003@example.com,pending,politics-uk:daily,2026-01-01T10:00:00Z,,test\n"
	if r.body != want {
		t.Fatalf("export:\n%s\nwant:\n%s", r.body, want)
	}
	if n := auditCount(t, h, "subscriber.export", "subscribers"); n != 1 {
		t.Fatalf("subscriber.export entries: %d", n)
	}
}
