package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgSuppressionSQL is migration 5 (sqliteSuppressionSQL in PostgreSQL;
// identity ids never come back).
const pgSuppressionSQL = `
CREATE TABLE suppression (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	regulation TEXT   NOT NULL,
	origin     TEXT   NOT NULL DEFAULT '',
	user_id    TEXT   NOT NULL DEFAULT '', -- keyed hashes, never the identifiers
	email      TEXT   NOT NULL DEFAULT '',
	phone      TEXT   NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX suppression_regulation ON suppression (regulation);
CREATE TABLE suppression_key (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	key BYTEA   NOT NULL
);
ALTER TABLE delivery_log ADD COLUMN phone TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX delivery_log_phone ON delivery_log (phone) WHERE phone != '';
ALTER TABLE deletion ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
`

// SuppressionKey implements SuppressionStore (suppression.go). Two nodes
// may race to create the key: the first insert wins and both read it.
func (s *Postgres) SuppressionKey(ctx context.Context) ([]byte, error) {
	return suppressionKey(ctx, pgDialect{s.pool}, func(fresh []byte) (key []byte, err error) {
		if _, err := s.pool.Exec(ctx, `INSERT INTO suppression_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, fresh); err != nil {
			return nil, err
		}
		err = s.pool.QueryRow(ctx, suppressionKeyQuery).Scan(&key)
		return key, err
	})
}

// AddSuppressions implements SuppressionStore.
func (s *Postgres) AddSuppressions(ctx context.Context, ss []Suppression) error {
	for i := range ss {
		if err := checkSuppression(i, &ss[i]); err != nil {
			return fmt.Errorf("add suppressions: %w", err)
		}
	}
	now := s.now()
	ids := make([]int64, len(ss))
	regs := make([]string, len(ss))
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for i, sp := range ss {
			var err error
			if ids[i], regs[i], err = pgInsertSuppression(ctx, tx, sp, now); err != nil {
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
func (s *Postgres) ListSuppressions(ctx context.Context, q SuppressionQuery) ([]Suppression, error) {
	return listSuppressions(ctx, pgDialect{s.pool}, q)
}

// RemoveSuppressions implements SuppressionStore.
func (s *Postgres) RemoveSuppressions(ctx context.Context, regulation string, hashes []string) (int64, error) {
	if regulation == "" && len(hashes) == 0 {
		return 0, fmt.Errorf("remove suppressions: no regulation id and no identifier: %w", ErrInvalid)
	}
	hashes = nonEmpty(hashes)
	if regulation == "" && len(hashes) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM suppression WHERE ($1 != '' AND regulation = $1)
		OR user_id = ANY($2) OR email = ANY($2) OR phone = ANY($2)`, regulation, nonNil(hashes))
	if err != nil {
		return 0, fmt.Errorf("remove suppressions: %w", err)
	}
	return tag.RowsAffected(), nil
}

// SuppressionVersion implements SuppressionStore (suppression.go).
func (s *Postgres) SuppressionVersion(ctx context.Context) (SuppressionVersion, error) {
	return suppressionVersion(ctx, pgDialect{s.pool})
}

// pgInsertSuppression inserts sp, naming it sup_<id> when it has no
// regulation id.
func pgInsertSuppression(ctx context.Context, tx pgx.Tx, sp Suppression, now time.Time) (int64, string, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO suppression (regulation, origin, user_id, email, phone, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, sp.Regulation, sp.Origin, sp.UserID, sp.Email, sp.Phone, now.UnixNano()).Scan(&id)
	if err != nil || sp.Regulation != "" {
		return id, sp.Regulation, err
	}
	reg := SuppressionRegulation(id)
	_, err = tx.Exec(ctx, `UPDATE suppression SET regulation = $1 WHERE id = $2`, reg, id)
	return id, reg, err
}
