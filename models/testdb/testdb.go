// Package testdb opens real, migrated Stores for tests: a temporary SQLite
// file always, and a fresh Postgres database when HERALD_TEST_POSTGRES holds
// a DSN (CI sets it).
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // Postgres driver for creating test databases
	_ "github.com/mattn/go-sqlite3"    // SQLite driver for raw statements

	"herald/models"
)

// Kind names a database backend.
type Kind string

// Backends.
const (
	SQLite   Kind = "sqlite"
	Postgres Kind = "postgres"
)

// Kinds returns the backends to test on: SQLite, and Postgres when configured.
func Kinds() []Kind {
	if os.Getenv("HERALD_TEST_POSTGRES") != "" {
		return []Kind{SQLite, Postgres}
	}
	return []Kind{SQLite}
}

// Each runs fn as a subtest on every backend in Kinds.
func Each(t *testing.T, fn func(t *testing.T, dsn string, store *models.Store)) {
	t.Helper()
	for _, k := range Kinds() {
		t.Run(string(k), func(t *testing.T) {
			dsn := DSN(t, k)
			fn(t, dsn, Open(t, dsn))
		})
	}
}

// DSN returns a fresh, empty database of kind k, removed when t ends.
func DSN(t testing.TB, k Kind) string {
	t.Helper()
	if k == SQLite {
		return filepath.Join(t.TempDir(), "herald.db")
	}
	base := os.Getenv("HERALD_TEST_POSTGRES")
	if base == "" {
		t.Skip("HERALD_TEST_POSTGRES is not set")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	buf := make([]byte, 6)
	_, _ = rand.Read(buf)
	name := "herald_test_" + hex.EncodeToString(buf)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		_ = admin.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		_ = admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("HERALD_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Open opens and migrates the Store at dsn, closed when t ends.
func Open(t testing.TB, dsn string) *models.Store {
	t.Helper()
	ctx := context.Background()
	s, err := models.Open(ctx, dsn, models.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// New returns a fresh migrated SQLite Store.
func New(t testing.TB) *models.Store {
	t.Helper()
	return Open(t, DSN(t, SQLite))
}

// Exec runs a statement on the database at dsn over a connection of its
// own, behind the Store's back (tests use it to tamper with rows).
func Exec(t testing.TB, dsn, query string, args ...any) {
	t.Helper()
	driver, src := "sqlite3", dsn
	if models.IsPostgres(dsn) {
		driver = "pgx"
		query = numberedPlaceholders(query)
	}
	db, err := sql.Open(driver, src)
	if err != nil {
		t.Fatalf("open %s: %v", driver, err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("exec %q: %v", query, err)
	}
}

func numberedPlaceholders(q string) string {
	out := make([]byte, 0, len(q)+8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			out = append(out, '$')
			out = append(out, []byte(itoa(n))...)
			continue
		}
		out = append(out, q[i])
	}
	return string(out)
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
