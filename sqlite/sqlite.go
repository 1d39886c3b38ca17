// Package sqlite implements cleanroom.Store on a SQLite database file.
//
// The server and the CLI (`cleanroom users add`) may use the same file at
// the same time: every connection runs in WAL mode with a busy timeout, and
// every write transaction takes the write lock when it begins.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var _ cleanroom.Store = (*DB)(nil)

// DB is the metadata store in one SQLite file.
type DB struct {
	db *sql.DB

	// Path is the database file. It is created, mode 0600, if missing.
	Path string
	// BusyTimeout is how long a statement waits for a lock another
	// connection or process holds before it fails.
	BusyTimeout time.Duration
	// Now returns the current time; tests replace it.
	Now func() time.Time
}

// NewDB returns a DB for the file at path, with defaults set. Call Open before use.
func NewDB(path string) *DB {
	return &DB{Path: path, BusyTimeout: 5 * time.Second, Now: time.Now}
}

// Open creates the database file if needed and brings its schema up to date.
func (db *DB) Open() error {
	if db.Path == "" {
		return fmt.Errorf("sqlite: database path is empty")
	}
	abs, err := filepath.Abs(db.Path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return err
	}
	// Create the file ourselves so that it, and the -wal and -shm files
	// SQLite derives from it, are readable by the owner only.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()

	// Every connection waits for locks rather than failing at once, and
	// every write transaction begins with BEGIN IMMEDIATE: a transaction
	// that reads and then writes would otherwise fail, without waiting,
	// when another process wrote in between.
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", db.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Deleted content, such as the sealed key of a removed dataset, is overwritten
	// in the database file, not left in its free space.
	q.Add("_pragma", "secure_delete(1)")
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String()

	if db.db, err = sql.Open("sqlite", dsn); err != nil {
		return err
	}
	if err := db.migrate(context.Background()); err != nil {
		db.db.Close()
		db.db = nil
		return fmt.Errorf("sqlite: %s: %w", db.Path, err)
	}
	if err := db.startAuditLogs(context.Background()); err != nil {
		db.db.Close()
		db.db = nil
		return fmt.Errorf("sqlite: %s: %w", db.Path, err)
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	if db.db == nil {
		return nil
	}
	return db.db.Close()
}

// migrate applies, in order, every migration the file has not seen yet.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TEXT NOT NULL
	)`); err != nil {
		return err
	}
	var latest int
	if err := db.db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&latest); err != nil {
		return err
	}
	if latest > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this cleanroom binary knows (%d); upgrade cleanroom", latest, len(migrations))
	}
	for i, m := range migrations {
		if err := db.migrateOne(ctx, i+1, m); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}

// migrateOne applies one migration in its own transaction, unless another
// process applied it first.
func (db *DB) migrateOne(ctx context.Context, version int, stmts string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil || n > 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, stmts); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, encodeTime(db.Now()))
		return err
	})
}

// inTx runs f in one transaction, committed if f returns nil. Write
// transactions begin IMMEDIATE (see Open), so f's reads see what it writes
// on, whatever other processes do.
func (db *DB) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// scrubLog follows a write that removed a secret (a sealed key): it
// checkpoints the write-ahead log into the database file, where
// secure_delete has overwritten what was deleted, and truncates the log,
// whose older frames still hold it. Best effort: a reader in the middle of
// a read keeps the log until a later checkpoint.
func (db *DB) scrubLog(ctx context.Context) {
	var busy, frames, done int
	db.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done)
}

// now returns the current time in UTC.
func (db *DB) now() time.Time { return db.Now().UTC() }

// orNow returns t, or the current time if t is zero, in UTC.
func (db *DB) orNow(t time.Time) time.Time {
	if t.IsZero() {
		return db.now()
	}
	return t.UTC()
}
