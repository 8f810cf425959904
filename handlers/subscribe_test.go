package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"herald/models"
	"herald/models/testdb"
)

func TestSubscribeJSONBadInput(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), map[string]string{"HERALD_MAX_BODY_BYTES": "2048"})
	tests := []struct {
		name, body string
		status     int
		field      string
		msg        string
	}{
		{"bad address", `{"email":"not-an-address","sections":["politics-uk"],"consent":true}`, 422, "email", "valid email"},
		{"empty address", `{"email":"","sections":["politics-uk"],"consent":true}`, 422, "email", "Enter your email"},
		{"CR/LF in address", `{"email":"a@example.com\r\nBcc: x@example.com","sections":["politics-uk"],"consent":true}`, 422, "email", "valid email"},
		{"too long", `{"email":"` + strings.Repeat("a", 65) + `@example.com","sections":["politics-uk"],"consent":true}`, 422, "email", "too long"},
		{"unknown section", `{"email":"a@example.com","sections":["sport"],"consent":true}`, 422, "sections", "Unknown section: sport"},
		{"no section", `{"email":"a@example.com","sections":[],"consent":true}`, 422, "sections", "at least one"},
		{"bad frequency", `{"email":"a@example.com","sections":["politics-uk"],"frequency":"hourly","consent":true}`, 422, "frequency", "instant, daily or weekly"},
		{"missing consent", `{"email":"a@example.com","sections":["politics-uk"]}`, 422, "consent", "tick the box"},
		{"disposable domain", `{"email":"a@mailinator.com","sections":["politics-uk"],"consent":true}`, 422, "email", "disposable"},
		{"malformed JSON", `{"email":`, 400, "", "not valid JSON"},
		{"empty body", ``, 400, "", "empty"},
		{"wrong type", `{"email":"a@example.com","sections":"politics-uk","consent":true}`, 400, "sections", "list of section slugs"},
		{"oversized body", `{"email":"a@example.com","source":"` + strings.Repeat("x", 4096) + `"}`, 413, "", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.postJSON("/api/v1/subscribe", tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tt.status, r.body)
			}
			var body struct {
				Error  string            `json:"error"`
				Fields map[string]string `json:"fields"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil {
				t.Fatalf("answer is not JSON: %q", r.body)
			}
			got := body.Error
			if tt.field != "" {
				got = body.Fields[tt.field]
			}
			if !strings.Contains(got, tt.msg) {
				t.Fatalf("message %q (field %q) does not say %q; body %s", got, tt.field, tt.msg, r.body)
			}
		})
	}
	counts, _ := h.store.SubscriberCounts(t.Context())
	if len(counts) != 0 {
		t.Fatalf("bad input stored subscribers: %v", counts)
	}
}

func TestSubscribeFormBadInput(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	base := func() url.Values {
		return url.Values{"email": {"reader@example.com"}, "sections": {"politics-uk"}, "frequency": {"daily"}, "consent": {"yes"}}
	}
	tests := []struct {
		name   string
		edit   func(url.Values)
		status int
		msg    string
	}{
		{"bad address", func(v url.Values) { v.Set("email", "reader@") }, 422, "Enter a valid email address"},
		{"CR/LF", func(v url.Values) { v.Set("email", "reader@example.com\r\nX: y") }, 422, "Enter a valid email address"},
		{"unknown section", func(v url.Values) { v["sections"] = []string{"<script>"} }, 422, "Unknown section: &lt;script&gt;"},
		{"bad frequency", func(v url.Values) { v.Set("frequency", "monthly") }, 422, "instant, daily or weekly"},
		{"missing consent", func(v url.Values) { v.Del("consent") }, 422, "tick the box"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := base()
			tt.edit(v)
			r := h.postForm("/subscribe", v)
			if r.status != tt.status || !strings.Contains(r.body, tt.msg) {
				t.Fatalf("status %d, want %d; page has %q? body: %.400s", r.status, tt.status, tt.msg, r.body)
			}
			if strings.Contains(r.body, "<script>") {
				t.Fatal("typed text reached the page unescaped")
			}
		})
	}
	big := base()
	big.Set("source", strings.Repeat("x", 70<<10))
	if r := h.postForm("/subscribe", big); r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized form: status %d", r.status)
	}
	r := h.postForm("/subscribe", base())
	if r.status != http.StatusSeeOther || r.header.Get("Location") != h.srv.URL+"/thanks" {
		t.Fatalf("good form: %d %s", r.status, r.header.Get("Location"))
	}
	if s := h.subscriber("reader@example.com"); s == nil || s.Status != models.StatusPending {
		t.Fatalf("good form stored %+v", s)
	}
}

func TestReturnToOnlyAllowedOrigins(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	for i, tt := range []struct{ returnTo, want string }{
		{"https://news.example.com/thanks?x=1", "https://news.example.com/thanks?x=1"},
		{"https://evil.example.net/phish", h.srv.URL + "/thanks"},
		{"//evil.example.net", h.srv.URL + "/thanks"},
		{"javascript:alert(1)", h.srv.URL + "/thanks"},
	} {
		v := url.Values{"email": {"r" + string(rune('a'+i)) + "@example.com"}, "sections": {"politics-uk"}, "consent": {"yes"}, "return_to": {tt.returnTo}}
		r := h.postForm("/subscribe", v)
		if r.status != http.StatusSeeOther || r.header.Get("Location") != tt.want {
			t.Errorf("return_to %q: %d → %q, want %q", tt.returnTo, r.status, r.header.Get("Location"), tt.want)
		}
	}
}

// TestNoEnumeration: the answer is the same whether the address is new,
// pending, active or unsubscribed.
func TestNoEnumeration(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		ctx := t.Context()
		for _, e := range []string{"pending@example.com", "active@example.com", "gone@example.com"} {
			if r := h.postJSON("/api/v1/subscribe", signupJSON(e)); r.status != http.StatusAccepted {
				t.Fatalf("setup %s: %d %s", e, r.status, r.body)
			}
		}
		if err := h.store.SetSubscriberStatus(ctx, h.subscriber("active@example.com").ID, models.StatusActive, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if err := h.store.SetSubscriberStatus(ctx, h.subscriber("gone@example.com").ID, models.StatusUnsubscribed, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		h.clock.Add(11 * time.Minute)
		var first response
		for i, e := range []string{"new@example.com", "pending@example.com", "active@example.com", "gone@example.com"} {
			r := h.postJSON("/api/v1/subscribe", signupJSON(e))
			if i == 0 {
				first = r
			}
			if r.status != first.status || r.body != first.body {
				t.Fatalf("%s answered %d %s; new address answered %d %s", e, r.status, r.body, first.status, first.body)
			}
			f := h.postForm("/subscribe", url.Values{"email": {e}, "sections": {"politics-uk"}, "consent": {"yes"}})
			if f.status != http.StatusSeeOther || f.header.Get("Location") != h.srv.URL+"/thanks" {
				t.Fatalf("form for %s answered %d %s", e, f.status, f.header.Get("Location"))
			}
		}
		if r := first; r.status != http.StatusAccepted || !strings.Contains(r.body, `"status":"pending"`) {
			t.Fatalf("answer %d %s", r.status, r.body)
		}
		// The active reader got a notice, not a second opt-in.
		if n := h.deliveries("active@example.com", models.KindNotice); n != 1 {
			t.Fatalf("active reader notices = %d, want 1", n)
		}
		if n := h.deliveries("active@example.com", models.KindConfirmation); n != 1 {
			t.Fatalf("active reader confirmations = %d, want only the first", n)
		}
		if s := h.subscriber("active@example.com"); s.Status != models.StatusActive {
			t.Fatalf("active reader became %s", s.Status)
		}
	})
}

// TestPerAddressThrottles: one confirmation per address per 10 minutes and
// three a day; one notice per 10 minutes.
func TestPerAddressThrottles(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn, nil)
		e := "reader@example.com"
		send := func() {
			t.Helper()
			if r := h.postJSON("/api/v1/subscribe", signupJSON(e)); r.status != http.StatusAccepted {
				t.Fatalf("signup: %d %s", r.status, r.body)
			}
		}
		send()
		send()
		send()
		if n := h.deliveries(e, models.KindConfirmation); n != 1 {
			t.Fatalf("3 signups in a minute queued %d confirmations, want 1", n)
		}
		h.clock.Add(10 * time.Minute)
		send()
		h.clock.Add(10 * time.Minute)
		send()
		h.clock.Add(10 * time.Minute)
		send()
		if n := h.deliveries(e, models.KindConfirmation); n != 3 {
			t.Fatalf("after 30 minutes: %d confirmations, want the daily cap of 3", n)
		}
		h.clock.Add(24 * time.Hour)
		send()
		if n := h.deliveries(e, models.KindConfirmation); n != 4 {
			t.Fatalf("next day: %d confirmations, want 4", n)
		}
		// Notices for an active address.
		if err := h.store.SetSubscriberStatus(t.Context(), h.subscriber(e).ID, models.StatusActive, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		send()
		send()
		if n := h.deliveries(e, models.KindNotice); n != 1 {
			t.Fatalf("two signups of an active address: %d notices, want 1", n)
		}
		h.clock.Add(10 * time.Minute)
		send()
		if n := h.deliveries(e, models.KindNotice); n != 2 {
			t.Fatalf("after 10 minutes: %d notices, want 2", n)
		}
	})
}

func TestPerIPLimit(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), map[string]string{"HERALD_SIGNUP_LIMIT": "3"})
	post := func(i int, xff string) response {
		body := signupJSON("ip" + string(rune('a'+i)) + "@example.com")
		return h.do(nil, http.MethodPost, "/api/v1/subscribe", "application/json", body, map[string]string{"X-Forwarded-For": xff})
	}
	for i := 0; i < 3; i++ {
		if r := post(i, "198.51.100.1"); r.status != http.StatusAccepted {
			t.Fatalf("signup %d: %d", i, r.status)
		}
	}
	// X-Forwarded-For is not believed without a trusted proxy: the same
	// client, whatever it claims, is limited.
	r := post(3, "198.51.100.2")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("4th signup in a minute: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	form := h.postForm("/subscribe", url.Values{"email": {"form@example.com"}, "sections": {"politics-uk"}, "consent": {"yes"}})
	if form.status != http.StatusTooManyRequests {
		t.Fatalf("the form shares the limit: %d", form.status)
	}
	h.clock.Add(21 * time.Second)
	if r := post(4, ""); r.status != http.StatusAccepted {
		t.Fatalf("after the bucket refills: %d", r.status)
	}
}

func TestTrustedProxyClientIP(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), map[string]string{"HERALD_SIGNUP_LIMIT": "1", "HERALD_TRUSTED_PROXIES": "127.0.0.1"})
	for i, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		body := signupJSON("p" + string(rune('a'+i)) + "@example.com")
		r := h.do(nil, http.MethodPost, "/api/v1/subscribe", "application/json", body, map[string]string{"X-Forwarded-For": ip})
		if r.status != http.StatusAccepted {
			t.Fatalf("client %s behind a trusted proxy: %d", ip, r.status)
		}
	}
	r := h.do(nil, http.MethodPost, "/api/v1/subscribe", "application/json", signupJSON("pz@example.com"), map[string]string{"X-Forwarded-For": "198.51.100.1"})
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("second signup from 198.51.100.1: %d", r.status)
	}
}

func TestHoneypotAndTimeTrap(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	hp := h.postJSON("/api/v1/subscribe", `{"email":"bot1@example.com","sections":["politics-uk"],"consent":true,"website":"http://spam"}`)
	good := h.postJSON("/api/v1/subscribe", signupJSON("human@example.com"))
	if hp.status != good.status || hp.body != good.body {
		t.Fatalf("honeypot answer %d %s differs from a real one %d %s", hp.status, hp.body, good.status, good.body)
	}
	if h.subscriber("bot1@example.com") != nil {
		t.Fatal("the honeypot bot was stored")
	}
	tok := h.subs.Tokens().TimeToken(h.clock.Now())
	fast := h.postForm("/subscribe", url.Values{"email": {"bot2@example.com"}, "sections": {"politics-uk"}, "consent": {"yes"}, "t": {tok}})
	if fast.status != http.StatusSeeOther || h.subscriber("bot2@example.com") != nil {
		t.Fatalf("a form sent at once: %d, stored: %v", fast.status, h.subscriber("bot2@example.com") != nil)
	}
	h.clock.Add(5 * time.Second)
	slow := h.postForm("/subscribe", url.Values{"email": {"person@example.com"}, "sections": {"politics-uk"}, "consent": {"yes"}, "t": {tok}})
	if slow.status != http.StatusSeeOther || h.subscriber("person@example.com") == nil {
		t.Fatalf("a form sent after 5 s: %d, not stored", slow.status)
	}
}

func TestCORS(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	pre := h.do(nil, http.MethodOptions, "/api/v1/subscribe", "", "", map[string]string{
		"Origin": "https://news.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
	})
	if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != "https://news.example.com" ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Fatalf("preflight from an allowed origin: %d %v", pre.status, pre.header)
	}
	other := h.do(nil, http.MethodOptions, "/api/v1/subscribe", "", "", map[string]string{"Origin": "https://evil.example.net"})
	if other.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("a foreign origin got CORS headers")
	}
	post := h.do(nil, http.MethodPost, "/api/v1/subscribe", "application/json", signupJSON("c@example.com"), map[string]string{"Origin": "https://news.example.com"})
	if post.status != http.StatusAccepted || post.header.Get("Access-Control-Allow-Origin") != "https://news.example.com" {
		t.Fatalf("cross-origin POST: %d %v", post.status, post.header)
	}
}

func TestPublicPages(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	for _, tt := range []struct{ path, want string }{
		{"/", `name="email"`},
		{"/demo", "Want to be notified of stories we publish?"},
		{"/demo", "Politics UK"},
		{"/thanks", "Check your inbox"},
		{"/widget.js", h.srv.URL + "/api/v1/subscribe"},
		{"/static/herald.css", "{"},
		{"/healthz", `"ok"`},
		{"/metrics", `herald_http_requests_total{code="200"}`},
	} {
		r := h.get(tt.path)
		if r.status != http.StatusOK || !strings.Contains(r.body, tt.want) {
			t.Errorf("GET %s: %d, want body with %q", tt.path, r.status, tt.want)
		}
	}
	js := h.get("/widget.js")
	if strings.Contains(js.body, "__HERALD_T__") || len(js.body) > 5*1024+200 {
		t.Errorf("widget.js: placeholder left or too big (%d bytes)", len(js.body))
	}
	if r := h.get("/no/such/page"); r.status != http.StatusNotFound {
		t.Errorf("unknown page: %d", r.status)
	}
}
