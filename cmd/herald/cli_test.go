package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"herald/models"
	"herald/models/testdb"
)

// cli runs the herald command line in-process with its own environment.
func cli(t *testing.T, vals map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, func(k string) string { return vals[k] })
	return code, out.String(), errb.String()
}

func cliEnv(t *testing.T, dsn string) map[string]string {
	return map[string]string{"HERALD_DB": dsn, "HERALD_DATA_DIR": t.TempDir(), "HERALD_LOG_LEVEL": "error"}
}

func TestConsentVerifyCLI(t *testing.T) {
	for _, kind := range testdb.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			dsn := testdb.DSN(t, kind)
			env := cliEnv(t, dsn)
			h := startHerald(t, dsn, nil)
			for _, e := range []string{"a@example.com", "b@example.com"} {
				post(t, h.url+"/api/v1/subscribe", "application/json", `{"email":"`+e+`","sections":["politics-uk"],"consent":true}`)
			}
			h.waitMail("b@example.com", 1)
			code, out, errs := cli(t, env, "", "consent", "verify")
			if code != 0 || !strings.Contains(out, "OK: 2 consent events") {
				t.Fatalf("verify intact: %d %q %q", code, out, errs)
			}
			// Edit a row behind Herald's back: the chain breaks there.
			testdb.Exec(t, dsn, "UPDATE consent_events SET sections = ? WHERE id = (SELECT MAX(id) FROM consent_events)", "world:daily")
			code, out, _ = cli(t, env, "", "consent", "verify")
			if code != 1 || !strings.Contains(out, "BROKEN") || !strings.Contains(out, "hash does not match") {
				t.Fatalf("verify after tampering: %d %q", code, out)
			}
		})
	}
}

func TestImportExportCLI(t *testing.T) {
	for _, kind := range testdb.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			dsn := testdb.DSN(t, kind)
			env := cliEnv(t, dsn)
			if code, _, errs := cli(t, env, "", "migrate"); code != 0 {
				t.Fatalf("migrate: %s", errs)
			}
			st := testdb.Open(t, dsn)
			for _, sec := range []models.Section{{Slug: "politics-uk", Name: "Politics UK"}, {Slug: "world", Name: "World"}} {
				sec := sec
				if err := st.CreateSection(context.Background(), &sec); err != nil {
					t.Fatal(err)
				}
			}
			file := filepath.Join(t.TempDir(), "in.csv")
			in := strings.Join([]string{
				"email,status,subscriptions,created_at,confirmed_at,source",
				"one@example.com,active,politics-uk:daily world:weekly,2025-01-02T03:04:05Z,2025-01-02T04:00:00Z,old-list",
				"two@example.com,,politics-uk:instant,,,",
				"not-an-address,,,,,",
				"three@example.com,active,politics-uk:daily,,,no-proof",
				"four@example.com,pending,sport:daily,,,",
				"ONE@example.com,pending,,,,dup",
				"five@example.com,unsubscribed,world:daily,,,",
			}, "\n") + "\n"
			if err := os.WriteFile(file, []byte(in), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errs := cli(t, env, "", "subscribers", "import", "--send-confirmations", file)
			if code != 1 || !strings.Contains(out, "imported 3, skipped 0, failed 4, confirmations queued 1") {
				t.Fatalf("import: %d %q %q", code, out, errs)
			}
			for _, want := range []string{"line 4: email", "line 5: status active needs confirmed_at", "line 6: subscriptions: unknown section \"sport\"", "line 7: duplicate of line 2"} {
				if !strings.Contains(errs, want) {
					t.Fatalf("report lacks %q:\n%s", want, errs)
				}
			}
			one, err := st.SubscriberByEmail(context.Background(), "one@example.com")
			if err != nil || one.Status != models.StatusActive || one.ConfirmedAt == nil || one.Source != "old-list" {
				t.Fatalf("imported active row: %+v %v", one, err)
			}
			evs, _ := st.ConsentEvents(context.Background(), one.ID)
			if len(evs) != 1 || evs[0].Kind != models.ConsentImport || evs[0].SourceURL != "old-list" {
				t.Fatalf("import consent event: %+v", evs)
			}
			// Importing again skips what is there.
			code, out, _ = cli(t, env, "", "subscribers", "import", file)
			if !strings.Contains(out, "imported 0, skipped 3") {
				t.Fatalf("re-import: %d %q", code, out)
			}

			code, out, errs = cli(t, env, "", "subscribers", "export")
			if code != 0 {
				t.Fatalf("export: %d %s", code, errs)
			}
			rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(rows[0], ",") != "email,status,subscriptions,created_at,confirmed_at,source" || len(rows) != 4 {
				t.Fatalf("export rows: %v", rows)
			}
			if got := fmt.Sprint(rows[1]); got != "[one@example.com active politics-uk:daily world:weekly 2025-01-02T03:04:05Z 2025-01-02T04:00:00Z old-list]" {
				t.Fatalf("first exported row: %s", got)
			}
		})
	}
}

func TestCLIHelpAndBadConfig(t *testing.T) {
	for _, verb := range [][]string{{"serve"}, {"migrate"}, {"subscribers", "export"}, {"subscribers", "import"}, {"apikey", "create"}, {"admin", "create"}, {"consent", "verify"}} {
		code, _, errs := cli(t, nil, "", append(verb, "--help")...)
		if code != 0 || !strings.Contains(errs, "Usage: herald "+strings.Join(verb, " ")) {
			t.Errorf("%v --help: %d %q", verb, code, errs)
		}
	}
	code, _, errs := cli(t, map[string]string{"HERALD_SMTP_CONNECTIONS": "lots", "HERALD_DATA_DIR": t.TempDir()}, "", "serve")
	if code != 2 || !strings.Contains(errs, "HERALD_SMTP_CONNECTIONS: \"lots\" is not a whole number") {
		t.Fatalf("bad config: %d %q", code, errs)
	}
	if code, _, _ := cli(t, nil, "", "frobnicate"); code != 2 {
		t.Fatalf("unknown verb: %d", code)
	}
}

func TestAPIKeyAndAdminCreateCLI(t *testing.T) {
	dsn := testdb.DSN(t, testdb.SQLite)
	env := cliEnv(t, dsn)
	code, out, errs := cli(t, env, "", "apikey", "create", "--name", "CMS")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || !strings.HasPrefix(lines[len(lines)-1], "hld_") {
		t.Fatalf("apikey create: %d %q %q", code, out, errs)
	}
	if code, _, errs := cli(t, env, "short\n", "admin", "create", "--email", "a@example.com"); code == 0 || !strings.Contains(errs, "at least 10") {
		t.Fatalf("admin create with a short password: %d %q", code, errs)
	}
	if code, out, errs := cli(t, env, "a long password here\n", "admin", "create", "--email", "a@example.com"); code != 0 || !strings.Contains(out, "Created admin a@example.com") {
		t.Fatalf("admin create: %d %q %q", code, out, errs)
	}
	if code, _, errs := cli(t, env, "a long password here\n", "admin", "create", "--email", "A@example.com"); code == 0 || !strings.Contains(errs, "already exists") {
		t.Fatalf("duplicate admin: %d %q", code, errs)
	}
}
