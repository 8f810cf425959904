package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// On SQLite the signup hot path inserts rows one by one through statements
// prepared once per transaction: SQLite runs in-process, so a small
// prepared INSERT per row costs far less than GORM building, and SQLite
// compiling, one wide multi-row INSERT per batch. On Postgres, where every
// statement is a network round trip, the multi-row INSERTs stay.

// sqlTx returns the *sql.Tx under a transaction Store, or nil outside one.
func (s *Store) sqlTx() *sql.Tx {
	if s.postgres {
		return nil
	}
	tx, _ := s.w.Statement.ConnPool.(*sql.Tx)
	return tx
}

// rowInserter inserts rows with one prepared statement.
type rowInserter struct {
	stmt *sql.Stmt
}

func insertSQL(table string, cols []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
}

// hotStmts are statements prepared once on the SQLite writer connection
// (outside any transaction: with one connection, preparing from inside a
// transaction could only wait for itself). Transactions use them through
// Tx.StmtContext, which reuses the connection's prepared statement.
type hotStmts struct {
	byTable         map[string]*sql.Stmt
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
	h := &hotStmts{byTable: map[string]*sql.Stmt{}}
	for table, cols := range map[string][]string{
		"subscribers": subscriberCols, "subscriptions": subscriptionCols,
		"consent_events": consentCols, "deliveries": deliveryCols,
	} {
		if h.byTable[table], err = db.PrepareContext(ctx, insertSQL(table, cols)); err != nil {
			h.close()
			return nil, fmt.Errorf("prepare insert into %s: %w", table, err)
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
	for _, st := range h.byTable {
		if st != nil {
			_ = st.Close()
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
	if s.hot != nil && s.hot.byTable[table] != nil {
		return &rowInserter{stmt: tx.StmtContext(ctx, s.hot.byTable[table])}, nil
	}
	stmt, err := tx.PrepareContext(ctx, insertSQL(table, cols))
	if err != nil {
		return nil, fmt.Errorf("prepare insert into %s: %w", table, err)
	}
	return &rowInserter{stmt: stmt}, nil
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

func (r *rowInserter) insert(ctx context.Context, args ...any) (int64, error) {
	res, err := r.stmt.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

func (r *rowInserter) close() { _ = r.stmt.Close() }

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
		id, err := ins.insert(ctx, sub.Email, sub.EmailNorm, sub.Status, sub.Source, sub.Locale, sub.CreatedAt, sub.UpdatedAt,
			sub.ConfirmedAt, sub.UnsubscribedAt, sub.LastConfirmSentAt, sub.ConfirmDayStart, sub.ConfirmDayCount, sub.LastNoticeSentAt)
		if err != nil {
			if strings.Contains(err.Error(), "UNIQUE constraint failed") {
				return fmt.Errorf("create subscribers: %w", gorm.ErrDuplicatedKey)
			}
			return fmt.Errorf("create subscribers: %w", err)
		}
		sub.ID = id
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
		id, err := ins.insert(ctx, r.SubscriberID, r.SectionID, r.Frequency, r.CreatedAt)
		if err != nil {
			return fmt.Errorf("insert subscriptions: %w", err)
		}
		r.ID = id
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
	for _, e := range events {
		id, err := ins.insert(ctx, e.SubscriberID, e.Kind, e.At, e.IP, e.UserAgent, e.SourceURL, e.Form, e.ConsentText,
			e.PolicyVersion, e.Sections, e.MessageID, e.PersonalDigest, e.PrevHash, e.Hash)
		if err != nil {
			return fmt.Errorf("append consent events: %w", err)
		}
		e.ID = id
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
		id, err := ins.insert(ctx, d.Kind, d.SubscriberID, d.DigestID, d.ToAddress, d.Status, d.NextAttemptAt, d.Attempts,
			d.LeaseUntil, d.LastError, d.MessageID, d.Data, d.CreatedAt, d.SentAt)
		if err != nil {
			if strings.Contains(err.Error(), "UNIQUE constraint failed") {
				return fmt.Errorf("create deliveries: %w", gorm.ErrDuplicatedKey)
			}
			return fmt.Errorf("create deliveries: %w", err)
		}
		d.ID = id
	}
	return nil
}
