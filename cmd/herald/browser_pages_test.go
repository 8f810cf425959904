package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"herald/models/testdb"
	"herald/stories"
)

// adminPages are the main admin pages every editor or admin sees.
var adminPages = []struct{ name, path string }{
	{"dashboard", "/admin"},
	{"stories", "/admin/stories"},
	{"story-new", "/admin/stories/new"},
	{"digests", "/admin/digests"},
	{"digest-new", "/admin/digests/new"},
	{"subscribers", "/admin/subscribers"},
	{"import", "/admin/subscribers/import"},
	{"sections", "/admin/sections"},
	{"feeds", "/admin/feeds"},
	{"embed", "/admin/embed"},
	{"audit", "/admin/audit"},
	{"account", "/admin/account"},
	{"mailbox", "/admin/mailbox"},
	{"users", "/admin/users"},
	{"keys", "/admin/keys"},
	{"settings", "/admin/settings"},
}

// unlabelled lists the visible form controls of the page that have no
// label a screen reader can announce.
const unlabelled = `Array.from(document.querySelectorAll('input, select, textarea'))
	.filter(el => el.type !== 'hidden' && el.type !== 'submit' && el.type !== 'button' && !el.hidden && el.offsetParent !== null)
	.filter(el => el.labels.length === 0 && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
	.map(el => el.outerHTML.slice(0, 120))`

// sticksOut lists the innermost elements wider than the page, to say what
// makes a page scroll sideways.
const sticksOut = `Array.from(document.querySelectorAll('body *'))
	.filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
	.filter(el => !Array.from(el.children).some(k => k.getBoundingClientRect().right > document.documentElement.clientWidth + 1))
	.slice(0, 5).map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))`

// focusShown says whether the focused element draws an outline, as it must
// when it was reached with the keyboard.
const focusShown = `(() => {
	const el = document.activeElement;
	if (!el || el === document.body) return "nothing focused";
	const cs = getComputedStyle(el);
	return (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== 'none' ? "" : "no visible focus on " + el.outerHTML.slice(0, 80);
})()`

// TestBrowserAdminPagesAccessible opens every main admin page in Chromium,
// on a desktop and on a phone-sized screen: each has a heading, labels on
// its form controls, a visible keyboard focus and no sideways scrolling of
// the page on a phone. It saves a screenshot of each.
func TestBrowserAdminPagesAccessible(t *testing.T) {
	chromium := findChromium(t)
	h := startHerald(t, testdb.DSN(t, testdb.SQLite), browserEnv)
	bg := context.Background()
	for i, title := range []string{"Budget passes after a long night in the Commons", "Talks resume in Geneva"} {
		if _, _, err := h.app.stories.Ingest(bg, stories.Input{
			URL: "https://news.example.com/story-" + string(rune('a'+i)), Title: title,
			Summary: "<p>What happened, and why it matters.</p>", Sections: []string{"politics-uk"},
			PublishedAt: time.Now().Add(-time.Duration(i) * time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := newBrowser(t, chromium)
	shots := newScreenshots(t)
	follow(t, ctx, "open the login page", chromedp.Navigate(h.url+"/admin/login"))
	do(t, ctx, "fill in the login form",
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), browserEnv["HERALD_ADMIN_EMAIL"]),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), browserEnv["HERALD_ADMIN_PASSWORD"]),
	)
	follow(t, ctx, "log in", chromedp.Click(chromedp.CSS(`form[action="/admin/login"] button[type="submit"]`)))

	for _, p := range adminPages {
		do(t, ctx, "desktop viewport", chromedp.EmulateViewport(1280, 900))
		follow(t, ctx, "open "+p.path, chromedp.Navigate(h.url+p.path))
		h1 := get(t, ctx, p.path+": read the heading", chromedp.Evaluate[string](`(document.querySelector('main h1') || {}).textContent || ""`))
		if strings.TrimSpace(h1) == "" {
			t.Errorf("%s has no heading", p.path)
		}
		if bad := get(t, ctx, p.path+": find unlabelled controls", chromedp.Evaluate[[]string](unlabelled)); len(bad) > 0 {
			t.Errorf("%s has form controls without a label: %v", p.path, bad)
		}
		// The first Tab reaches the skip link, the next ones the navigation.
		for i := 0; i < 3; i++ {
			do(t, ctx, p.path+": press Tab", chromedp.KeyEvent(kb.Tab))
			if msg := get(t, ctx, p.path+": check the focus", chromedp.Evaluate[string](focusShown)); msg != "" {
				t.Errorf("%s after %d Tab presses: %s", p.path, i+1, msg)
			}
		}
		shots.take(ctx, p.name)

		do(t, ctx, "phone viewport", chromedp.EmulateViewport(375, 740, chromedp.EmulateMobile))
		follow(t, ctx, "reopen "+p.path+" on a phone", chromedp.Navigate(h.url+p.path))
		overflow := get(t, ctx, p.path+": measure the page", chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
		if overflow > 1 {
			wide := get(t, ctx, p.path+": find what sticks out", chromedp.Evaluate[[]string](sticksOut))
			t.Errorf("%s on a 375px phone scrolls sideways by %dpx; sticking out: %v", p.path, overflow, wide)
		}
		shots.take(ctx, p.name+"-phone")
	}
}
