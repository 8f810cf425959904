package handlers_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"herald/accounts"
	"herald/config"
	"herald/digests"
	"herald/handlers"
	"herald/models"
	"herald/models/testdb"
	"herald/stories"
	"herald/subscribers"
	"herald/templates"
)

// benchReaders is how many subscribers BenchmarkAdminListPages seeds.
const benchReaders = 1_000_000

// benchReader is the reader whose page is measured: active, in
// politics-uk and world (see seedBench).
const benchReader = 500002

// adminListURLs are the admin pages measured on a large database. A page
// The first request of each is timed on its own too: it fills the
// dashboard's figures, which later requests read from memory.
var adminListURLs = []struct{ name, path string }{
	{"subscribers", "/admin/subscribers"},
	{"subscribers_pending", "/admin/subscribers?status=pending"},
	{"subscribers_unsubscribed_rare", "/admin/subscribers?status=unsubscribed"},
	{"subscribers_bounced_none", "/admin/subscribers?status=bounced"},
	{"subscribers_section_big", "/admin/subscribers?section=politics-uk"},
	{"subscribers_section_rare", "/admin/subscribers?section=business"},
	{"subscribers_section_empty", "/admin/subscribers?section=culture"},
	{"subscribers_section_status", "/admin/subscribers?section=world&status=active"},
	{"subscribers_section_rare_status", "/admin/subscribers?section=politics-uk&status=unsubscribed"},
	{"subscribers_section_status_disjoint", "/admin/subscribers?section=world&status=pending"},
	{"subscribers_q_broad", "/admin/subscribers?q=k"},
	{"subscribers_q_narrow", "/admin/subscribers?q=ka"},
	{"subscribers_q_section_status", "/admin/subscribers?q=k&section=sport&status=active"},
	{"subscribers_deep_page", "/admin/subscribers?before=1000"},
	{"subscribers_deep_page_status", "/admin/subscribers?status=pending&before=2000"},
	{"subscribers_newer_page", "/admin/subscribers?after=500000"},
	{"subscriber_page", fmt.Sprintf("/admin/subscribers/%d", benchReader)},
	{"dashboard", "/admin"},
	{"digests", "/admin/digests"},
	{"stories", "/admin/stories"},
	{"audit", "/admin/audit"},
	{"compose", "/admin/digests/new"},
	{"digest_page", "/admin/digests/1"},
	{"sections", "/admin/sections"},
	{"feeds", "/admin/feeds"},
	{"keys", "/admin/keys"},
	{"users", "/admin/users"},
	{"mailbox", "/admin/mailbox"},
	{"embed", "/admin/embed"},
}

// BenchmarkAdminListPages measures the admin list pages through the whole
// HTTP stack on a SQLite file with a million subscribers. Seeding takes a
// while; HERALD_BENCH_DB names a file to keep, so later runs skip it.
func BenchmarkAdminListPages(b *testing.B) {
	path := os.Getenv("HERALD_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	store := testdb.Open(b, path)
	var sections int64
	if err := sqlDB(b, path).QueryRow(`SELECT COUNT(*) FROM sections`).Scan(&sections); err != nil {
		b.Fatal(err)
	}
	if sections == 0 {
		start := time.Now()
		seedBench(b, path)
		seedBenchLedger(b, store)
		b.Logf("seeded %d subscribers in %s", benchReaders, time.Since(start).Round(time.Millisecond))
	}
	// The scheduler keeps the counts of ended digests; do what it would.
	if _, err := store.FinishDigests(context.Background(), time.Now()); err != nil {
		b.Fatal(err)
	}
	srv, client := benchServer(b, store)

	rows := regexp.MustCompile(`<td><a href="/admin/subscribers/\d+">`)
	for _, u := range adminListURLs {
		first := time.Now()
		resp, body := benchGet(b, client, srv.URL+u.path)
		b.Logf("%-38s first request %s", u.name, time.Since(first).Round(100*time.Microsecond))
		switch {
		case resp != http.StatusOK:
			b.Errorf("%s: status %d: %.300s", u.path, resp, body)
			continue
		}
		if strings.HasPrefix(u.path, "/admin/subscribers?") || u.path == "/admin/subscribers" {
			b.Logf("%-38s %d rows shown", u.name, len(rows.FindAllString(body, -1)))
		}
		b.Run(u.name, func(b *testing.B) {
			for b.Loop() {
				if status, body := benchGet(b, client, srv.URL+u.path); status != http.StatusOK {
					b.Fatalf("%s: status %d: %.300s", u.path, status, body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
}

func sqlDB(b *testing.B, path string) *sql.DB {
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// seedBench fills the database with set-based statements (recursive CTEs):
// subscribers with realistic spreads of status and sections, a confirmation
// email each, a digest sent to one section, stories and an audit log.
//
//	status: unsubscribed 0.5% (id%200=0), pending 20% (id%5=1), else active
//	sections: politics-uk 50% (even ids), world 30% (id%10 in 2,3,4: never
//	pending), sport 14% (id%7=0), business 0.1% (id%1000=3), culture none
//	address: three letters from a hash of the id, then ".readerID@…"
func seedBench(b *testing.B, path string) {
	db := sqlDB(b, path)
	db.SetMaxOpenConns(1)
	seq := func(n int) string {
		return fmt.Sprintf("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < %d) ", n)
	}
	stmts := []string{
		`PRAGMA synchronous = OFF`,
		`BEGIN`,
		`INSERT INTO sections (id, slug, name, created_at) VALUES
			(1, 'politics-uk', 'Politics UK', '2024-01-01 00:00:00'), (2, 'world', 'World', '2024-01-01 00:00:00'),
			(3, 'sport', 'Sport', '2024-01-01 00:00:00'), (4, 'business', 'Business', '2024-01-01 00:00:00'),
			(5, 'culture', 'Culture', '2024-01-01 00:00:00')`,
		seq(benchReaders) + `INSERT INTO subscribers (id, email, email_norm, status, source, locale, created_at, updated_at,
			confirmed_at, unsubscribed_at, confirm_day_count)
		SELECT i, e, e, st, 'seed', 'en', ct, ct,
			CASE WHEN st <> 'pending' THEN ct END, CASE WHEN st = 'unsubscribed' THEN ct END, 0
		FROM (SELECT i,
			char(97 + h % 26) || char(97 + (h / 26) % 26) || char(97 + (h / 676) % 26) || '.reader' || i || '@example' || (i % 97) || '.com' AS e,
			CASE WHEN i % 200 = 0 THEN 'unsubscribed' WHEN i % 5 = 1 THEN 'pending' ELSE 'active' END AS st,
			datetime('2024-01-01', '+' || (i * 60) || ' seconds') AS ct
			FROM (SELECT i, (i * 2654435761) % 4294967296 AS h FROM n))`,
		seq(benchReaders) + `INSERT INTO subscriptions (subscriber_id, section_id, frequency, created_at)
		SELECT i, s, CASE (i / 2) % 3 WHEN 0 THEN 'daily' WHEN 1 THEN 'weekly' ELSE 'instant' END, '2024-01-01 00:00:00'
		FROM (SELECT i, 1 AS s FROM n WHERE i % 2 = 0
			UNION ALL SELECT i, 2 FROM n WHERE i % 10 IN (2, 3, 4)
			UNION ALL SELECT i, 3 FROM n WHERE i % 7 = 0
			UNION ALL SELECT i, 4 FROM n WHERE i % 1000 = 3)
		ORDER BY i, s`,
		`INSERT INTO deliveries (kind, subscriber_id, to_address, status, next_attempt_at, attempts, message_id, data, created_at, sent_at)
		SELECT 'confirmation', id, email, 'sent', created_at, 1, 'seed-' || id || '@localhost', '{}', created_at, created_at FROM subscribers`,
		seq(20000) + `INSERT INTO stories (url, guid, title, summary, origin, published_at, created_at)
		SELECT 'https://news.example.com/story/' || i, 'story-' || i, 'Story number ' || i, 'A summary of story ' || i, 'feed',
			datetime('2025-01-01', '+' || (i * 600) || ' seconds'), datetime('2025-01-01', '+' || (i * 600) || ' seconds') FROM n`,
		`INSERT INTO story_sections (story_id, section_id) SELECT id, 1 + id % 4 FROM stories`,
		seq(300) + `INSERT INTO digests (key, kind, subject, intro, status, sections, frequencies, period_start, period_end,
			started_at, finished_at, recipients, created_at, updated_at)
		SELECT 'daily:seed-' || i, 'daily', 'Daily digest ' || i, '', 'sent', 'politics-uk', 'daily',
			datetime('2025-01-01', '+' || i || ' days'), datetime('2025-01-02', '+' || i || ' days'),
			datetime('2025-01-02', '+' || i || ' days'), datetime('2025-01-02', '+' || i || ' days'), 0,
			datetime('2025-01-02', '+' || i || ' days'), datetime('2025-01-02', '+' || i || ' days') FROM n`,
		`INSERT INTO digest_stories (digest_id, story_id, position) SELECT d.id, d.id * 10 + k.k, k.k
		FROM digests d, (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) k`,
		// The latest digest went to every active politics-uk reader.
		`INSERT INTO deliveries (kind, subscriber_id, digest_id, to_address, status, next_attempt_at, attempts, message_id, data, created_at, sent_at)
		SELECT 'digest', s.id, (SELECT MAX(id) FROM digests), s.email, 'sent', '2025-10-28 07:00:00', 1, 'seed-d-' || s.id || '@localhost', '{}',
			'2025-10-28 07:00:00', '2025-10-28 07:05:00'
		FROM subscribers s JOIN subscriptions x ON x.subscriber_id = s.id AND x.section_id = 1 WHERE s.status = 'active'`,
		`UPDATE digests SET recipients = (SELECT COUNT(*) FROM deliveries WHERE digest_id = digests.id) WHERE id = (SELECT MAX(id) FROM digests)`,
		seq(20000) + `INSERT INTO audit_entries (at, user_id, user_email, action, target, detail, ip)
		SELECT datetime('2025-01-01', '+' || (i * 900) || ' seconds'), 0, 'editor@example.com',
			CASE i % 3 WHEN 0 THEN 'digest.send' WHEN 1 THEN 'story.edit' ELSE 'subscriber.export' END, 'seed #' || i, '', '127.0.0.1' FROM n`,
		`COMMIT`,
		`PRAGMA synchronous = FULL`,
	}
	for _, q := range stmts {
		start := time.Now()
		if _, err := db.Exec(q); err != nil {
			b.Fatalf("seed: %v\n%s", err, q)
		}
		if d := time.Since(start); d > time.Second {
			b.Logf("seed step took %s: %.70s", d.Round(time.Millisecond), strings.Join(strings.Fields(q), " "))
		}
	}
}

// seedBenchLedger gives the measured reader a real consent chain (hashes
// are computed in Go, so the million others have none).
func seedBenchLedger(b *testing.B, store *models.Store) {
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	evs := []*models.ConsentEvent{
		{SubscriberID: benchReader, Kind: models.ConsentSignup, At: at, IP: "192.0.2.1", UserAgent: "bench", SourceURL: "https://news.example.com/a",
			Form: "article", ConsentText: "Notify me", PolicyVersion: "2025-01", Sections: "politics-uk:daily world:daily"},
		{SubscriberID: benchReader, Kind: models.ConsentConfirm, At: at.Add(time.Hour), IP: "192.0.2.1", UserAgent: "bench"},
	}
	if err := store.AppendFirstConsentEvents(context.Background(), evs[:1]); err != nil {
		b.Fatal(err)
	}
	if err := store.AppendConsentEvents(context.Background(), evs[1:]); err != nil {
		b.Fatal(err)
	}
}

// benchServer starts Herald's HTTP stack on store and returns a client
// signed in as a new editor.
func benchServer(b *testing.B, store *models.Store) (*httptest.Server, *http.Client) {
	vals := map[string]string{"HERALD_SECRET": strings.Repeat("s", 32), "HERALD_DATA_DIR": b.TempDir(), "HERALD_BASE_URL": "http://127.0.0.1"}
	cfg, err := config.Load(func(k string) string { return vals[k] }, "")
	if err != nil {
		b.Fatal(err)
	}
	tpl, err := templates.New()
	if err != nil {
		b.Fatal(err)
	}
	acc := accounts.New(store, accounts.Config{BcryptCost: bcrypt.MinCost})
	h, err := handlers.New(handlers.Deps{
		Config: cfg, Store: store, Templates: tpl, Accounts: acc,
		Subscribers: subscribers.New(store, subscribers.Config{Tokens: subscribers.NewTokens(cfg.Secret)}),
		Stories:     stories.New(store, stories.Config{}),
		Digests:     digests.New(store, digests.Config{}),
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)

	email := fmt.Sprintf("bench-%d@example.com", time.Now().UnixNano())
	const pw = "a long bench password"
	if _, err := acc.CreateUser(context.Background(), email, pw, models.RoleAdmin); err != nil {
		b.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, page := benchGet(b, client, srv.URL+"/admin/login")
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		b.Fatal("no csrf token on the login page")
	}
	resp, err := client.PostForm(srv.URL+"/admin/login", url.Values{"email": {email}, "password": {pw}, "csrf_token": {m[1]}})
	if err != nil {
		b.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("login: %d", resp.StatusCode)
	}
	return srv, client
}

func benchGet(b *testing.B, c *http.Client, u string) (int, string) {
	resp, err := c.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return resp.StatusCode, string(body)
}
