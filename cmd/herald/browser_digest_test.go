package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"herald/accounts"
	"herald/models"
	"herald/models/testdb"
)

// digestReaders is how many readers the browser test sends to: enough for
// the send to take a few seconds at digestSendRate, so that the page shows
// it under way.
const (
	digestReaders  = 300
	digestSendRate = "100"
)

// seedDigestReaders adds n active readers of politics-uk, daily, in two
// set-based statements.
func seedDigestReaders(t *testing.T, store *models.Store, n int) {
	t.Helper()
	ctx := context.Background()
	secs, err := store.SectionsBySlug(ctx, []string{"politics-uk"})
	if err != nil || secs["politics-uk"].ID == 0 {
		t.Fatalf("the sample section politics-uk: %v", err)
	}
	now := time.Now().UTC()
	subs := make([]*models.Subscriber, n)
	for i := range subs {
		addr := fmt.Sprintf("reader%03d@example.com", i)
		subs[i] = &models.Subscriber{Email: addr, EmailNorm: addr, Status: models.StatusActive, Source: "seed",
			CreatedAt: now, UpdatedAt: now, ConfirmedAt: &now}
	}
	if err := store.CreateSubscribers(ctx, subs); err != nil {
		t.Fatal(err)
	}
	rows := make(map[int64][]models.Subscription, n)
	for _, s := range subs {
		rows[s.ID] = []models.Subscription{{SectionID: secs["politics-uk"].ID, Frequency: models.FrequencyDaily, CreatedAt: now}}
	}
	if err := store.CreateSubscriptions(ctx, rows); err != nil {
		t.Fatal(err)
	}
}

// digestPushStory sends a story through the API as a CMS would and returns its id.
func digestPushStory(t *testing.T, h *running, key, url, title string) int64 {
	t.Helper()
	code, body := apiCall(t, key, http.MethodPost, h.url+"/api/v1/stories",
		`{"url":"`+url+`","title":"`+title+`","summary":"<p>`+title+`, in brief.</p>","sections":["politics-uk"]}`)
	var st struct {
		ID int64 `json:"id"`
	}
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &st) != nil || st.ID == 0 {
		t.Fatalf("push story %q: %d %s", title, code, body)
	}
	return st.ID
}

// digestFrameText reads the text of the preview frame. A sandboxed frame runs in
// its own process, as a target of its own, so the test attaches to it, and
// detaches when done: closing that target would close the tab.
func digestFrameText(t *testing.T, ctx context.Context, urlPart string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatalf("list the browser's targets: %v", err)
		}
		for _, info := range infos {
			if info.Type == "iframe" && strings.Contains(info.URL, urlPart) {
				frame, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID), chromedp.WithDetachOnCancel())
				defer cancel()
				return get(t, frame, "read the preview frame", chromedp.Text(chromedp.CSS("body")))
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("no preview frame (%s) among the browser's %d targets", urlPart, len(infos))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// digestSendView is what the digest page shows of a send.
type digestSendView struct {
	Heading string `json:"heading"`
	Status  string `json:"status"`
	Percent string `json:"percent"`
	Sent    string `json:"sent"`
	Failed  string `json:"failed"`
	Pending string `json:"pending"`
	Bar     string `json:"bar"`
}

const digestReadSendView = `(() => {
	const q = (s) => (document.querySelector(s) || {}).textContent || "";
	const bar = document.querySelector('#progress .bar');
	return {
		heading: q('#progress-h'), status: q('.badge[data-field="status"]'), percent: q('#progress [data-field="percent"]'),
		sent: q('#progress [data-field="sent"]'), failed: q('#progress [data-field="failed"]'),
		pending: q('#progress [data-field="pending"]'), bar: bar ? bar.style.width : "",
	};
})()`

// digestWatchSend reads the digest page's numbers until they show the finished
// send's results, and returns every distinct reading. The page reloads
// itself when the status changes; a reading that meets the reload is
// simply taken again.
func digestWatchSend(t *testing.T, ctx context.Context, shots *screenshots) []digestSendView {
	t.Helper()
	var seen []digestSendView
	shotMidway := false
	deadline := time.Now().Add(40 * time.Second)
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[digestSendView](digestReadSendView))
		if err == nil {
			if len(seen) == 0 || seen[len(seen)-1] != v {
				seen = append(seen, v)
			}
			if !shotMidway && v.Percent != "" && v.Percent != "0" && v.Percent != "100" {
				shotMidway = true
				shots.take(ctx, "4-progress-sending")
			}
			if v.Heading == "Results" && v.Percent == "100" && v.Status == models.DigestSent {
				return seen
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("the page never showed the finished send (last error %v); readings: %+v", err, seen)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// TestBrowserDigestComposePreviewSend is an editor's whole path through the
// digest pages in a real browser: compose a digest from two stories in a
// chosen order, preview it, send a test that reaches the SMTP server, send
// it to a few hundred readers and watch the page's progress bar fill.
func TestBrowserDigestComposePreviewSend(t *testing.T) {
	chromium := findChromium(t)
	env := map[string]string{
		"HERALD_ADMIN_EMAIL":    "editor@example.com",
		"HERALD_ADMIN_PASSWORD": "a long test password",
		// Scheduled digests and alerts wait as drafts, so that only the
		// editor's digest goes to the readers.
		"HERALD_REVIEW":    "true",
		"HERALD_SEND_RATE": digestSendRate,
	}
	h := startHerald(t, testdb.DSN(t, testdb.SQLite), env)
	store := h.app.store
	seedDigestReaders(t, store, digestReaders)
	key, _, err := accounts.New(store, accounts.Config{}).CreateAPIKey(context.Background(), "CMS", "*")
	if err != nil {
		t.Fatal(err)
	}
	commons := digestPushStory(t, h, key, "https://news.example.com/politics/commons-vote", "Commons backs the bill")
	strike := digestPushStory(t, h, key, "https://news.example.com/politics/rail-strike", "Rail strike called off")

	ctx := newBrowser(t, chromium)
	shots := newScreenshots(t)

	// 1. Log in and open Digests from the navigation.
	follow(t, ctx, "open the login page", chromedp.Navigate(h.url+"/admin/login"))
	do(t, ctx, "fill in the login form",
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), env["HERALD_ADMIN_EMAIL"]),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), env["HERALD_ADMIN_PASSWORD"]),
	)
	follow(t, ctx, "log in", chromedp.Click(chromedp.CSS(`form[action="/admin/login"] button[type="submit"]`)))
	follow(t, ctx, "open Digests", chromedp.Click(chromedp.CSS(`nav.mainnav a[href="/admin/digests"]`)))
	if h1 := get(t, ctx, "read the title", chromedp.Text(chromedp.CSS(`h1`))); h1 != "Digests" {
		t.Fatalf("the digests page's title is %q", h1)
	}
	shots.take(ctx, "1-digest-list")

	// 2. Compose: the newer story is listed first; the editor moves it down
	// with the page's button, ticks both and saves a draft.
	follow(t, ctx, "open the compose page", chromedp.Click(chromedp.CSS(`a[href="/admin/digests/new"]`)))
	row := func(id int64) string { return fmt.Sprintf(`tr[data-story="%d"]`, id) }
	do(t, ctx, "wait for the move buttons", chromedp.WaitVisible(chromedp.CSS(row(strike)+` button[data-move="down"]`)))
	before := get(t, ctx, "read the stories' order", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#compose-stories tbody tr')).map((r) => r.getAttribute('data-story'))`))
	if !slices.Equal(before[:2], []string{strconv.FormatInt(strike, 10), strconv.FormatInt(commons, 10)}) {
		t.Fatalf("the compose page lists stories %v, want the newest (%d) first", before, strike)
	}
	do(t, ctx, "move the newer story down and tick both",
		chromedp.Click(chromedp.CSS(row(strike)+` button[data-move="down"]`)),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#story-%d`, commons))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#story-%d`, strike))),
		chromedp.SendKeys(chromedp.CSS(`#subject`), "Tonight from Westminster"),
		chromedp.SendKeys(chromedp.CSS(`#intro`), "Two stories before you sleep."),
	)
	orders := get(t, ctx, "read the positions", chromedp.Evaluate[[]string](fmt.Sprintf(
		`[document.querySelector('#order-%d').value, document.querySelector('#order-%d').value]`, commons, strike)))
	if !slices.Equal(orders, []string{"1", "2"}) {
		t.Fatalf("after moving, the positions of [commons, strike] are %v, want [1 2]", orders)
	}
	shots.take(ctx, "2-compose")
	follow(t, ctx, "save the draft", chromedp.Click(chromedp.CSS(`#compose button[type="submit"]`)))
	loc := get(t, ctx, "read the location", chromedp.Location())
	m := regexp.MustCompile(`/admin/digests/(\d+)$`).FindStringSubmatch(loc)
	if m == nil {
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
		t.Fatalf("after saving, the browser is at %s:\n%s", loc, body)
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	if ids, err := store.DigestStoryIDs(context.Background(), id); err != nil || !slices.Equal(ids, []int64{commons, strike}) {
		t.Fatalf("the draft's stories are %v (%v), want [%d %d]", ids, err, commons, strike)
	}

	// 3. Preview: the frame shows the email with the stories.
	follow(t, ctx, "open the preview", chromedp.Click(chromedp.CSS(`a[href$="/preview"]`)))
	do(t, ctx, "wait for the frame", chromedp.WaitVisible(chromedp.CSS(`iframe.preview-frame`)))
	if text := digestFrameText(t, ctx, fmt.Sprintf("/admin/digests/%d/preview/html", id)); !strings.Contains(text, "Commons backs the bill") ||
		!strings.Contains(text, "Rail strike called off") {
		t.Fatalf("the preview frame shows:\n%s", text)
	}
	shots.take(ctx, "3-preview")

	// 4. A test to the editor reaches the SMTP server.
	follow(t, ctx, "back to the digest", chromedp.Click(chromedp.CSS(fmt.Sprintf(`main a[href="/admin/digests/%d"]`, id))))
	const testTo = "desk@example.com"
	do(t, ctx, "type the test address", chromedp.SendKeys(chromedp.CSS(`#to`), testTo))
	follow(t, ctx, "send the test", chromedp.Click(chromedp.CSS(`form[action$="/test"] button[type="submit"]`)))
	if flash := get(t, ctx, "read the flash", chromedp.Text(chromedp.CSS(`.flash`))); !strings.Contains(flash, "Test queued for "+testTo) {
		t.Fatalf("after the test the page says %q", flash)
	}
	test := h.waitMail(testTo, 1)
	if subj := test.header.Get("Subject"); subj != "[Test] Tonight from Westminster" || !strings.Contains(test.text, "Commons backs the bill") {
		t.Fatalf("the test email: subject %q\n%s", subj, test.text)
	}

	// 5. Send, and watch the page's progress reach 100%.
	follow(t, ctx, "send now", chromedp.Click(chromedp.CSS(`form[action$="/send"] button[type="submit"]`)))
	seen := digestWatchSend(t, ctx, shots)
	t.Logf("the page showed: %+v", seen)
	last := 0
	for _, v := range seen {
		p, err := strconv.Atoi(v.Percent)
		if err != nil {
			continue
		}
		if p < last {
			t.Fatalf("the progress went back from %d%% to %d%%: %+v", last, p, seen)
		}
		last = p
	}
	final := seen[len(seen)-1]
	if final.Sent != strconv.Itoa(digestReaders) || final.Failed != "0" || final.Pending != "0" || final.Bar != "100%" {
		t.Fatalf("the finished send shows %+v, want %d sent", final, digestReaders)
	}
	shots.take(ctx, "5-progress-done")
	for _, addr := range []string{"reader000@example.com", fmt.Sprintf("reader%03d@example.com", digestReaders-1)} {
		if msg := h.waitMail(addr, 1); msg.header.Get("Subject") != "Tonight from Westminster" {
			t.Fatalf("the digest to %s has subject %q", addr, msg.header.Get("Subject"))
		}
	}
}
