package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"herald/accounts"
	"herald/digests"
	"herald/mailer/smtptest"
	"herald/models"
	"herald/models/testdb"
)

// TestTwoProcessesShareOneSend runs two herald serve processes on one
// Postgres database and one relay, and starts a digest to 2000 readers
// once: each reader gets exactly one message and both processes sent
// some (they claim with FOR UPDATE SKIP LOCKED). The processes are told
// apart by the envelope sender, a different HERALD_FROM for each.
func TestTwoProcessesShareOneSend(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs herald processes")
	}
	const readers = 2000
	dsn := testdb.DSN(t, testdb.Postgres) // skips without HERALD_TEST_POSTGRES
	store := testdb.Open(t, dsn)
	w := seedSend(t, store, readers, func(i int) string { return fmt.Sprintf("reader%04d@example.org", i) })
	key := testAPIKey(t, store)
	sm := smtptest.New(t)
	// Slow enough that the send outlasts the second process's 1 s poll.
	sm.SetDelay(5 * time.Millisecond)

	a := startChild(t, "a", childEnv(t, dsn, sm, "The Daily Herald <news-a@herald.example.com>"))
	b := startChild(t, "b", childEnv(t, dsn, sm, "The Daily Herald <news-b@herald.example.com>"))
	a.post(key, fmt.Sprintf("/api/v1/digests/%d/send", w.digestID))
	final := b.waitSent(t, key, w.digestID, 45*time.Second)

	perReader := map[string]int{}
	bySender := map[string]int{}
	for _, m := range sm.Messages() {
		bySender[m.From]++
		for _, to := range m.To {
			perReader[to]++
		}
	}
	t.Logf("messages by process: %v; digest %+v", bySender, final)
	for _, e := range w.emails {
		if n := perReader[e]; n != 1 {
			t.Fatalf("%s got %d messages, want exactly 1", e, n)
		}
	}
	if len(sm.Messages()) != readers {
		t.Fatalf("the relay got %d messages, want %d", len(sm.Messages()), readers)
	}
	if bySender["news-a@herald.example.com"] == 0 || bySender["news-b@herald.example.com"] == 0 {
		t.Fatalf("one process sent everything: %v", bySender)
	}
	if final.Sent != readers || final.Failed != 0 || final.Skipped != 0 {
		t.Fatalf("digest %+v, want %d sent", final, readers)
	}
}

// sendWorld is a seeded database: one section, readers who follow it
// daily, two stories in it and a draft manual digest of them.
type sendWorld struct {
	digestID int64
	emails   []string
	ids      map[string]int64 // subscriber id by address
}

// seedSend seeds n active readers with the addresses email(0..n-1), set-
// based through the Store. The stories are ten days old, so that the
// scheduler of a herald process makes no daily digest or alert of them.
func seedSend(t *testing.T, store *models.Store, n int, email func(int) string) *sendWorld {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	sec := models.Section{Slug: "news", Name: "News", CreatedAt: now}
	if err := store.CreateSection(ctx, &sec); err != nil {
		t.Fatal(err)
	}
	w := &sendWorld{ids: make(map[string]int64, n)}
	subs := make([]*models.Subscriber, n)
	for i := range subs {
		addr := email(i)
		w.emails = append(w.emails, addr)
		subs[i] = &models.Subscriber{Email: addr, EmailNorm: strings.ToLower(addr), Status: models.StatusActive,
			Source: "seed", CreatedAt: now, UpdatedAt: now, ConfirmedAt: &now}
	}
	if err := store.CreateSubscribers(ctx, subs); err != nil {
		t.Fatal(err)
	}
	rows := make(map[int64][]models.Subscription, n)
	for _, s := range subs {
		w.ids[s.Email] = s.ID
		rows[s.ID] = []models.Subscription{{SectionID: sec.ID, Frequency: models.FrequencyDaily, CreatedAt: now}}
	}
	if err := store.CreateSubscriptions(ctx, rows); err != nil {
		t.Fatal(err)
	}
	old := now.Add(-10 * 24 * time.Hour)
	var storyIDs []int64
	for i, title := range []string{"Parliament sits late", "Rail strike called off"} {
		st := &models.Story{URL: fmt.Sprintf("https://news.example.com/%d", i), Title: title,
			Summary: "<p>What happened, in brief.</p>", Origin: models.OriginAPI, PublishedAt: old, CreatedAt: old, UpdatedAt: old}
		if _, err := store.UpsertStory(ctx, st, []int64{sec.ID}); err != nil {
			t.Fatal(err)
		}
		storyIDs = append(storyIDs, st.ID)
	}
	d, err := digests.New(store, digests.Config{}).Create(ctx, digests.Input{
		Kind: models.DigestManual, Subject: "This week in brief", StoryIDs: storyIDs})
	if err != nil {
		t.Fatal(err)
	}
	w.digestID = d.ID
	return w
}

// testAPIKey creates an API key with every scope.
func testAPIKey(t *testing.T, store *models.Store) string {
	t.Helper()
	key, _, err := accounts.New(store, accounts.Config{}).CreateAPIKey(context.Background(), "tests", "*")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// childEnv is the configuration of a herald serve child: the database, the
// relay with four connections, and a 5 s delivery lease (the least
// HERALD_DELIVERY_LEASE allows) so that rows a killed process held are
// sent again within seconds rather than the default two minutes.
func childEnv(t *testing.T, dsn string, sm *smtptest.Server, from string) map[string]string {
	return map[string]string{
		"HERALD_DB": dsn, "HERALD_ADDR": "127.0.0.1:0", "HERALD_BASE_URL": "http://herald.test",
		"HERALD_SECRET": strings.Repeat("s", 40), "HERALD_SMTP_URL": "smtp://" + sm.Addr() + "?tls=none",
		"HERALD_SMTP_CONNECTIONS": "4", "HERALD_DATA_DIR": t.TempDir(), "HERALD_LOG_LEVEL": "info",
		"HERALD_FROM": from, "HERALD_DELIVERY_LEASE": "5s",
	}
}

// The herald binary, built once per test run.
var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// heraldBinary builds ./cmd/herald into a temporary directory once per
// test process.
func heraldBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		out, err := exec.Command(goTool, "env", "GOMOD").Output()
		gomod := strings.TrimSpace(string(out))
		if err != nil || gomod == "" || gomod == os.DevNull {
			buildErr = fmt.Errorf("go env GOMOD: %q %v", gomod, err)
			return
		}
		// Without a TestMain nothing removes the binary when the tests end:
		// remove those of earlier test processes that have exited.
		old, _ := filepath.Glob(filepath.Join(os.TempDir(), "herald-test-bin-*-*"))
		for _, dir := range old {
			var pid int
			if _, err := fmt.Sscanf(filepath.Base(dir), "herald-test-bin-%d-", &pid); err == nil && pid > 0 &&
				syscall.Kill(pid, 0) == syscall.ESRCH {
				_ = os.RemoveAll(dir)
			}
		}
		dir, err := os.MkdirTemp("", fmt.Sprintf("herald-test-bin-%d-", os.Getpid()))
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, "herald")
		cmd := exec.Command(goTool, "build", "-o", builtPath, "./cmd/herald")
		cmd.Dir = filepath.Dir(gomod)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtPath
}

// heraldProc is a herald serve process.
type heraldProc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	url  string
	out  *lineLog
	done chan struct{} // closed when the process has exited
}

// startChild runs herald serve with env (and no other HERALD_ variable)
// in an empty directory, and waits until it answers /healthz. It is
// stopped with SIGTERM when the test ends; its log is shown if the test
// failed.
func startChild(t *testing.T, name string, env map[string]string) *heraldProc {
	t.Helper()
	c := &heraldProc{t: t, name: name, out: &lineLog{listen: make(chan string, 1)}, done: make(chan struct{})}
	c.cmd = exec.Command(heraldBinary(t), "serve")
	c.cmd.Dir = t.TempDir() // no .env
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			c.cmd.Env = append(c.cmd.Env, kv)
		}
	}
	for k, v := range env {
		c.cmd.Env = append(c.cmd.Env, k+"="+v)
	}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("log of herald %s:\n%s", c.name, c.logs())
		}
	})
	select {
	case addr := <-c.out.listen:
		c.url = "http://" + addr
	case <-c.done:
		t.Fatalf("herald %s exited before listening:\n%s", name, c.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("herald %s did not listen within 30 s:\n%s", name, c.logs())
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(c.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald %s is not healthy after 10 s (%v):\n%s", name, err, c.logs())
		}
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (c *heraldProc) kill() {
	c.t.Helper()
	_ = c.cmd.Process.Kill()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("herald %s did not die within 10 s of SIGKILL", c.name)
	}
}

// stop ends the process with SIGTERM, and SIGKILL after 20 s.
func (c *heraldProc) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.t.Errorf("herald %s did not stop within 20 s of SIGTERM", c.name)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *heraldProc) logs() string { return c.out.String() }

// apiDigest is the part of GET /api/v1/digests/:id the tests read.
type apiDigest struct {
	Status     string `json:"status"`
	Recipients int    `json:"recipients"`
	Sent       int64  `json:"sent"`
	Failed     int64  `json:"failed"`
	Skipped    int64  `json:"skipped"`
	Pending    int64  `json:"pending"`
}

// call sends an API request with key and decodes a 2xx answer into out.
func (c *heraldProc) call(method, key, path string, out any) error {
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(nil))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

func (c *heraldProc) post(key, path string) {
	c.t.Helper()
	var d apiDigest
	if err := c.call(http.MethodPost, key, path, &d); err != nil {
		c.t.Fatal(err)
	}
}

// waitSent polls the digest through the API until it is sent, failing the
// test if it ever reads sent with a delivery still pending.
func (c *heraldProc) waitSent(t *testing.T, key string, id int64, timeout time.Duration) apiDigest {
	t.Helper()
	var d apiDigest
	var samples int
	for deadline := time.Now().Add(timeout); ; time.Sleep(25 * time.Millisecond) {
		err := c.call(http.MethodGet, key, fmt.Sprintf("/api/v1/digests/%d", id), &d)
		if err != nil {
			t.Fatal(err)
		}
		samples++
		if d.Status == models.DigestSent {
			if d.Pending != 0 {
				t.Fatalf("the digest reads sent with %d deliveries pending: %+v", d.Pending, d)
			}
			t.Logf("digest sent after %d samples", samples)
			return d
		}
		if d.Status != models.DigestSending {
			t.Fatalf("digest status %q while waiting for it to be sent: %+v", d.Status, d)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the digest is not sent after %s: %+v\n%s", timeout, d, c.logs())
		}
	}
}

// lineLog keeps a child's output and reports the address from its
// "Herald is running" line.
type lineLog struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	seen   bool
	listen chan string
}

var listenRE = regexp.MustCompile(`msg="Herald is running".* listen=(\S+)\s`)

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !l.seen {
		if m := listenRE.FindSubmatch(l.buf.Bytes()); m != nil {
			l.seen = true
			l.listen <- string(m[1])
		}
	}
	return len(p), nil
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	const max = 20000
	if s := l.buf.String(); len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return l.buf.String()
}
