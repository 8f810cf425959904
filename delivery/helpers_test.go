package delivery

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/config"
	"herald/mailer"
	"herald/mailer/smtptest"
	"herald/models"
)

// clock is an injected clock that tests move forward by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 7, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testRenderer renders every delivery the same way; a delivery whose Data
// is "skip" is skipped and one whose Data is "broken" fails to render.
type testRenderer struct{}

func (testRenderer) Render(_ context.Context, d *models.Delivery, _ *models.Subscriber) (*mailer.Message, error) {
	switch d.Data {
	case "skip":
		return nil, ErrSkip
	case "broken":
		return nil, fmt.Errorf("template exploded")
	}
	return &mailer.Message{
		MessageID: d.MessageID, From: "The Daily Example <news@example.com>",
		Subject: "Delivery " + d.Kind, Text: "Hello", HTML: "<p>Hello</p>",
		ListUnsubscribe: "https://news.example.com/unsubscribe/t",
	}, nil
}

func renderers() map[string]Renderer {
	r := testRenderer{}
	return map[string]Renderer{models.KindDigest: r, models.KindConfirmation: r, models.KindTest: r, models.KindNotice: r}
}

// env is one test's world: a Store, a test SMTP server, the real SMTP
// transport and a clock.
type env struct {
	t     *testing.T
	store *models.Store
	dsn   string
	srv   *smtptest.Server
	smtp  *mailer.SMTP
	clock *clock
}

func newEnv(t *testing.T, dsn string, store *models.Store, connections int) *env {
	t.Helper()
	srv := smtptest.New(t)
	tr, err := mailer.NewSMTP(mailer.SMTPConfig{
		Servers: []config.SMTPServer{srv.Config()}, Connections: connections,
		Timeout: 10 * time.Second, MaxPerConnection: 100000,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return &env{t: t, store: store, dsn: dsn, srv: srv, smtp: tr, clock: newClock()}
}

func (e *env) config() Config {
	return Config{
		Store: e.store, Sender: e.smtp, Renderers: renderers(), Concurrency: 4,
		PollInterval: 20 * time.Millisecond, Now: e.clock.Now,
	}
}

// start runs a worker and returns a stop function that cancels it and
// waits for Run to return.
func (e *env) start(cfg Config) (*Worker, func()) {
	e.t.Helper()
	w := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("Run: %v", err)
				}
			case <-time.After(40 * time.Second):
				e.t.Fatal("Run did not return after cancel")
			}
		})
	}
	e.t.Cleanup(stop)
	return w, stop
}

// subscribers creates n active subscribers r<i>@example.org.
func (e *env) subscribers(prefix string, n int) []*models.Subscriber {
	e.t.Helper()
	subs := make([]*models.Subscriber, n)
	for i := range subs {
		addr := fmt.Sprintf("%s%d@example.org", prefix, i)
		subs[i] = &models.Subscriber{Email: addr, EmailNorm: strings.ToLower(addr), Status: models.StatusActive,
			CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	}
	if err := e.store.CreateSubscribers(context.Background(), subs); err != nil {
		e.t.Fatal(err)
	}
	return subs
}

// enqueue creates one due delivery of kind per subscriber.
func (e *env) enqueue(kind string, subs ...*models.Subscriber) []*models.Delivery {
	e.t.Helper()
	ds := e.deliveries(kind, subs...)
	e.create(ds...)
	return ds
}

// deliveries returns, unsaved, one due delivery of kind per subscriber.
func (e *env) deliveries(kind string, subs ...*models.Subscriber) []*models.Delivery {
	ds := make([]*models.Delivery, len(subs))
	for i, sub := range subs {
		id := sub.ID
		ds[i] = &models.Delivery{Kind: kind, SubscriberID: &id, Status: models.DeliveryPending,
			NextAttemptAt: e.clock.Now(), MessageID: fmt.Sprintf("d%d.%d@news.example.com", sub.ID, i),
			Data: "{}", CreatedAt: e.clock.Now()}
	}
	return ds
}

func (e *env) create(ds ...*models.Delivery) {
	e.t.Helper()
	if err := e.store.CreateDeliveries(context.Background(), ds); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) delivery(id int64) *models.Delivery {
	e.t.Helper()
	d, err := e.store.DeliveryByID(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) counts() map[string]int64 {
	e.t.Helper()
	c, err := e.store.DeliveryCounts(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) waitStatus(id int64, status string) *models.Delivery {
	e.t.Helper()
	var d *models.Delivery
	waitFor(e.t, fmt.Sprintf("delivery %d to be %s", id, status), func() bool {
		d = e.delivery(id)
		return d.Status == status
	})
	return d
}
