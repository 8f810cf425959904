package digests_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/config"
	"herald/delivery"
	"herald/digests"
	"herald/mailer"
	"herald/mailer/smtptest"
	"herald/models"
	"herald/templates"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// world is a Store with sections, readers and stories, and the digest
// service, renderer and a delivery worker sending to an in-process SMTP
// server.
type world struct {
	t       *testing.T
	store   *models.Store
	svc     *digests.Service
	clock   *clock
	smtp    *smtptest.Server
	secs    map[string]int64
	readers map[string]int64
	worker  *delivery.Worker
}

func newWorld(t *testing.T, store *models.Store) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, store: store, clock: &clock{t: time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)},
		secs: map[string]int64{}, readers: map[string]int64{}}
	for _, s := range []struct{ slug, name string }{{"politics-uk", "Politics UK"}, {"world", "World"}, {"business", "Business"}} {
		sec := models.Section{Slug: s.slug, Name: s.name}
		if err := store.CreateSection(ctx, &sec); err != nil {
			t.Fatal(err)
		}
		w.secs[s.slug] = sec.ID
	}
	w.svc = digests.New(store, digests.Config{Now: w.clock.Now, AlertsPerDay: 2})
	return w
}

// reader adds an active (or other status) subscriber with subscriptions
// given as "slug:frequency".
func (w *world) reader(email, status string, subs ...string) {
	w.t.Helper()
	ctx := context.Background()
	sub := &models.Subscriber{Email: email, EmailNorm: strings.ToLower(email), Status: status, CreatedAt: w.clock.Now(), UpdatedAt: w.clock.Now()}
	if err := w.store.CreateSubscribers(ctx, []*models.Subscriber{sub}); err != nil {
		w.t.Fatal(err)
	}
	var list []models.Subscription
	for _, s := range subs {
		slug, freq, _ := strings.Cut(s, ":")
		list = append(list, models.Subscription{SectionID: w.secs[slug], Frequency: freq})
	}
	if err := w.store.CreateSubscriptions(ctx, map[int64][]models.Subscription{sub.ID: list}); err != nil {
		w.t.Fatal(err)
	}
	w.readers[email] = sub.ID
}

func (w *world) story(url, title string, at time.Time, slugs ...string) int64 {
	w.t.Helper()
	var ids []int64
	for _, s := range slugs {
		ids = append(ids, w.secs[s])
	}
	st := &models.Story{URL: url, Title: title, Summary: "<p>What happened, in brief.</p>", Origin: models.OriginAPI,
		PublishedAt: at, CreatedAt: at, UpdatedAt: at}
	if _, err := w.store.UpsertStory(context.Background(), st, ids); err != nil {
		w.t.Fatal(err)
	}
	return st.ID
}

// startWorker runs the delivery worker with the digest renderer.
func (w *world) startWorker() {
	w.t.Helper()
	tpl, err := templates.New()
	if err != nil {
		w.t.Fatal(err)
	}
	site := templates.Site{Name: "The Daily Herald", BaseURL: "https://herald.example.com", PostalAddress: "1 Example Street"}
	r, err := digests.NewRenderer(digests.RenderConfig{
		Store: w.store, Templates: tpl, Site: site, From: "The Daily Herald <news@herald.example.com>",
		ListID: "Daily Herald <news.herald.example.com>",
		Links: func(id int64) (string, string) {
			return fmt.Sprintf("%s/unsubscribe/u%d", site.BaseURL, id), fmt.Sprintf("%s/preferences/p%d", site.BaseURL, id)
		},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.smtp = smtptest.New(w.t)
	pool, err := mailer.NewSMTP(mailer.SMTPConfig{Servers: []config.SMTPServer{w.smtp.Config()}})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = pool.Close() })
	w.worker = delivery.New(delivery.Config{Store: w.store, Sender: pool, Concurrency: 4, PollInterval: 50 * time.Millisecond, Now: w.clock.Now,
		Renderers: map[string]delivery.Renderer{models.KindDigest: r, models.KindTest: r}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.worker.Run(ctx); close(done) }()
	w.t.Cleanup(func() { cancel(); <-done })
}

// waitDone waits until the digest has nothing pending.
func (w *world) waitDone(id int64) models.DigestCounts {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := w.store.CountDigest(context.Background(), id)
		if err != nil {
			w.t.Fatal(err)
		}
		if c.Pending == 0 || time.Now().After(deadline) {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type received struct {
	header mail.Header
	html   string
	text   string
}

func (w *world) mailTo(addr string) []received {
	w.t.Helper()
	var out []received
	for _, m := range w.smtp.MessagesTo(addr) {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			w.t.Fatal(err)
		}
		r := received{header: msg.Header}
		_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
				r.html = string(b)
			} else {
				r.text = string(b)
			}
		}
		out = append(out, r)
	}
	return out
}
