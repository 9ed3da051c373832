package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// SQLite is the embedded Store: one database file in WAL mode. Writes go
// through a single connection (SQLite has one writer; serialising in Go
// avoids SQLITE_BUSY), reads through a pool that runs beside it. Safe for
// concurrent use.
type SQLite struct {
	w    *sql.DB // the one writing connection, transactions BEGIN IMMEDIATE
	r    *sql.DB // read-only pool
	log  *slog.Logger
	now  func() time.Time
	keys *keyCache
}

var _ Store = (*SQLite)(nil)

// keyCacheTTL bounds how long a change made by another process (relay
// replay, a second node) takes to reach the write-key cache; changes made
// through this *SQLite apply at once.
const keyCacheTTL = 30 * time.Second

// escapeURIPath escapes what SQLite's URI filenames treat specially.
func escapeURIPath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// OpenSQLite opens (creating if needed, with mode 0600: it holds secrets)
// the database at path and applies pending migrations.
func OpenSQLite(ctx context.Context, path string, log *slog.Logger) (*SQLite, error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("open store: path %q: a file path is required: %w", path, ErrInvalid)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	f.Close()

	s := &SQLite{log: log, now: time.Now}
	s.keys = newKeyCache(keyCacheTTL, s.now, s.loadKeys)
	// synchronous=FULL: dead letters and keys must survive a power loss,
	// and every write here is batched, so the fsync is paid per batch.
	common := url.Values{}
	common.Add("_pragma", "busy_timeout(10000)")
	common.Add("_pragma", "foreign_keys(1)")
	wq := url.Values{"_txlock": {"immediate"}}
	wq["_pragma"] = append(append([]string{}, common["_pragma"]...), "journal_mode(WAL)", "synchronous(FULL)")
	uri := "file:" + escapeURIPath(path) + "?"
	s.w, err = sql.Open("sqlite", uri+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetConnMaxIdleTime(0)
	s.w.SetConnMaxLifetime(0)
	// The writer sets WAL (persistent in the file) before readers connect.
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	rq := url.Values{"_pragma": append(common["_pragma"], "query_only(1)")}
	s.r, err = sql.Open("sqlite", uri+rq.Encode())
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	n := max(2, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	if err := s.r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	return s, nil
}

// Close closes the database. Calls after Close fail.
func (s *SQLite) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// migration is one schema step. Applied migrations are never edited; a
// change is a new version.
type migration struct {
	version int
	name    string
	sql     string
}

// migrate applies, each in its own transaction, the migrations newer than
// the database's version.
func (s *SQLite) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var cur int
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	ms := sqliteMigrations()
	if latest := ms[len(ms)-1].version; cur > latest {
		return fmt.Errorf("schema version %d, this binary knows up to %d: %w", cur, latest, ErrSchemaTooNew)
	}
	for _, m := range ms {
		if m.version <= cur {
			continue
		}
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, s.now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %d %s: %w", m.version, m.name, err)
		}
		s.log.Info("store migration applied", slog.Int("version", m.version), slog.String("name", m.name))
	}
	return nil
}

// inTx runs fn in a write transaction, committing when it returns nil.
func (s *SQLite) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, rollback(tx))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

// Times are stored as Unix nanoseconds (UTC); 0 / NULL is the zero time.
func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
