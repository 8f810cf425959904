package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"herald/models"
	"herald/subscribers"
)

func TestConfirmTokens(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		e := "reader@example.com"
		h.postJSON("/api/v1/subscribe", signupJSON(e))
		tok := h.token(subscribers.PurposeConfirm, e, h.clock.Now().Add(72*time.Hour))

		// GET shows a button and changes nothing (mail scanners fetch links).
		if r := h.get("/confirm/" + tok); r.status != http.StatusOK || !strings.Contains(r.body, "Confirm my subscription") {
			t.Fatalf("GET confirm: %d", r.status)
		}
		if s := h.subscriber(e); s.Status != models.StatusPending {
			t.Fatalf("GET changed the status to %s", s.Status)
		}
		// Tampered and wrong-purpose tokens are refused.
		bad := tok[:len(tok)-2] + "xx"
		if r := h.postForm("/confirm/"+bad, nil); r.status != http.StatusNotFound {
			t.Fatalf("tampered token: %d", r.status)
		}
		unsub := h.token(subscribers.PurposeUnsubscribe, e, time.Time{})
		if r := h.postForm("/confirm/"+unsub, nil); r.status != http.StatusNotFound {
			t.Fatalf("unsubscribe token used to confirm: %d", r.status)
		}
		if s := h.subscriber(e); s.Status != models.StatusPending {
			t.Fatalf("a bad token changed the status to %s", s.Status)
		}
		// Expired: the page offers a new link, POST does not confirm.
		h.clock.Add(73 * time.Hour)
		r := h.get("/confirm/" + tok)
		if r.status != http.StatusGone || !strings.Contains(r.body, "Send me a new link") {
			t.Fatalf("expired GET: %d", r.status)
		}
		if r := h.postForm("/confirm/"+tok, nil); r.status != http.StatusGone {
			t.Fatalf("expired POST: %d", r.status)
		}
		if s := h.subscriber(e); s.Status != models.StatusPending {
			t.Fatal("an expired token confirmed")
		}
		if r := h.postForm("/confirm/"+tok+"/resend", nil); r.status != http.StatusOK {
			t.Fatalf("resend: %d", r.status)
		}
		if n := h.deliveries(e, models.KindConfirmation); n != 2 {
			t.Fatalf("after resend: %d confirmations, want 2", n)
		}
		// A fresh token confirms; confirming twice is harmless.
		fresh := h.token(subscribers.PurposeConfirm, e, h.clock.Now().Add(72*time.Hour))
		for i := 0; i < 2; i++ {
			if r := h.postForm("/confirm/"+fresh, nil); r.status != http.StatusOK || !strings.Contains(r.body, "subscribed") {
				t.Fatalf("confirm #%d: %d", i+1, r.status)
			}
		}
		s := h.subscriber(e)
		if s.Status != models.StatusActive || s.ConfirmedAt == nil {
			t.Fatalf("after confirm: %+v", s)
		}
		evs, _ := h.store.ConsentEvents(t.Context(), s.ID)
		if len(evs) != 2 || evs[0].Kind != models.ConsentSignup || evs[1].Kind != models.ConsentConfirm {
			t.Fatalf("consent events %+v", evs)
		}
		if evs[0].ConsentText != h.cfg.ConsentText || evs[0].PolicyVersion != h.cfg.PrivacyVersion || evs[0].IP == "" || evs[0].MessageID == "" {
			t.Fatalf("signup event does not record the consent: %+v", evs[0])
		}
		// A confirm link issued before the reader unsubscribed cannot re-subscribe them.
		h.clock.Add(time.Minute)
		if r := h.postForm("/unsubscribe/"+unsub, nil); r.status != http.StatusOK {
			t.Fatalf("unsubscribe: %d", r.status)
		}
		if r := h.postForm("/confirm/"+fresh, nil); r.status != http.StatusGone {
			t.Fatalf("stale confirm after unsubscribe: %d", r.status)
		}
		if s := h.subscriber(e); s.Status != models.StatusUnsubscribed {
			t.Fatalf("stale confirm re-subscribed: %s", s.Status)
		}
	})
}

// TestOneClickUnsubscribe: RFC 8058 — a POST with no cookie and no CSRF
// token, answered 200, never a redirect.
func TestOneClickUnsubscribe(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		e := "reader@example.com"
		h.postJSON("/api/v1/subscribe", signupJSON(e))
		if err := h.store.SetSubscriberStatus(t.Context(), h.subscriber(e).ID, models.StatusActive, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		tok := h.token(subscribers.PurposeUnsubscribe, e, time.Time{})
		if r := h.get("/unsubscribe/" + tok); r.status != http.StatusOK || h.subscriber(e).Status != models.StatusActive {
			t.Fatalf("GET unsubscribe: %d, status %s", r.status, h.subscriber(e).Status)
		}
		bare := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		r := h.do(bare, http.MethodPost, "/unsubscribe/"+tok, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click", nil)
		if r.status != http.StatusOK {
			t.Fatalf("one-click POST: %d (Location %q)", r.status, r.header.Get("Location"))
		}
		if s := h.subscriber(e); s.Status != models.StatusUnsubscribed || s.UnsubscribedAt == nil {
			t.Fatalf("after one-click: %s", s.Status)
		}
		again := h.do(bare, http.MethodPost, "/unsubscribe/"+tok, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click", nil)
		if again.status != http.StatusOK {
			t.Fatalf("second one-click: %d", again.status)
		}
		evs, _ := h.store.ConsentEvents(t.Context(), h.subscriber(e).ID)
		if last := evs[len(evs)-1]; last.Kind != models.ConsentUnsubscribe || last.Form != "one-click" {
			t.Fatalf("last consent event %+v", last)
		}
		n := 0
		for _, ev := range evs {
			if ev.Kind == models.ConsentUnsubscribe {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d unsubscribe events for two clicks, want 1", n)
		}
	})
}

func TestPreferencesExportErase(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		e := "Reader@Example.com"
		h.postJSON("/api/v1/subscribe", signupJSON(e))
		tok := h.token(subscribers.PurposePreferences, e, time.Time{})
		if r := h.get("/preferences/" + tok); r.status != http.StatusOK || !strings.Contains(r.body, "Reader@Example.com") {
			t.Fatalf("preferences page: %d", r.status)
		}
		v := url.Values{"sections": {"politics-uk", "world"}, "frequency_politics-uk": {"instant"}, "frequency_world": {"weekly"}}
		if r := h.postForm("/preferences/"+tok, v); r.status != http.StatusOK || !strings.Contains(r.body, "saved") {
			t.Fatalf("save: %d", r.status)
		}
		subs, _ := h.store.Subscriptions(t.Context(), h.subscriber(e).ID)
		got := map[string]string{}
		for _, s := range subs {
			got[s.Slug] = s.Frequency
		}
		if len(got) != 2 || got["politics-uk"] != "instant" || got["world"] != "weekly" {
			t.Fatalf("subscriptions after save: %v", got)
		}
		if r := h.postForm("/preferences/"+tok, url.Values{"sections": {"world"}, "frequency_world": {"yearly"}}); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("bad frequency: %d", r.status)
		}
		ex := h.get("/preferences/" + tok + "/export")
		var data subscribers.DataExport
		if ex.status != http.StatusOK || json.Unmarshal([]byte(ex.body), &data) != nil {
			t.Fatalf("export: %d %.200s", ex.status, ex.body)
		}
		if data.Email != e || len(data.Subscriptions) != 2 || len(data.ConsentEvents) != 2 || data.ConsentEvents[0].IP == "" {
			t.Fatalf("export content: %+v", data)
		}
		// Erase needs the box ticked.
		if r := h.postForm("/preferences/"+tok+"/erase", nil); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("erase without confirm: %d", r.status)
		}
		id := h.subscriber(e).ID
		if r := h.postForm("/preferences/"+tok+"/erase", url.Values{"confirm": {"yes"}}); r.status != http.StatusOK || !strings.Contains(r.body, "erased") {
			t.Fatalf("erase: %d", r.status)
		}
		if h.subscriber(e) != nil {
			t.Fatal("the address is still findable after erasure")
		}
		sub, _ := h.store.SubscriberByID(t.Context(), id)
		if sub.Status != models.StatusErased || strings.Contains(strings.ToLower(sub.Email), "reader") {
			t.Fatalf("erased row: %+v", sub)
		}
		evs, _ := h.store.ConsentEvents(t.Context(), id)
		for _, ev := range evs {
			if ev.IP != "" || ev.UserAgent != "" || ev.SourceURL != "" {
				t.Fatalf("personal data left in consent event %+v", ev)
			}
		}
		if _, brk, err := h.store.VerifySubscriberConsent(t.Context(), id); err != nil || brk != nil {
			t.Fatalf("chain after erasure: %v %v", brk, err)
		}
		_, norm, _ := subscribers.ParseAddress(e)
		if sup, _ := h.store.Suppressions(t.Context(), []string{norm}); sup[norm] != models.SuppressErased {
			t.Fatalf("no suppression hash after erasure: %v", sup)
		}
		if r := h.get("/preferences/" + tok); r.status != http.StatusNotFound {
			t.Fatalf("preferences after erasure: %d", r.status)
		}
		// Signing up again is a fresh opt-in: a new pending row and a confirmation.
		h.clock.Add(time.Hour)
		h.postJSON("/api/v1/subscribe", signupJSON(e))
		again := h.subscriber(e)
		if again == nil || again.ID == id || again.Status != models.StatusPending {
			t.Fatalf("re-signup after erasure: %+v", again)
		}
	})
}
