package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"herald/models"
	"herald/models/testdb"
	"herald/subscribers"
)

// browserTimeout bounds a whole browser test: starting Chromium and every
// step after it. A step that waits for something that never comes fails the
// test when it ends instead of hanging it.
const browserTimeout = 60 * time.Second

// timeTrap is HERALD_MIN_SUBMIT_TIME in the browser tests; the tests wait a
// little longer than this after the widget has loaded before they submit.
const timeTrap = time.Second

// browserEnv is the configuration of the browser tests: the dev mailbox (an
// empty HERALD_SMTP_URL overrides startHerald's SMTP server), a short time
// trap and an admin who can read the mailbox.
var browserEnv = map[string]string{
	"HERALD_SMTP_URL":        "",
	"HERALD_MIN_SUBMIT_TIME": timeTrap.String(),
	"HERALD_ADMIN_EMAIL":     "editor@example.com",
	"HERALD_ADMIN_PASSWORD":  "a long test password",
}

// findChromium returns the path of Chromium. Without it the test is
// skipped, or fails when HERALD_REQUIRE_BROWSER is set (as in CI).
func findChromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("HERALD_REQUIRE_BROWSER") != "" {
			t.Fatalf("HERALD_REQUIRE_BROWSER is set but Chromium is not installed (%v); install it with: apt-get install -y chromium", err)
		}
		t.Skipf("Chromium is not installed (%v); install it with apt-get install -y chromium, or set HERALD_REQUIRE_BROWSER to fail instead of skipping", err)
	}
	return path
}

// newBrowser starts the headless Chromium at path with an empty profile and
// returns a tab's context, which ends after browserTimeout.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	// Cleanups run last-first: the tab closes, then the allocator waits for
	// Chromium to exit, then the profile directory is removed.
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	// A desktop-sized viewport, set through the protocol rather than a
	// launch flag. It also makes full-page screenshots paint the mailbox's
	// sandboxed (out-of-process) preview frame, which they leave blank in
	// the default headless window.
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1024, 768)); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	return tab
}

// do runs steps in the tab and fails the test with what when one fails.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value and fails the test with what when
// it fails.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// follow runs a click (or other steps) that loads a new page, waits for it
// and fails the test unless the page's document answered 200.
func follow(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp == nil || resp.Status != 200 {
		var status int64
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("%s: the page answered %d", what, status)
	}
}

// screenshots saves full-page screenshots for a person to look at. They go
// to a temporary directory, or to HERALD_SCREENSHOT_DIR when set so that
// they outlive the test.
type screenshots struct {
	t   *testing.T
	dir string
}

func newScreenshots(t *testing.T) *screenshots {
	dir := os.Getenv("HERALD_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &screenshots{t: t, dir: dir}
}

func (s *screenshots) take(ctx context.Context, name string) {
	s.t.Helper()
	// A page that is reloading itself (the digest page does when a send
	// ends) has no size for a moment: wait until it has loaded, and try
	// again if it started loading in between.
	var png []byte
	var err error
	for try := 0; try < 5; try++ {
		if _, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.readyState === "complete" && document.documentElement.clientWidth > 0`,
			chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			continue
		}
		if png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(s.dir, strings.ReplaceAll(s.t.Name(), "/", "_")+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("screenshot: %s", path)
}

// openDemo loads the sample article and waits until widget.js (loaded
// async) has taken over its signup form.
func openDemo(t *testing.T, ctx context.Context, h *running) {
	t.Helper()
	follow(t, ctx, "open /demo", chromedp.Navigate(h.url+"/demo"))
	do(t, ctx, "wait for widget.js to enhance the form",
		chromedp.WaitReady(chromedp.CSS(`form[data-herald][data-herald-on] input[name="t"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#herald-email`)),
	)
}

// waitForMailbox polls the dev mailbox until a message to norm is kept.
func waitForMailbox(t *testing.T, ctx context.Context, h *running, norm string) models.MailboxMessage {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		msgs, err := h.app.store.MailboxMessages(ctx, 50, 0)
		if err != nil {
			t.Fatalf("read the dev mailbox: %v", err)
		}
		for _, m := range msgs {
			if strings.Contains(strings.ToLower(m.To), norm) {
				return m
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("no email to %s reached the dev mailbox; it holds %d messages", norm, len(msgs))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func subscriberStatus(t *testing.T, ctx context.Context, h *running, norm string) string {
	t.Helper()
	s, err := h.app.store.SubscriberByEmail(ctx, norm)
	if err != nil {
		t.Fatalf("subscriber %s: %v", norm, err)
	}
	return s.Status
}

// TestBrowserReaderSignsUpThroughWidget is the reader's path in a real
// browser: the widget on the demo article posts the signup as JSON and says
// so in place, the confirmation lands in the dev mailbox, an editor opens it
// there, and its link leads to the confirm page whose button subscribes.
func TestBrowserReaderSignsUpThroughWidget(t *testing.T) {
	chromium := findChromium(t)
	h := startHerald(t, testdb.DSN(t, testdb.SQLite), browserEnv)
	if !h.app.cfg.DevMailbox() {
		t.Fatal("an empty HERALD_SMTP_URL did not select the dev mailbox")
	}
	ctx := newBrowser(t, chromium)
	shots := newScreenshots(t)

	const email = "Browser.Reader@Example.com"
	_, norm, err := subscribers.ParseAddress(email)
	if err != nil {
		t.Fatal(err)
	}

	// 1. The reader fills in the box at the foot of the article.
	openDemo(t, ctx, h)
	do(t, ctx, "type the address", chromedp.SendKeys(chromedp.CSS(`#herald-email`), email))
	section := `form[data-herald] input[name="sections"][value="politics-uk"]`
	label := get(t, ctx, "read the section's label", chromedp.Text(chromedp.CSS(`form[data-herald] label.herald-choice:has(input[value="politics-uk"])`)))
	if !strings.Contains(label, "Follow Politics UK") {
		t.Fatalf("section label %q, want it to offer Follow Politics UK", label)
	}
	if !get(t, ctx, "read the section box", chromedp.Evaluate[bool](`document.querySelector('`+section+`').checked`)) {
		do(t, ctx, "tick Politics UK", chromedp.Click(chromedp.CSS(section)))
	}
	do(t, ctx, "tick the consent box", chromedp.Click(chromedp.CSS(`form[data-herald] input[name="consent"]`)))
	ticked := get(t, ctx, "read the boxes", chromedp.Evaluate[[]bool](`[
		document.querySelector('`+section+`').checked,
		document.querySelector('form[data-herald] input[name="consent"]').checked]`))
	if len(ticked) != 2 || !ticked[0] || !ticked[1] {
		t.Fatalf("Politics UK and consent checked = %v, want both", ticked)
	}
	typed := get(t, ctx, "read the address", chromedp.Value(chromedp.CSS(`#herald-email`)))
	if typed != email {
		t.Fatalf("the email field holds %q, want %q", typed, email)
	}

	// A form sent sooner than the time trap is taken for a bot's and dropped
	// silently, so wait past it. The marker is lost if the page navigates.
	do(t, ctx, "wait past the time trap, then subscribe",
		chromedp.Sleep(timeTrap+500*time.Millisecond),
		chromedp.Evaluate[chromedp.Void](`window.heraldBrowserTest = "same page"`),
		chromedp.Click(chromedp.CSS(`form[data-herald] button[type="submit"]`)),
	)
	status, err := chromedp.Run(ctx, chromedp.Poll[string](
		`(document.querySelector('form[data-herald] [role="status"].herald-status') || {}).textContent`,
		chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("wait for the widget's answer (page now at %s): %v", loc, err)
	}
	if !strings.Contains(status, "Check your inbox") {
		t.Fatalf("the status line says %q, want Check your inbox", status)
	}
	if cls := get(t, ctx, "read the status class", chromedp.AttributeValue(chromedp.CSS(`form[data-herald] .herald-status`), "class")); !strings.Contains(cls.Value, "herald-status-ok") {
		t.Fatalf("status class %q, want herald-status-ok", cls.Value)
	}
	if marker := get(t, ctx, "read the marker", chromedp.Evaluate[string](`window.heraldBrowserTest || ""`)); marker != "same page" {
		t.Fatal("the page reloaded: the widget did not post the signup as JSON")
	}
	if loc := get(t, ctx, "read the location", chromedp.Location()); loc != h.url+"/demo" {
		t.Fatalf("the page moved to %s, want it to stay on /demo", loc)
	}
	shots.take(ctx, "1-demo-signed-up")

	// 2. Herald keeps the reader pending and queues the confirmation.
	if st := subscriberStatus(t, ctx, h, norm); st != models.StatusPending {
		t.Fatalf("after signup the subscriber is %s, want %s", st, models.StatusPending)
	}
	kept := waitForMailbox(t, ctx, h, norm)
	if !strings.Contains(kept.Subject, "Confirm your subscription") {
		t.Fatalf("the kept message's subject is %q", kept.Subject)
	}

	// 3. The editor logs in and reads the dev mailbox.
	follow(t, ctx, "open the login page", chromedp.Navigate(h.url+"/admin/login"))
	do(t, ctx, "fill in the login form",
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), browserEnv["HERALD_ADMIN_EMAIL"]),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), browserEnv["HERALD_ADMIN_PASSWORD"]),
	)
	follow(t, ctx, "log in", chromedp.Click(chromedp.CSS(`form[action="/admin/login"] button[type="submit"]`)))
	if loc := get(t, ctx, "read the location", chromedp.Location()); loc != h.url+"/admin" {
		msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('.error-summary') || {}).textContent || ""`))
		t.Fatalf("after logging in the browser is at %s (%q), want the dashboard", loc, msg)
	}
	follow(t, ctx, "open the mailbox from the navigation", chromedp.Click(chromedp.CSS(`nav.mainnav a[href="/admin/mailbox"]`)))
	row := get(t, ctx, "read the mailbox", chromedp.Text(chromedp.CSS(`table.list tbody tr`)))
	if !strings.Contains(strings.ToLower(row), norm) || !strings.Contains(row, kept.Subject) {
		t.Fatalf("the mailbox's first row is %q, want the confirmation to %s", row, norm)
	}
	shots.take(ctx, "2-mailbox")
	follow(t, ctx, "open the message", chromedp.Click(chromedp.CSS(`table.list tbody a[href^="/admin/mailbox/"]`)))
	if h1 := get(t, ctx, "read the message's title", chromedp.Text(chromedp.CSS(`h1`))); h1 != kept.Subject {
		t.Fatalf("the message page's title is %q, want %q", h1, kept.Subject)
	}
	shots.take(ctx, "3-message-html")
	follow(t, ctx, "switch to the text view", chromedp.Click(chromedp.CSS(`nav.tabs a[href$="view=text"]`)))
	link := `pre.mail-text a[href*="/confirm/"]`
	do(t, ctx, "wait for the text view", chromedp.WaitVisible(chromedp.CSS(link)))
	shots.take(ctx, "4-message-text")
	href := get(t, ctx, "read the confirm link", chromedp.AttributeValue(chromedp.CSS(link), "href"))
	if !strings.HasPrefix(href.Value, h.url+"/confirm/") {
		t.Fatalf("the confirm link is %q, want it under %s/confirm/", href.Value, h.url)
	}

	// 4. The link opens a page with a button; opening it changes nothing.
	follow(t, ctx, "follow the confirm link", chromedp.Click(chromedp.CSS(link)))
	if loc := get(t, ctx, "read the location", chromedp.Location()); loc != href.Value {
		t.Fatalf("the confirm link led to %s, want %s", loc, href.Value)
	}
	if st := subscriberStatus(t, ctx, h, norm); st != models.StatusPending {
		t.Fatalf("opening the confirm link made the subscriber %s; a GET must not confirm", st)
	}
	shots.take(ctx, "5-confirm")
	button := `form[action^="/confirm/"] button[type="submit"]`
	if b := get(t, ctx, "read the button", chromedp.Text(chromedp.CSS(button))); b != "Confirm my subscription" {
		t.Fatalf("the confirm page's button says %q", b)
	}
	follow(t, ctx, "press Confirm my subscription", chromedp.Click(chromedp.CSS(button)))
	if h1 := get(t, ctx, "read the answer", chromedp.Text(chromedp.CSS(`h1`))); h1 != "You're subscribed" {
		t.Fatalf("after confirming the page says %q, want You're subscribed", h1)
	}
	if body := get(t, ctx, "read the page", chromedp.Text(chromedp.CSS(`body`))); !strings.Contains(body, "Politics UK") {
		t.Fatalf("the confirmed page does not list Politics UK:\n%s", body)
	}
	shots.take(ctx, "6-confirmed")
	if st := subscriberStatus(t, ctx, h, norm); st != models.StatusActive {
		t.Fatalf("after confirming the subscriber is %s, want %s", st, models.StatusActive)
	}
}

// TestBrowserWidgetShowsFieldErrors checks that the widget puts the server's
// field message next to the field, tied to it for screen readers.
func TestBrowserWidgetShowsFieldErrors(t *testing.T) {
	chromium := findChromium(t)
	h := startHerald(t, testdb.DSN(t, testdb.SQLite), browserEnv)
	ctx := newBrowser(t, chromium)
	shots := newScreenshots(t)
	openDemo(t, ctx, h)
	do(t, ctx, "tick the consent box", chromedp.Click(chromedp.CSS(`form[data-herald] input[name="consent"]`)))

	// The field is type=email, so the browser itself refuses "reader@" and
	// never fires submit: the widget sends nothing. The wait is for the
	// second attempt below: one quicker than the time trap would be answered
	// as a success and dropped.
	do(t, ctx, "submit a malformed address",
		chromedp.SendKeys(chromedp.CSS(`#herald-email`), "reader@"),
		chromedp.Sleep(timeTrap+500*time.Millisecond),
		chromedp.Click(chromedp.CSS(`form[data-herald] button[type="submit"]`)),
	)
	blocked := get(t, ctx, "read the form", chromedp.Evaluate[[]string](`[
		String(document.querySelector('#herald-email').validity.valid),
		document.querySelector('form[data-herald] .herald-status').textContent]`))
	if len(blocked) != 2 || blocked[0] != "false" || blocked[1] != "" {
		t.Fatalf("after a malformed address, [valid, status] = %q; want the browser to block the form", blocked)
	}

	// A well-formed address at a disposable-mail domain reaches the server,
	// which refuses it with a message for the email field. The field is emptied
	// by script: chromedp.Clear only resets the value attribute, which a
	// typed-in field ignores, and chromedp.SetValue refuses "".
	const disposable = "someone@mailinator.com"
	do(t, ctx, "submit a disposable address",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#herald-email').value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#herald-email`), disposable),
		chromedp.Click(chromedp.CSS(`form[data-herald] button[type="submit"]`)),
	)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`document.querySelector('#herald-email').getAttribute('aria-invalid') === 'true'`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[
			(document.querySelector('#herald-email') || {}).value || "",
			(document.querySelector('.herald-status') || {}).textContent || ""]`))
		if errors.Is(err, chromedp.ErrPollingTimeout) {
			t.Fatalf("the email field never got aria-invalid=true (page %s, [field, status] %q)", loc, state)
		}
		t.Fatalf("wait for aria-invalid (page %s, [field, status] %q): %v", loc, state, err)
	}
	got := get(t, ctx, "read the field's description", chromedp.Evaluate[map[string]any](`(() => {
		const input = document.querySelector('#herald-email');
		const ids = (input.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
		const notes = ids.map((id) => document.getElementById(id)).filter(Boolean);
		return {
			ids: ids.join(' '),
			text: notes.map((n) => n.textContent).join(' '),
			visible: notes.some((n) => !n.hidden && n.getClientRects().length > 0),
			besideField: notes.some((n) => n.closest('.herald-field') === input.closest('.herald-field')),
			focused: document.activeElement === input,
			status: document.querySelector('form[data-herald] .herald-status').textContent,
			stayed: location.pathname,
		};
	})()`))
	t.Logf("email field after the refusal: %v", got)
	if got["ids"] == "" {
		t.Fatal("the email field has no aria-describedby")
	}
	if text, _ := got["text"].(string); !strings.Contains(text, "Please use a permanent email address") {
		t.Fatalf("the field's description says %q, want the server's message about disposable addresses", text)
	}
	if got["visible"] != true || got["besideField"] != true {
		t.Fatalf("the message is not shown next to the email field: %v", got)
	}
	if got["focused"] != true {
		t.Fatalf("focus is not on the invalid email field: %v", got)
	}
	if got["stayed"] != "/demo" {
		t.Fatalf("the page moved to %v, want it to stay on /demo", got["stayed"])
	}
	shots.take(ctx, "field-error")
	if _, err := h.app.store.SubscriberByEmail(ctx, disposable); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("a refused address was stored (err %v)", err)
	}
}
