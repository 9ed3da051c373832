package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the Store shared by several `relay serve` nodes: one
// PostgreSQL database (or schema, chosen with search_path in the DSN)
// reached through a pgx connection pool. It mirrors *SQLite statement for
// statement (see doc.go); where several nodes can race, the database
// decides (upserts with conditions, row locks, advisory locks), never a
// read-modify-write in Go. Safe for concurrent use.
type Postgres struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time
	keys *keyCache
}

var _ Store = (*Postgres)(nil)

// pgKeyCacheTTL bounds how long a write key revoked or created on another
// node takes to reach this node's cache (changes made through this
// *Postgres apply at once). Reloading is one indexed query, so it is kept
// shorter than SQLite's.
const pgKeyCacheTTL = 5 * time.Second

// pgMigrationLock is the advisory lock key that serialises migrations (and
// SeedSources) of nodes starting at the same time ("relay" in ASCII).
const pgMigrationLock int64 = 0x72656c6179

// OpenPostgres connects to dsn (a postgres:// URL or key=value string; a
// search_path parameter selects the schema) and applies pending migrations.
// The DSN holds a password and is never logged or put in errors.
func OpenPostgres(ctx context.Context, dsn string, log *slog.Logger) (*Postgres, error) {
	if dsn == "" {
		return nil, fmt.Errorf("open postgres store: empty DSN: %w", ErrInvalid)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the DSN; say only that it is bad.
		return nil, fmt.Errorf("open postgres store: the DSN does not parse: %w", ErrInvalid)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store %s: %w", pgTarget(cfg), err)
	}
	s := &Postgres{pool: pool, log: log, now: time.Now}
	s.keys = newKeyCache(pgKeyCacheTTL, s.now, s.loadKeys)
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", pgTarget(cfg), err)
	}
	return s, nil
}

// pgTarget names the server and database without credentials.
func pgTarget(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// Close closes the pool. Calls after Close fail.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// migrate applies pending migrations in one transaction holding an
// advisory lock, so nodes starting together apply each migration once and
// none starts on a half-migrated schema.
func (s *Postgres) migrate(ctx context.Context) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgMigrationLock); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at BIGINT  NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var cur int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		ms := postgresMigrations()
		if latest := ms[len(ms)-1].version; cur > latest {
			return fmt.Errorf("schema version %d, this binary knows up to %d: %w", cur, latest, ErrSchemaTooNew)
		}
		for _, m := range ms {
			if m.version <= cur {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("apply migration %d %s: %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, s.now().UnixNano()); err != nil {
				return fmt.Errorf("record migration %d: %w", m.version, err)
			}
			s.log.Info("store migration applied", slog.Int("version", m.version), slog.String("name", m.name))
		}
		return nil
	})
}

// inTx runs fn in a transaction, committing when it returns nil.
func (s *Postgres) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(context.WithoutCancel(ctx)); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
			return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// isUniqueViolation reports a unique_violation (23505).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// pgNullNanos turns a nullable BIGINT time into a time.
func pgNullNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return fromNanos(*n)
}
