package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
)

// ResolveWriteKey implements KeyResolver from the in-memory cache.
func (s *SQLite) ResolveWriteKey(ctx context.Context, key string) (string, error) {
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

// loadKeys reads every active key for the cache.
func (s *SQLite) loadKeys(ctx context.Context) (map[[32]byte]string, error) {
	return loadKeys(ctx, sqliteDialect{s.r})
}

// Sources implements SourceAdmin (dialect.go).
func (s *SQLite) Sources(ctx context.Context) ([]Source, error) {
	return listSources(ctx, sqliteDialect{s.r})
}

// CreateSource implements SourceAdmin.
func (s *SQLite) CreateSource(ctx context.Context, name string) (Source, error) {
	if err := checkName("source", name); err != nil {
		return Source{}, fmt.Errorf("create source: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO source (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
		name, s.now().UnixNano())
	if err != nil {
		return Source{}, fmt.Errorf("create source %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return Source{}, errors.Join(fmt.Errorf("create source %q: %w", name, ErrExists), err)
	}
	return Source{Name: name}, nil
}

// CreateWriteKey implements SourceAdmin.
func (s *SQLite) CreateWriteKey(ctx context.Context, source string) (WriteKey, error) {
	key, err := NewWriteKey()
	if err != nil {
		return WriteKey{}, err
	}
	wk := WriteKey{Key: key, CreatedAt: fromNanos(s.now().UnixNano())}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM source WHERE name = ?)`, source).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("source %q: %w", source, ErrNotFound)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO write_key (wkey, source, seeded, created_at) VALUES (?, ?, 0, ?)`,
			wk.Key, source, toNanos(wk.CreatedAt))
		return err
	})
	if err != nil {
		return WriteKey{}, fmt.Errorf("create write key for source %q: %w", source, err)
	}
	s.keys.invalidate()
	return wk, nil
}

// RevokeWriteKey implements SourceAdmin.
func (s *SQLite) RevokeWriteKey(ctx context.Context, key string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE write_key SET revoked_at = COALESCE(revoked_at, ?) WHERE wkey = ?`,
		s.now().UnixNano(), key)
	// The cache is dropped even on error: a revoke must never be missed.
	s.keys.invalidate()
	if err != nil {
		return fmt.Errorf("revoke write key %s: %w", MaskKey(key), err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(fmt.Errorf("revoke write key %s: %w", MaskKey(key), ErrNotFound), err)
	}
	return nil
}

// SeedSources implements SourceAdmin.
func (s *SQLite) SeedSources(ctx context.Context, sources []Source) error {
	owner, err := checkSeed(sources)
	if err != nil {
		return fmt.Errorf("seed sources: %w", err)
	}
	now := s.now().UnixNano()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for _, src := range sources {
			if _, err := tx.ExecContext(ctx, `INSERT INTO source (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
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

// checkSeed validates configured sources and maps each key to its source.
func checkSeed(sources []Source) (map[string]string, error) {
	owner := make(map[string]string)
	names := make(map[string]bool)
	for _, src := range sources {
		if err := checkName("source", src.Name); err != nil {
			return nil, err
		}
		if names[src.Name] {
			return nil, fmt.Errorf("source %q is listed twice: %w", src.Name, ErrInvalid)
		}
		names[src.Name] = true
		for _, wk := range src.WriteKeys {
			if err := checkKey(src.Name, wk.Key); err != nil {
				return nil, err
			}
			if o, dup := owner[wk.Key]; dup {
				return nil, fmt.Errorf("write key %s is listed for sources %q and %q: %w", MaskKey(wk.Key), o, src.Name, ErrInvalid)
			}
			owner[wk.Key] = src.Name
		}
	}
	return owner, nil
}

// seedKeys inserts configured keys that are new.
func (s *SQLite) seedKeys(ctx context.Context, tx *sql.Tx, owner map[string]string, now int64) error {
	keys := make([]string, 0, len(owner))
	for k := range owner {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic errors and logs
	for _, k := range keys {
		src := owner[k]
		var (
			have    string
			revoked sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `SELECT source, revoked_at FROM write_key WHERE wkey = ?`, k).Scan(&have, &revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO write_key (wkey, source, seeded, created_at) VALUES (?, ?, 1, ?)`,
				k, src, now); err != nil {
				return fmt.Errorf("source %q: write key %s: %w", src, MaskKey(k), err)
			}
		case err != nil:
			return fmt.Errorf("source %q: write key %s: %w", src, MaskKey(k), err)
		case have != src:
			return fmt.Errorf("source %q: write key %s already belongs to source %q: %w", src, MaskKey(k), have, ErrExists)
		case revoked.Valid:
			s.log.Warn("configured write key stays revoked", slog.String("source", src), slog.String("key", MaskKey(k)))
		}
	}
	return nil
}

// revokeUnseeded revokes seeded keys the config no longer lists.
func (s *SQLite) revokeUnseeded(ctx context.Context, tx *sql.Tx, owner map[string]string, now int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT wkey, source FROM write_key WHERE seeded = 1 AND revoked_at IS NULL`)
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
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("list seeded keys: %w", err)
	}
	for _, g := range drop {
		if _, err := tx.ExecContext(ctx, `UPDATE write_key SET revoked_at = ? WHERE wkey = ?`, now, g.key); err != nil {
			return fmt.Errorf("revoke write key %s: %w", MaskKey(g.key), err)
		}
		s.log.Info("write key removed from config revoked", slog.String("source", g.source), slog.String("key", MaskKey(g.key)))
	}
	return nil
}
