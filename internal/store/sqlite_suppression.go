package store

import (
	"context"
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

// SuppressionKey implements SuppressionStore (suppression.go).
func (s *SQLite) SuppressionKey(ctx context.Context) ([]byte, error) {
	return suppressionKey(ctx, sqliteDialect{s.r}, func(fresh []byte) (key []byte, err error) {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO suppression_key (id, key) VALUES (1, ?)`, fresh); err != nil {
				return err
			}
			return tx.QueryRowContext(ctx, suppressionKeyQuery).Scan(&key)
		})
		return key, err
	})
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

// ListSuppressions implements SuppressionStore (suppression.go).
func (s *SQLite) ListSuppressions(ctx context.Context, q SuppressionQuery) ([]Suppression, error) {
	return listSuppressions(ctx, sqliteDialect{s.r}, q)
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

// SuppressionVersion implements SuppressionStore (suppression.go).
func (s *SQLite) SuppressionVersion(ctx context.Context) (SuppressionVersion, error) {
	return suppressionVersion(ctx, sqliteDialect{s.r})
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
