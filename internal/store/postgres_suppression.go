package store

import "context"

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

// SuppressionKey implements SuppressionStore (suppression.go).
func (s *Postgres) SuppressionKey(ctx context.Context) ([]byte, error) {
	return suppressionKey(ctx, pgDialect{s.pool}, s)
}

// AddSuppressions implements SuppressionStore (suppression.go).
func (s *Postgres) AddSuppressions(ctx context.Context, ss []Suppression) error {
	return addSuppressions(ctx, s, ss, s.now())
}

// ListSuppressions implements SuppressionStore (suppression.go).
func (s *Postgres) ListSuppressions(ctx context.Context, q SuppressionQuery) ([]Suppression, error) {
	return listSuppressions(ctx, pgDialect{s.pool}, q)
}

// RemoveSuppressions implements SuppressionStore (suppression.go).
func (s *Postgres) RemoveSuppressions(ctx context.Context, regulation string, hashes []string) (int64, error) {
	return removeSuppressions(ctx, s, regulation, hashes)
}

// SuppressionVersion implements SuppressionStore (suppression.go).
func (s *Postgres) SuppressionVersion(ctx context.Context) (SuppressionVersion, error) {
	return suppressionVersion(ctx, pgDialect{s.pool})
}
