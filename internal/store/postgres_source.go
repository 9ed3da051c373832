package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"github.com/jackc/pgx/v5"
)

// ResolveWriteKey implements KeyResolver from the in-memory cache, which
// reloads every pgKeyCacheTTL to see other nodes' changes.
func (s *Postgres) ResolveWriteKey(ctx context.Context, key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("resolve write key: empty key: %w", ErrUnknownWriteKey)
	}
	src, ok, err := s.keys.resolve(ctx, key)
	if err != nil {
		return "", fmt.Errorf("resolve write key: %w", err)
	}
	if !ok {
		return "", fmt.Errorf("resolve write key %s: %w", MaskKey(key), ErrUnknownWriteKey)
	}
	return src, nil
}

func (s *Postgres) loadKeys(ctx context.Context) (map[[32]byte]string, error) {
	return loadKeys(ctx, pgDialect{s.pool})
}

// Sources implements SourceAdmin (dialect.go).
func (s *Postgres) Sources(ctx context.Context) ([]Source, error) {
	return listSources(ctx, pgDialect{s.pool})
}

// CreateSource implements SourceAdmin.
func (s *Postgres) CreateSource(ctx context.Context, name string) (Source, error) {
	if err := checkName("source", name); err != nil {
		return Source{}, fmt.Errorf("create source: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO source (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		name, s.now().UnixNano())
	if err != nil {
		return Source{}, fmt.Errorf("create source %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return Source{}, fmt.Errorf("create source %q: %w", name, ErrExists)
	}
	return Source{Name: name}, nil
}

// CreateWriteKey implements SourceAdmin.
func (s *Postgres) CreateWriteKey(ctx context.Context, source string) (WriteKey, error) {
	key, err := NewWriteKey()
	if err != nil {
		return WriteKey{}, err
	}
	wk := WriteKey{Key: key, CreatedAt: fromNanos(s.now().UnixNano())}
	tag, err := s.pool.Exec(ctx, `INSERT INTO write_key (wkey, source, seeded, created_at)
SELECT $1, name, false, $3 FROM source WHERE name = $2`, wk.Key, source, toNanos(wk.CreatedAt))
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("source %q: %w", source, ErrNotFound)
	}
	if err != nil {
		return WriteKey{}, fmt.Errorf("create write key for source %q: %w", source, err)
	}
	s.keys.invalidate()
	return wk, nil
}

// RevokeWriteKey implements SourceAdmin.
func (s *Postgres) RevokeWriteKey(ctx context.Context, key string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE write_key SET revoked_at = COALESCE(revoked_at, $1) WHERE wkey = $2`,
		s.now().UnixNano(), key)
	s.keys.invalidate() // even on error: a revoke must never be missed
	if err != nil {
		return fmt.Errorf("revoke write key %s: %w", MaskKey(key), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke write key %s: %w", MaskKey(key), ErrNotFound)
	}
	return nil
}

// SeedSources implements SourceAdmin. It holds the migration advisory lock
// for its transaction, so nodes starting together seed one after another.
func (s *Postgres) SeedSources(ctx context.Context, sources []Source) error {
	owner, err := checkSeed(sources)
	if err != nil {
		return fmt.Errorf("seed sources: %w", err)
	}
	now := s.now().UnixNano()
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgMigrationLock); err != nil {
			return fmt.Errorf("take seed lock: %w", err)
		}
		for _, src := range sources {
			if _, err := tx.Exec(ctx, `INSERT INTO source (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
				src.Name, now); err != nil {
				return fmt.Errorf("source %q: %w", src.Name, err)
			}
		}
		if err := s.seedKeys(ctx, tx, owner, now); err != nil {
			return err
		}
		return s.revokeUnseeded(ctx, tx, owner, now)
	})
	s.keys.invalidate()
	if err != nil {
		return fmt.Errorf("seed sources: %w", err)
	}
	return nil
}

func (s *Postgres) seedKeys(ctx context.Context, tx pgx.Tx, owner map[string]string, now int64) error {
	keys := make([]string, 0, len(owner))
	for k := range owner {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		src := owner[k]
		var (
			have    string
			revoked *int64
		)
		err := tx.QueryRow(ctx, `SELECT source, revoked_at FROM write_key WHERE wkey = $1`, k).Scan(&have, &revoked)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO write_key (wkey, source, seeded, created_at) VALUES ($1, $2, true, $3)`,
				k, src, now); err != nil {
				return fmt.Errorf("source %q: write key %s: %w", src, MaskKey(k), scrubKey(err))
			}
		case err != nil:
			return fmt.Errorf("source %q: write key %s: %w", src, MaskKey(k), scrubKey(err))
		case have != src:
			return fmt.Errorf("source %q: write key %s already belongs to source %q: %w", src, MaskKey(k), have, ErrExists)
		case revoked != nil:
			s.log.Warn("configured write key stays revoked", slog.String("source", src), slog.String("key", MaskKey(k)))
		}
	}
	return nil
}

// scrubKey drops a PostgreSQL error's text when it could quote a key (a
// unique violation's detail names the conflicting value).
func scrubKey(err error) error {
	if isUniqueViolation(err) {
		return fmt.Errorf("duplicate write key: %w", ErrExists)
	}
	return err
}

func (s *Postgres) revokeUnseeded(ctx context.Context, tx pgx.Tx, owner map[string]string, now int64) error {
	rows, err := tx.Query(ctx, `SELECT wkey, source FROM write_key WHERE seeded AND revoked_at IS NULL`)
	if err != nil {
		return fmt.Errorf("list seeded keys: %w", err)
	}
	type gone struct{ key, source string }
	var drop []gone
	for rows.Next() {
		var g gone
		if err := rows.Scan(&g.key, &g.source); err != nil {
			rows.Close()
			return fmt.Errorf("list seeded keys: %w", err)
		}
		if _, ok := owner[g.key]; !ok {
			drop = append(drop, g)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list seeded keys: %w", err)
	}
	for _, g := range drop {
		if _, err := tx.Exec(ctx, `UPDATE write_key SET revoked_at = $1 WHERE wkey = $2`, now, g.key); err != nil {
			return fmt.Errorf("revoke write key %s: %w", MaskKey(g.key), err)
		}
		s.log.Info("write key removed from config revoked", slog.String("source", g.source), slog.String("key", MaskKey(g.key)))
	}
	return nil
}

// DestSettings implements SettingsStore (dialect.go).
func (s *Postgres) DestSettings(ctx context.Context, dest string) (DestSettings, error) {
	return destSettings(ctx, pgDialect{s.pool}, dest)
}

// ListDestSettings implements SettingsStore (dialect.go).
func (s *Postgres) ListDestSettings(ctx context.Context) ([]DestSettings, error) {
	return listDestSettings(ctx, pgDialect{s.pool})
}

// PutDestSettings implements SettingsStore. The stored row is locked
// (FOR UPDATE) between the version check and the write, and a first save
// inserts with ON CONFLICT DO NOTHING, so two nodes saving against the same
// version cannot both win.
func (s *Postgres) PutDestSettings(ctx context.Context, dest string, settings json.RawMessage, ifVersion int64) (DestSettings, error) {
	if err := checkSettings(dest, settings, ifVersion); err != nil {
		return DestSettings{}, fmt.Errorf("save settings: %w", err)
	}
	d := DestSettings{Dest: dest, Settings: append(json.RawMessage(nil), settings...), UpdatedAt: fromNanos(s.now().UnixNano())}
	var err error
	for range 3 { // a lost race to insert the first row is retried
		var raced bool
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			var cur int64
			err := tx.QueryRow(ctx, `SELECT version FROM dest_settings WHERE dest = $1 FOR UPDATE`, dest).Scan(&cur)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if ifVersion != AnyVersion && ifVersion != cur {
				return fmt.Errorf("stored version is %d, not %d: %w", cur, ifVersion, ErrVersionConflict)
			}
			d.Version = cur + 1
			if cur == 0 {
				tag, err := tx.Exec(ctx, `INSERT INTO dest_settings (dest, settings, version, updated_at) VALUES ($1, $2, 1, $3)
ON CONFLICT (dest) DO NOTHING`, dest, string(settings), toNanos(d.UpdatedAt))
				if err == nil && tag.RowsAffected() == 0 {
					raced = true
					return fmt.Errorf("saved concurrently by another node: %w", ErrVersionConflict)
				}
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE dest_settings SET settings = $2, version = $3, updated_at = $4 WHERE dest = $1`,
				dest, string(settings), d.Version, toNanos(d.UpdatedAt))
			return err
		})
		if !raced || ifVersion != AnyVersion {
			break
		}
	}
	if err != nil {
		return DestSettings{}, fmt.Errorf("save settings of destination %q: %w", dest, err)
	}
	return d, nil
}
