package store

import "context"

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
	return suppressionKey(ctx, sqliteDialect{s.r}, s)
}

// AddSuppressions implements SuppressionStore (suppression.go).
func (s *SQLite) AddSuppressions(ctx context.Context, ss []Suppression) error {
	return addSuppressions(ctx, s, ss, s.now())
}

// ListSuppressions implements SuppressionStore (suppression.go).
func (s *SQLite) ListSuppressions(ctx context.Context, q SuppressionQuery) ([]Suppression, error) {
	return listSuppressions(ctx, sqliteDialect{s.r}, q)
}

// RemoveSuppressions implements SuppressionStore (suppression.go).
func (s *SQLite) RemoveSuppressions(ctx context.Context, regulation string, hashes []string) (int64, error) {
	return removeSuppressions(ctx, s, regulation, hashes)
}

// SuppressionVersion implements SuppressionStore (suppression.go).
func (s *SQLite) SuppressionVersion(ctx context.Context) (SuppressionVersion, error) {
	return suppressionVersion(ctx, sqliteDialect{s.r})
}
