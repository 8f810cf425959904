package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/models"
	"herald/models/testdb"
)

// upload posts a file to the import form as c.
func upload(t *testing.T, h *harness, c *http.Client, csrf, name string, content []byte, sendConfirmations bool) response {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("csrf_token", csrf)
	if sendConfirmations {
		_ = w.WriteField("send_confirmations", "1")
	}
	if name != "" {
		fw, err := w.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(content)
	}
	_ = w.Close()
	return h.do(c, http.MethodPost, "/admin/subscribers/import", w.FormDataContentType(), body.String(), nil)
}

var (
	tokenField = regexp.MustCompile(`name="token" value="([0-9a-f]+)"`)
	statValue  = regexp.MustCompile(`<span class="value">(\d+)</span><span class="label">([^<]+)</span>`)
)

// stats reads the stat boxes of a page, keyed by the label's first word.
func stats(body string) map[string]int {
	out := map[string]int{}
	for _, m := range statValue.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.Atoi(m[1])
		out[strings.Fields(m[2])[0]] = n
	}
	return out
}

func TestAdminSubscriberImport(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		kind := testdb.SQLite
		if models.IsPostgres(dsn) {
			kind = testdb.Postgres
		}
		for i, send := range []bool{false, true} {
			t.Run(fmt.Sprintf("confirmations=%v", send), func(t *testing.T) {
				if i > 0 {
					dsn = testdb.DSN(t, kind) // a fresh database for each run
				}
				h := newHarness(t, dsn, nil)
				importReaders(t, h, 1) // reader001@example.com is known
				c, csrf := h.adminClient("editor")
				if r := h.do(c, http.MethodGet, "/admin/subscribers/import", "", "", nil); r.status != http.StatusOK || !strings.Contains(r.body, `type="file"`) {
					t.Fatalf("import page: %d", r.status)
				}
				file := "email,status,subscriptions,created_at,confirmed_at,source\n" +
					"new-active@example.com,active,world:daily,2026-01-01T10:00:00Z,2026-01-02T10:00:00Z,old list\n" + // line 2
					"new-pending@example.com,,politics-uk:weekly,,,old list\n" + // line 3
					"READER001@example.com,,,,,old list\n" + // line 4: known
					"not an address,,,,,\n" + // line 5: invalid
					"also-pending@example.com\n" + // line 6
					"no-proof@example.com,active,,,,\n" // line 7: active without confirmed_at
				r := upload(t, h, c, csrf, "list.csv", []byte(file), send)
				if r.status != http.StatusOK {
					t.Fatalf("preview: %d %.500s", r.status, r.body)
				}
				st := stats(r.body)
				if st["new"] != 3 || st["already"] != 1 || st["invalid"] != 2 {
					t.Fatalf("preview counts %v: %.3000s", st, r.body)
				}
				for _, want := range []string{`<td class="num">5</td><td>email:`, `<td class="num">7</td>`, `<td class="num">4</td><td>already a subscriber`,
					"<strong>1</strong> active", "<strong>2</strong> pending"} {
					if !strings.Contains(r.body, want) {
						t.Errorf("preview lacks %q", want)
					}
				}
				if send != strings.Contains(r.body, "<strong>2</strong> confirmation emails will be sent") {
					t.Errorf("preview's confirmation line wrong for send=%v", send)
				}
				// The preview writes nothing.
				if h.subscriber("new-active@example.com") != nil {
					t.Fatal("the preview imported a row")
				}
				m := tokenField.FindStringSubmatch(r.body)
				if m == nil {
					t.Fatal("no token in the preview")
				}
				v := url.Values{"token": {m[1]}}
				if send {
					v.Set("send_confirmations", "1")
				}
				r = h.adminPost(c, csrf, "/admin/subscribers/import/confirm", v)
				if r.status != http.StatusOK {
					t.Fatalf("confirm: %d %.500s", r.status, r.body)
				}
				wantQueued := map[bool]int{false: 0, true: 2}[send]
				if st := stats(r.body); st["imported"] != 3 || st["skipped"] != 1 || st["invalid"] != 2 || st["confirmation"] != wantQueued {
					t.Fatalf("result %v", st)
				}
				if s := h.subscriber("new-active@example.com"); s == nil || s.Status != models.StatusActive || lastEvent(t, h, s.ID).Kind != models.ConsentImport {
					t.Fatalf("active row: %+v", s)
				}
				for _, e := range []string{"new-pending@example.com", "also-pending@example.com"} {
					if s := h.subscriber(e); s == nil || s.Status != models.StatusPending {
						t.Fatalf("%s: %+v", e, s)
					}
					if n := h.deliveries(e, models.KindConfirmation); n != wantQueued/2 {
						t.Fatalf("%s: %d confirmations, want %d", e, n, wantQueued/2)
					}
				}
				if n := h.deliveries("new-active@example.com", models.KindConfirmation); n != 0 {
					t.Fatalf("the active row got %d confirmations", n)
				}
				es, _ := h.store.AuditEntries(context.Background(), models.AuditFilter{Action: "subscriber.import"})
				if len(es) != 1 || !strings.Contains(es[0].Detail, "imported 3") || !strings.Contains(es[0].Detail, fmt.Sprintf("queued %d", wantQueued)) {
					t.Fatalf("audit: %+v", es)
				}
				// The token is single-use.
				if r := h.adminPost(c, csrf, "/admin/subscribers/import/confirm", v); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "expired") {
					t.Fatalf("second confirm: %d", r.status)
				}
				for _, bad := range []string{"../../etc/passwd", "", strings.Repeat("0", 32)} {
					if r := h.adminPost(c, csrf, "/admin/subscribers/import/confirm", url.Values{"token": {bad}}); r.status != http.StatusUnprocessableEntity {
						t.Fatalf("token %q: %d", bad, r.status)
					}
				}
			})
		}
	})
}

func TestAdminSubscriberImportBadFiles(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), map[string]string{"HERALD_IMPORT_MAX_BYTES": "4096"})
	c, csrf := h.adminClient("editor")
	cases := []struct {
		name    string
		file    string
		content []byte
		status  int
		want    string
	}{
		{"no file", "", nil, http.StatusUnprocessableEntity, "Choose a CSV file"},
		{"empty", "list.csv", []byte(" \n"), http.StatusUnprocessableEntity, "The file is empty"},
		{"binary", "list.png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), http.StatusUnprocessableEntity, "not a CSV file"},
		{"wrong header", "list.csv", []byte("name,address\nA,a@example.com\n"), http.StatusUnprocessableEntity, "include &#34;email&#34;"},
		{"header only", "list.csv", []byte("email,status\n"), http.StatusUnprocessableEntity, "no subscribers"},
		{"broken quoting", "list.csv", []byte("\"email\nx"), http.StatusUnprocessableEntity, "not a CSV header row"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := upload(t, h, c, csrf, tc.file, tc.content, false)
			if r.status != tc.status || !strings.Contains(r.body, tc.want) || !strings.Contains(r.body, `<p class="field-error" id="file-error">`) ||
				!strings.Contains(r.body, `aria-invalid="true"`) {
				t.Fatalf("%d %.3000s", r.status, r.body)
			}
		})
	}
	// An upload left for over an hour is deleted and cannot be imported.
	r := upload(t, h, c, csrf, "list.csv", []byte("email\nlate@example.com\n"), false)
	m := tokenField.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("preview: %d", r.status)
	}
	kept := filepath.Join(h.cfg.DataDir, "imports", m[1]+".csv")
	old := time.Now().Add(-61 * time.Minute)
	if err := os.Chtimes(kept, old, old); err != nil {
		t.Fatal(err)
	}
	if r := h.adminPost(c, csrf, "/admin/subscribers/import/confirm", url.Values{"token": {m[1]}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "expired") {
		t.Fatalf("stale upload: %d", r.status)
	}
	if _, err := os.Stat(kept); !os.IsNotExist(err) || h.subscriber("late@example.com") != nil {
		t.Fatalf("stale upload still there (%v) or imported", err)
	}

	// Too big: the body limit sends the editor back to the form before the
	// file is read, and the form says why next to the file field.
	r = upload(t, h, c, csrf, "big.csv", bytes.Repeat([]byte("a@example.com\n"), 1000), false)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/admin/subscribers/import?error=too_big" {
		t.Fatalf("too big: %d to %q", r.status, r.header.Get("Location"))
	}
	if r := h.do(c, http.MethodGet, r.header.Get("Location"), "", "", nil); !strings.Contains(r.body, "too large") || !strings.Contains(r.body, `class="field-error"`) {
		t.Fatal("no too-large message next to the file field")
	}
	if h.subscriber("a@example.com") != nil {
		t.Fatal("an oversized upload imported a row")
	}
}

// A CSV upload may take longer than the server's read timeout (a large file
// on a slow line): the import page moves its deadline. Another form posted
// as slowly is cut off by the timeout, as it should be.
func TestAdminSubscriberImportOutlastsReadTimeout(t *testing.T) {
	h := newHarness(t, testdb.DSN(t, testdb.SQLite), nil)
	c, csrf := h.adminClient(models.RoleEditor)
	slow := httptest.NewUnstartedServer(h.server)
	slow.Config.ReadTimeout = 300 * time.Millisecond
	slow.Start()
	t.Cleanup(slow.Close)

	post := func(path, contentType string, body []byte) (int, error) {
		pr, pw := io.Pipe()
		go func() {
			half := len(body) / 2
			_, _ = pw.Write(body[:half])
			time.Sleep(time.Second) // well past the read timeout
			_, _ = pw.Write(body[half:])
			_ = pw.Close()
		}()
		req, err := http.NewRequest(http.MethodPost, slow.URL+path, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		req.ContentLength = int64(len(body))
		u, _ := url.Parse(h.srv.URL + "/admin/")
		for _, ck := range c.Jar.Cookies(u) {
			req.AddCookie(ck)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		return resp.StatusCode, nil
	}

	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("csrf_token", csrf)
	fw, _ := w.CreateFormFile("file", "readers.csv")
	_, _ = fw.Write([]byte("email,status\nslow.reader@example.com,pending\n"))
	_ = w.Close()
	if status, err := post("/admin/subscribers/import", w.FormDataContentType(), body.Bytes()); err != nil || status != http.StatusOK {
		t.Fatalf("slow upload to the import page: %d %v, want the preview", status, err)
	}
	form := url.Values{"csrf_token": {csrf}, "email": {"x@example.com"}, "role": {"editor"}, "password": {strings.Repeat("p", 40)}}
	if status, err := post("/admin/users", "application/x-www-form-urlencoded", []byte(form.Encode())); err == nil && status < 400 {
		t.Fatalf("a slow post to another form got %d: the read timeout did not apply", status)
	}
}
