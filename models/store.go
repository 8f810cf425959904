package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Store is Herald's data access. Writes go through w; reads through r. On
// SQLite w is a single connection (one writer, immediate transactions) and r
// a pool of readers; on Postgres both are the same pool. Inside Tx both are
// the transaction.
type Store struct {
	w, r     *gorm.DB
	postgres bool
	closers  []func() error
	// hot are the signup path's statements, prepared once on the SQLite
	// writer connection (nil on Postgres, and until Migrate).
	hot *hotStmts
}

// Options tune Open.
type Options struct {
	// Logger receives slow-query and error logs; nil discards them.
	Logger *slog.Logger
	// MaxReaders caps the SQLite read pool (default 8).
	MaxReaders int
	// MaxConns caps the Postgres pool (default 16).
	MaxConns int
}

// IsPostgres reports whether dsn names a Postgres database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database named by dsn: a SQLite file path or a
// postgres:// URL. It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	gcfg := &gorm.Config{
		Logger:                 gormLogger(opts.Logger),
		SkipDefaultTransaction: true,
		PrepareStmt:            true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	if IsPostgres(dsn) {
		// pgx caches prepared statements per connection already; GORM's own
		// cache would prepare on the pool from inside transactions and can
		// exhaust it under load.
		pcfg := *gcfg
		pcfg.PrepareStmt = false
		db, err := gorm.Open(postgres.Open(dsn), &pcfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		max := opts.MaxConns
		if max == 0 {
			max = 16
		}
		sqlDB.SetMaxOpenConns(max)
		sqlDB.SetMaxIdleConns(max)
		if err := sqlDB.PingContext(ctx); err != nil {
			return nil, fmt.Errorf("connect to postgres: %w", err)
		}
		return &Store{w: db, r: db, postgres: true, closers: []func() error{sqlDB.Close}}, nil
	}

	if dir := filepath.Dir(dsn); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
	}
	params := url.Values{}
	params.Set("_journal_mode", "WAL")
	params.Set("_busy_timeout", "10000")
	params.Set("_foreign_keys", "1")
	// FULL: a commit is on disk before Herald answers. Group commit keeps it cheap.
	params.Set("_synchronous", "FULL")
	params.Set("_cache_size", "-32000")
	wparams := url.Values{}
	for k, v := range params {
		wparams[k] = v
	}
	wparams.Set("_txlock", "immediate")
	// No prepared-statement cache on the writer: GORM prepares a statement
	// on the pool the first time a transaction uses it, and with one writer
	// connection held by that transaction the prepare would wait forever.
	wcfg := *gcfg
	wcfg.PrepareStmt = false
	w, err := gorm.Open(sqlite.Open("file:"+dsn+"?"+wparams.Encode()), &wcfg)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	wdb, err := w.DB()
	if err != nil {
		return nil, err
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	if err := wdb.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	r, err := gorm.Open(sqlite.Open("file:"+dsn+"?"+params.Encode()), gcfg)
	if err != nil {
		_ = wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	rdb, err := r.DB()
	if err != nil {
		return nil, err
	}
	max := opts.MaxReaders
	if max == 0 {
		max = 8
	}
	rdb.SetMaxOpenConns(max)
	rdb.SetMaxIdleConns(max)
	return &Store{w: w, r: r, closers: []func() error{rdb.Close, wdb.Close}}, nil
}

// Postgres reports whether the Store runs on Postgres.
func (s *Store) Postgres() bool { return s.postgres }

// Close closes the database connections.
func (s *Store) Close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Migrate creates or updates the schema.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.w.WithContext(ctx).AutoMigrate(AllModels()...); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Indexes that later versions no longer keep.
	for _, idx := range []string{"idx_deliveries_subscriber_id"} {
		if err := s.w.WithContext(ctx).Exec("DROP INDEX IF EXISTS " + idx).Error; err != nil {
			return fmt.Errorf("migrate: drop index %s: %w", idx, err)
		}
	}
	if !s.postgres && s.hot == nil {
		hot, err := prepareHot(ctx, s.w)
		if err != nil {
			return err
		}
		s.hot = hot
		s.closers = append([]func() error{hot.close}, s.closers...)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	db, err := s.r.DB()
	if err != nil {
		return err
	}
	return db.PingContext(ctx)
}

// Tx runs fn in one transaction; fn's Store reads and writes inside it.
func (s *Store) Tx(ctx context.Context, fn func(tx *Store) error) error {
	return s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(&Store{w: tx, r: tx, postgres: s.postgres, hot: s.hot})
	})
}

func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	return err
}

// IsUniqueViolation reports whether err is a unique-constraint failure.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}
