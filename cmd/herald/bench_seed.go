package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for seeding
	_ "github.com/mattn/go-sqlite3"    // database/sql driver "sqlite3", for seeding

	"herald/models"
)

func randomTag() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// benchEmail is the address of the i-th bench reader of a run.
func benchEmail(tag string, i int) string {
	return "r" + tag + "." + strconv.Itoa(i) + "@bench.example.com"
}

// seedReaders inserts n active readers, each following section sectionID
// daily, set-based: one INSERT … SELECT over a generated series per chunk
// of readers and one for their subscriptions, a chunk per transaction. It
// uses its own connection (closed on return) and returns the first
// reader's id.
func seedReaders(ctx context.Context, dsn string, postgres bool, n int, sectionID int64, tag string, progress func(string, ...any)) (int64, error) {
	var db *sql.DB
	var err error
	if postgres {
		db, err = sql.Open("pgx", dsn)
	} else {
		// synchronous=OFF: seeding is not measured, and a crash loses only
		// the bench's own temporary data.
		db, err = sql.Open("sqlite3", "file:"+dsn+"?_journal_mode=WAL&_busy_timeout=10000&_synchronous=OFF&_txlock=immediate")
	}
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	now := time.Now().UTC().Truncate(time.Microsecond)
	source := "bench-" + tag
	prefix, suffix := "r"+tag+".", "@bench.example.com"
	var insSubs, insSubscriptions string
	if postgres {
		insSubs = `INSERT INTO subscribers (email, email_norm, status, source, locale, created_at, updated_at, confirmed_at, confirm_day_count)
			SELECT $1::text || i::text || $2::text, $1::text || i::text || $2::text, 'active', $3, '', $4, $4, $4, 0
			FROM generate_series($5::bigint, $6::bigint) AS n(i)`
		insSubscriptions = `INSERT INTO subscriptions (subscriber_id, section_id, frequency, created_at)
			SELECT id, $1, 'daily', $2 FROM subscribers WHERE id > $3 AND source = $4`
	} else {
		insSubs = `WITH RECURSIVE n(i) AS (SELECT ?5 UNION ALL SELECT i + 1 FROM n WHERE i < ?6)
			INSERT INTO subscribers (email, email_norm, status, source, locale, created_at, updated_at, confirmed_at, confirm_day_count)
			SELECT ?1 || i || ?2, ?1 || i || ?2, 'active', ?3, '', ?4, ?4, ?4, 0 FROM n`
		insSubscriptions = `INSERT INTO subscriptions (subscriber_id, section_id, frequency, created_at)
			SELECT id, ?1, 'daily', ?2 FROM subscribers WHERE id > ?3 AND source = ?4`
	}
	const chunk = 50000
	var firstID int64
	last := time.Now()
	for lo := 1; lo <= n; lo += chunk {
		hi := min(lo+chunk-1, n)
		err := func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
			var before int64
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM subscribers`).Scan(&before); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, insSubs, prefix, suffix, source, now, lo, hi); err != nil {
				return fmt.Errorf("insert readers: %w", err)
			}
			if _, err := tx.ExecContext(ctx, insSubscriptions, sectionID, now, before, source); err != nil {
				return fmt.Errorf("insert subscriptions: %w", err)
			}
			if firstID == 0 {
				if err := tx.QueryRowContext(ctx, benchRebind(postgres, `SELECT id FROM subscribers WHERE email_norm = ?`),
					benchEmail(tag, 1)).Scan(&firstID); err != nil {
					return err
				}
			}
			return tx.Commit()
		}()
		if err != nil {
			return 0, err
		}
		if time.Since(last) > 2*time.Second || hi == n {
			progress("seeded %d/%d readers", hi, n)
			last = time.Now()
		}
	}
	return firstID, nil
}

// benchRebind turns ? placeholders into $n ones on Postgres.
func benchRebind(postgres bool, q string) string {
	if !postgres {
		return q
	}
	var b strings.Builder
	k := 0
	for _, r := range q {
		if r == '?' {
			k++
			b.WriteString("$" + strconv.Itoa(k))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// seedStories adds three stories of ordinary size to the section.
func seedStories(ctx context.Context, store *models.Store, sectionID int64, tag string) ([]int64, error) {
	texts := []struct{ title, summary string }{
		{"Council approves the new cycle lanes after a year of consultation",
			"<p>The city council voted by 31 to 12 on Tuesday night to build protected cycle lanes on four of the busiest roads into the centre, " +
				"ending a consultation that drew more than 9,000 responses. Work on the first route is due to start in the spring.</p>"},
		{"Hospital waiting lists fall for the third month running",
			"<p>The number of patients waiting more than 18 weeks for planned treatment fell again in October, according to figures published " +
				"on Thursday. Managers credit the new surgical hub, though <strong>unions warn</strong> that staffing remains stretched.</p>"},
		{"Local bakery wins national award for its sourdough",
			"<p>A family bakery that opened in a former bank branch three years ago has been named the best independent bakery in the country. " +
				"The owners say they will use the prize money to take on two apprentices.</p>"},
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	var ids []int64
	for i, t := range texts {
		st := &models.Story{
			URL:   fmt.Sprintf("https://news.example.com/bench/%s/story-%d", tag, i+1),
			Title: t.title, Summary: t.summary, Author: "Herald Bench",
			ImageURL: fmt.Sprintf("https://news.example.com/images/bench-%d.jpg", i+1),
			Origin:   models.OriginEditor, PublishedAt: now.Add(-time.Duration(i) * time.Hour), CreatedAt: now, UpdatedAt: now,
		}
		if _, err := store.UpsertStory(ctx, st, []int64{sectionID}); err != nil {
			return nil, err
		}
		ids = append(ids, st.ID)
	}
	return ids, nil
}
