package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// sqliteSuppressionSQL is migration 5. AUTOINCREMENT keeps a removed
// suppression's id from coming back (SuppressionVersion relies on ids only
// growing, and a regulation id must name one thing). The delivery log's
// phone is the normalised number (identity.Phone), so user deletion finds
// phone-only users' rows; deletion.lease_until lets several nodes share
// the requests.
const sqliteSuppressionSQL = `
CREATE TABLE suppression (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	regulation TEXT    NOT NULL,
	origin     TEXT    NOT NULL DEFAULT '',
	user_id    TEXT    NOT NULL DEFAULT '', -- keyed hashes, never the identifiers
	email      TEXT    NOT NULL DEFAULT '',
	phone      TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
);
CREATE INDEX suppression_regulation ON suppression (regulation);
CREATE TABLE suppression_key (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	key BLOB    NOT NULL
);
ALTER TABLE delivery_log ADD COLUMN phone TEXT NOT NULL DEFAULT '';
CREATE INDEX delivery_log_phone ON delivery_log (phone) WHERE phone != '';
ALTER TABLE deletion ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
`

const suppressionColumns = `id, regulation, origin, user_id, email, phone, created_at`

// SuppressionKey implements SuppressionStore.
func (s *SQLite) SuppressionKey(ctx context.Context) ([]byte, error) {
	var key []byte
	err := s.r.QueryRowContext(ctx, `SELECT key FROM suppression_key WHERE id = 1`).Scan(&key)
	if err == nil {
		return key, nil
	}
	if err != sql.ErrNoRows {
		return nil, fmt.Errorf("suppression key: %w", err)
	}
	fresh := make([]byte, suppressionKeySize)
	_, _ = rand.Read(fresh)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO suppression_key (id, key) VALUES (1, ?)`, fresh); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT key FROM suppression_key WHERE id = 1`).Scan(&key)
	})
	if err != nil {
		return nil, fmt.Errorf("suppression key: %w", err)
	}
	return key, nil
}

// AddSuppressions implements SuppressionStore.
func (s *SQLite) AddSuppressions(ctx context.Context, ss []Suppression) error {
	for i := range ss {
		if err := checkSuppression(i, &ss[i]); err != nil {
			return fmt.Errorf("add suppressions: %w", err)
		}
	}
	now := s.now()
	ids := make([]int64, len(ss))
	regs := make([]string, len(ss))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for i, sp := range ss {
			var err error
			if ids[i], regs[i], err = sqliteInsertSuppression(ctx, tx, sp, now); err != nil {
				return fmt.Errorf("suppression %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add %d suppressions: %w", len(ss), err)
	}
	for i := range ss {
		ss[i].ID, ss[i].Regulation, ss[i].CreatedAt = ids[i], regs[i], now
	}
	return nil
}

// ListSuppressions implements SuppressionStore.
func (s *SQLite) ListSuppressions(ctx context.Context, q SuppressionQuery) ([]Suppression, error) {
	query := `SELECT ` + suppressionColumns + ` FROM suppression WHERE id > ? ORDER BY id LIMIT ?`
	after := q.After
	if q.Newest {
		query = `SELECT ` + suppressionColumns + ` FROM suppression WHERE (? <= 0 OR id < ?) ORDER BY id DESC LIMIT ?`
	}
	args := []any{after, suppressionLimit(q.Limit)}
	if q.Newest {
		args = []any{after, after, suppressionLimit(q.Limit)}
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list suppressions: %w", err)
	}
	defer rows.Close()
	var out []Suppression
	for rows.Next() {
		var sp Suppression
		var created int64
		if err := rows.Scan(&sp.ID, &sp.Regulation, &sp.Origin, &sp.UserID, &sp.Email, &sp.Phone, &created); err != nil {
			return nil, fmt.Errorf("list suppressions: %w", err)
		}
		sp.CreatedAt = fromNanos(created)
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list suppressions: %w", err)
	}
	return out, nil
}

// RemoveSuppressions implements SuppressionStore.
func (s *SQLite) RemoveSuppressions(ctx context.Context, regulation string, hashes []string) (int64, error) {
	if regulation == "" && len(hashes) == 0 {
		return 0, fmt.Errorf("remove suppressions: no regulation id and no identifier: %w", ErrInvalid)
	}
	hashes = nonEmpty(hashes)
	if regulation == "" && len(hashes) == 0 {
		return 0, nil
	}
	hs, _ := json.Marshal(nonNil(hashes))
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM suppression WHERE (? != '' AND regulation = ?)
			OR user_id IN (SELECT value FROM json_each(?)) OR email IN (SELECT value FROM json_each(?))
			OR phone IN (SELECT value FROM json_each(?))`, regulation, regulation, string(hs), string(hs), string(hs))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("remove suppressions: %w", err)
	}
	return n, nil
}

// SuppressionVersion implements SuppressionStore.
func (s *SQLite) SuppressionVersion(ctx context.Context) (SuppressionVersion, error) {
	var v SuppressionVersion
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0) FROM suppression`).Scan(&v.Count, &v.MaxID, &v.SumID); err != nil {
		return v, fmt.Errorf("suppression version: %w", err)
	}
	return v, nil
}

// sqliteInsertSuppression inserts sp, naming it sup_<id> when it has no
// regulation id.
func sqliteInsertSuppression(ctx context.Context, tx *sql.Tx, sp Suppression, now time.Time) (int64, string, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO suppression (regulation, origin, user_id, email, phone, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, sp.Regulation, sp.Origin, sp.UserID, sp.Email, sp.Phone, now.UnixNano()).Scan(&id)
	if err != nil || sp.Regulation != "" {
		return id, sp.Regulation, err
	}
	reg := SuppressionRegulation(id)
	_, err = tx.ExecContext(ctx, `UPDATE suppression SET regulation = ? WHERE id = ?`, reg, id)
	return id, reg, err
}
