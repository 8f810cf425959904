package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// On SQLite the signup hot path inserts rows through statements prepared
// once on the writer connection: multi-row INSERTs of fixed sizes (16 and
// 4 rows) for as much of a batch as they fit, then one row at a time.
// SQLite runs in-process, so a prepared statement costs far less than GORM
// building, and SQLite compiling, one INSERT as wide as each batch. On
// Postgres, where every statement is a network round trip, GORM's
// multi-row INSERTs stay.

// sqlTx returns the *sql.Tx under a transaction Store, or nil outside one.
func (s *Store) sqlTx() *sql.Tx {
	if s.postgres {
		return nil
	}
	tx, _ := s.w.Statement.ConnPool.(*sql.Tx)
	return tx
}

// rowInserter inserts rows with prepared statements: as many rows at a
// time as its widest statement takes, then with the narrower ones down to
// one row.
type rowInserter struct {
	stmts []sizedStmt // most rows first, the last of one row
	args  []any
}

// sizedStmt is an INSERT of rows rows at once.
type sizedStmt struct {
	rows int
	stmt *sql.Stmt
}

// insertRows are the sizes of the INSERTs prepared for the hot tables,
// widest first: one statement for 16 or 4 rows spares SQLite and
// database/sql the per-statement work (and the AUTOINCREMENT bookkeeping)
// of each row.
var insertRows = []int{16, 4, 1}

// insertRowsSQL is an INSERT of rows rows into table.
func insertRowsSQL(table string, cols []string, rows int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// hotStmts are statements prepared once on the SQLite writer connection
// (outside any transaction: with one connection, preparing from inside a
// transaction could only wait for itself). Transactions use them through
// Tx.StmtContext, which reuses the connection's prepared statement.
type hotStmts struct {
	inserts         map[string][]sizedStmt // by table, sized as insertRows
	subscriberByKey *sql.Stmt
	suppression     *sql.Stmt
	// probe answers, for one address, its subscriber's id and its
	// suppression reason (each NULL when there is none): most signups are
	// new addresses, and one two-column row tells that for the price of a
	// single statement.
	probe *sql.Stmt
}

func prepareHot(ctx context.Context, w *gorm.DB) (*hotStmts, error) {
	db, err := w.DB()
	if err != nil {
		return nil, err
	}
	h := &hotStmts{inserts: map[string][]sizedStmt{}}
	for table, cols := range map[string][]string{
		"subscribers": subscriberCols, "subscriptions": subscriptionCols,
		"consent_events": consentCols, "deliveries": deliveryCols,
	} {
		for _, n := range insertRows {
			st, err := db.PrepareContext(ctx, insertRowsSQL(table, cols, n))
			if err != nil {
				h.close()
				return nil, fmt.Errorf("prepare insert into %s: %w", table, err)
			}
			h.inserts[table] = append(h.inserts[table], sizedStmt{rows: n, stmt: st})
		}
	}
	if h.subscriberByKey, err = db.PrepareContext(ctx, "SELECT id, "+strings.Join(subscriberCols, ", ")+
		" FROM subscribers WHERE email_norm = ?"); err != nil {
		h.close()
		return nil, err
	}
	if h.suppression, err = db.PrepareContext(ctx, "SELECT reason FROM suppressions WHERE hash = ?"); err != nil {
		h.close()
		return nil, err
	}
	if h.probe, err = db.PrepareContext(ctx, "SELECT (SELECT id FROM subscribers WHERE email_norm = ?),"+
		" (SELECT reason FROM suppressions WHERE hash = ?)"); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

func (h *hotStmts) close() error {
	for _, list := range h.inserts {
		for _, st := range list {
			_ = st.stmt.Close()
		}
	}
	for _, st := range []*sql.Stmt{h.subscriberByKey, h.suppression, h.probe} {
		if st != nil {
			_ = st.Close()
		}
	}
	return nil
}

var subscriptionCols = []string{"subscriber_id", "section_id", "frequency", "created_at"}

// prepareInsert returns the table's insert statement for this transaction:
// the connection's prepared one when there is one.
func (s *Store) prepareInsert(ctx context.Context, tx *sql.Tx, table string, cols []string) (*rowInserter, error) {
	if s.hot != nil && s.hot.inserts[table] != nil {
		r := &rowInserter{}
		for _, st := range s.hot.inserts[table] {
			r.stmts = append(r.stmts, sizedStmt{rows: st.rows, stmt: tx.StmtContext(ctx, st.stmt)})
		}
		return r, nil
	}
	stmt, err := tx.PrepareContext(ctx, insertRowsSQL(table, cols, 1))
	if err != nil {
		return nil, fmt.Errorf("prepare insert into %s: %w", table, err)
	}
	return &rowInserter{stmts: []sizedStmt{{rows: 1, stmt: stmt}}}, nil
}

// lockSubscribersSQLite looks subscribers up one by one with the prepared
// statement (SQLite's single writer already serialises).
func (s *Store) lockSubscribersSQLite(ctx context.Context, tx *sql.Tx, norms []string, out map[string]*Subscriber) error {
	stmt := tx.StmtContext(ctx, s.hot.subscriberByKey)
	defer stmt.Close()
	for _, n := range norms {
		var sub Subscriber
		err := stmt.QueryRowContext(ctx, n).Scan(&sub.ID, &sub.Email, &sub.EmailNorm, &sub.Status, &sub.Source, &sub.Locale,
			&sub.CreatedAt, &sub.UpdatedAt, &sub.ConfirmedAt, &sub.UnsubscribedAt, &sub.LastConfirmSentAt,
			&sub.ConfirmDayStart, &sub.ConfirmDayCount, &sub.LastNoticeSentAt)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("lock subscribers: %w", err)
		}
		out[sub.EmailNorm] = &sub
	}
	return nil
}

// probeSQLite fills subs and suppressed for norms with one probe per
// address, reading a subscriber's whole row only when it exists.
func (s *Store) probeSQLite(ctx context.Context, tx *sql.Tx, norms []string, subs map[string]*Subscriber, suppressed map[string]string) error {
	probe := tx.StmtContext(ctx, s.hot.probe)
	defer probe.Close()
	var found []string
	for _, n := range norms {
		var id sql.NullInt64
		var reason sql.NullString
		if err := probe.QueryRowContext(ctx, n, SuppressionHash(n)).Scan(&id, &reason); err != nil {
			return fmt.Errorf("look up signups: %w", err)
		}
		if id.Valid {
			found = append(found, n)
		}
		if reason.Valid {
			suppressed[n] = reason.String
		}
	}
	if len(found) == 0 {
		return nil
	}
	return s.lockSubscribersSQLite(ctx, tx, found, subs)
}

// suppressionsSQLite looks suppression hashes up one by one.
func (s *Store) suppressionsSQLite(ctx context.Context, tx *sql.Tx, byHash map[string]string, out map[string]string) error {
	stmt := tx.StmtContext(ctx, s.hot.suppression)
	defer stmt.Close()
	for h, norm := range byHash {
		var reason string
		err := stmt.QueryRowContext(ctx, h).Scan(&reason)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("suppressions: %w", err)
		}
		out[norm] = reason
	}
	return nil
}

// insertAll inserts n rows: row appends row i's values to args, and id
// receives each row's id. A multi-row INSERT gives the id of its last row;
// SQLite numbers the rows of one statement consecutively (one writer, no
// triggers), so the others are the ids before it.
func (r *rowInserter) insertAll(ctx context.Context, n int, row func(i int, args []any) []any, id func(i int, id int64)) error {
	i := 0
	for _, st := range r.stmts {
		for ; n-i >= st.rows; i += st.rows {
			r.args = r.args[:0]
			for j := range st.rows {
				r.args = row(i+j, r.args)
			}
			res, err := st.stmt.ExecContext(ctx, r.args...)
			if err != nil {
				return err
			}
			last, err := res.LastInsertId()
			if err != nil {
				return err
			}
			for j := range st.rows {
				id(i+j, last-int64(st.rows-1-j))
			}
		}
	}
	return nil
}

func (r *rowInserter) close() {
	for _, st := range r.stmts {
		_ = st.stmt.Close()
	}
}

var subscriberCols = []string{"email", "email_norm", "status", "source", "locale", "created_at", "updated_at",
	"confirmed_at", "unsubscribed_at", "last_confirm_sent_at", "confirm_day_start", "confirm_day_count", "last_notice_sent_at"}

func (s *Store) insertSubscribersSQLite(ctx context.Context, tx *sql.Tx, subs []*Subscriber) error {
	ins, err := s.prepareInsert(ctx, tx, "subscribers", subscriberCols)
	if err != nil {
		return err
	}
	defer ins.close()
	for _, sub := range subs {
		if sub.CreatedAt.IsZero() {
			sub.CreatedAt = s.w.NowFunc()
		}
		if sub.UpdatedAt.IsZero() {
			sub.UpdatedAt = sub.CreatedAt
		}
	}
	err = ins.insertAll(ctx, len(subs), func(i int, a []any) []any {
		sub := subs[i]
		return append(a, sub.Email, sub.EmailNorm, sub.Status, sub.Source, sub.Locale, sub.CreatedAt, sub.UpdatedAt,
			sub.ConfirmedAt, sub.UnsubscribedAt, sub.LastConfirmSentAt, sub.ConfirmDayStart, sub.ConfirmDayCount, sub.LastNoticeSentAt)
	}, func(i int, id int64) { subs[i].ID = id })
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return fmt.Errorf("create subscribers: %w", gorm.ErrDuplicatedKey)
		}
		return fmt.Errorf("create subscribers: %w", err)
	}
	return nil
}

func (s *Store) insertSubscriptionsSQLite(ctx context.Context, tx *sql.Tx, rows []*Subscription) error {
	ins, err := s.prepareInsert(ctx, tx, "subscriptions", subscriptionCols)
	if err != nil {
		return err
	}
	defer ins.close()
	for _, r := range rows {
		if r.CreatedAt.IsZero() {
			r.CreatedAt = s.w.NowFunc()
		}
	}
	err = ins.insertAll(ctx, len(rows), func(i int, a []any) []any {
		r := rows[i]
		return append(a, r.SubscriberID, r.SectionID, r.Frequency, r.CreatedAt)
	}, func(i int, id int64) { rows[i].ID = id })
	if err != nil {
		return fmt.Errorf("insert subscriptions: %w", err)
	}
	return nil
}

var consentCols = []string{"subscriber_id", "kind", "at", "ip", "user_agent", "source_url", "form", "consent_text",
	"policy_version", "sections", "message_id", "personal_digest", "prev_hash", "hash"}

func (s *Store) insertConsentSQLite(ctx context.Context, tx *sql.Tx, events []*ConsentEvent) error {
	ins, err := s.prepareInsert(ctx, tx, "consent_events", consentCols)
	if err != nil {
		return err
	}
	defer ins.close()
	err = ins.insertAll(ctx, len(events), func(i int, a []any) []any {
		e := events[i]
		return append(a, e.SubscriberID, e.Kind, e.At, e.IP, e.UserAgent, e.SourceURL, e.Form, e.ConsentText,
			e.PolicyVersion, e.Sections, e.MessageID, e.PersonalDigest, e.PrevHash, e.Hash)
	}, func(i int, id int64) { events[i].ID = id })
	if err != nil {
		return fmt.Errorf("append consent events: %w", err)
	}
	return nil
}

var deliveryCols = []string{"kind", "subscriber_id", "digest_id", "to_address", "status", "next_attempt_at", "attempts",
	"lease_until", "last_error", "message_id", "data", "created_at", "sent_at"}

func (s *Store) insertDeliveriesSQLite(ctx context.Context, tx *sql.Tx, ds []*Delivery) error {
	ins, err := s.prepareInsert(ctx, tx, "deliveries", deliveryCols)
	if err != nil {
		return err
	}
	defer ins.close()
	for _, d := range ds {
		if d.CreatedAt.IsZero() {
			d.CreatedAt = s.w.NowFunc()
		}
	}
	err = ins.insertAll(ctx, len(ds), func(i int, a []any) []any {
		d := ds[i]
		return append(a, d.Kind, d.SubscriberID, d.DigestID, d.ToAddress, d.Status, d.NextAttemptAt, d.Attempts,
			d.LeaseUntil, d.LastError, d.MessageID, d.Data, d.CreatedAt, d.SentAt)
	}, func(i int, id int64) { ds[i].ID = id })
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return fmt.Errorf("create deliveries: %w", gorm.ErrDuplicatedKey)
		}
		return fmt.Errorf("create deliveries: %w", err)
	}
	return nil
}
