package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// dialect is what the SQL both stores share needs from one of them: its
// driver behind one query interface, with ? placeholders (PostgreSQL's
// rebinds them), and how its text columns keep a string. The queries in
// this file are written once for both; what differs (writes with
// PostgreSQL's batches and row locks, SQLite's single writer) stays in
// each store's files.
type dialect interface {
	query(ctx context.Context, q string, args ...any) (rows, error)
	queryRow(ctx context.Context, q string, args ...any) scanner
	noRows(err error) bool
	// text is s as the store keeps it in a text column (lookups map their
	// arguments alike).
	text(s string) string
	// byteOrder is an ORDER BY term sorting col by bytes (PostgreSQL's
	// default collation is the locale's).
	byteOrder(col string) string
	// jsonText is a select term reading JSON column col as text, so both
	// stores decode the same bytes (PostgreSQL keeps it as JSONB).
	jsonText(col string) string
	// jsonParam is the placeholder of a value bound for a JSON column.
	jsonParam() string
	// inList is a condition holding when col is in the list bound by
	// listArg (PostgreSQL binds an array, SQLite a JSON array).
	inList(col string) string
	listArg(list any) any
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// sqliteDialect reads through database/sql (the SQLite store's reader pool).
type sqliteDialect struct{ db *sql.DB }

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

func (d sqliteDialect) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (d sqliteDialect) queryRow(ctx context.Context, q string, args ...any) scanner {
	return d.db.QueryRowContext(ctx, q, args...)
}

func (sqliteDialect) noRows(err error) bool       { return errors.Is(err, sql.ErrNoRows) }
func (sqliteDialect) text(s string) string        { return s }
func (sqliteDialect) byteOrder(col string) string { return col }
func (sqliteDialect) jsonText(col string) string  { return col }
func (sqliteDialect) jsonParam() string           { return `?` }
func (sqliteDialect) inList(col string) string {
	return col + ` IN (SELECT value FROM json_each(?))`
}

// listArg marshals list, a []string or []int64, as a JSON array.
func (sqliteDialect) listArg(list any) any {
	b, _ := json.Marshal(list)
	return string(b)
}

// pgDialect reads through pgx, numbering the placeholders.
type pgDialect struct{ pool *pgxpool.Pool }

func (d pgDialect) query(ctx context.Context, q string, args ...any) (rows, error) {
	return d.pool.Query(ctx, numbered(q), args...)
}

func (d pgDialect) queryRow(ctx context.Context, q string, args ...any) scanner {
	return d.pool.QueryRow(ctx, numbered(q), args...)
}

func (pgDialect) noRows(err error) bool       { return errors.Is(err, pgx.ErrNoRows) }
func (pgDialect) text(s string) string        { return textSafe(s) }
func (pgDialect) byteOrder(col string) string { return col + ` COLLATE "C"` }
func (pgDialect) jsonText(col string) string  { return col + `::text` }
func (pgDialect) jsonParam() string           { return `?::jsonb` }
func (pgDialect) inList(col string) string    { return col + ` = ANY(?)` }

// listArg binds list, a []string or []int64, as an array, its strings
// mapped as the text columns keep them.
func (d pgDialect) listArg(list any) any {
	ss, ok := list.([]string)
	if !ok {
		return list
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = d.text(s)
	}
	return out
}

// textArgs maps the string arguments of a query through d.text.
func textArgs(d dialect, args []any) []any {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = d.text(s)
		}
	}
	return args
}

const (
	logColumns  = `id, message_id, dest, source, type, event, user_id, email, status, attempts, detail, time, history`
	deadColumns = `id, message_id, source, dest, payload, error, status, code, pointer, attempts, created_at, replayed_at`
)

func queryLog(ctx context.Context, d dialect, q LogQuery) ([]LogEntry, error) {
	if q.Status != "" && !q.Status.Valid() {
		return nil, fmt.Errorf("query log: unknown status %q: %w", q.Status, ErrInvalid)
	}
	where, args := logFilter(q)
	args = append(textArgs(d, args), clampLimit(q.Limit))
	return queryAll(ctx, d, "query log", scanLog, `SELECT `+logColumns+` FROM delivery_log`+where+` ORDER BY time DESC, id DESC LIMIT ?`, args...)
}

func lookupLog(ctx context.Context, d dialect, messageID, dest string) (LogEntry, error) {
	e, err := scanLog(d.queryRow(ctx, `SELECT `+logColumns+` FROM delivery_log WHERE message_id = ? AND dest = ?`, d.text(messageID), d.text(dest)))
	if d.noRows(err) {
		return LogEntry{}, fmt.Errorf("log entry of messageId %q at %q: %w", messageID, dest, ErrNotFound)
	}
	if err != nil {
		return LogEntry{}, fmt.Errorf("look up log entry of messageId %q at %q: %w", messageID, dest, err)
	}
	return e, nil
}

func countLog(ctx context.Context, d dialect, dest string) (map[Status]int64, error) {
	query, args := `SELECT status, COUNT(*) FROM delivery_log GROUP BY status`, []any(nil)
	if dest != "" {
		query, args = `SELECT status, COUNT(*) FROM delivery_log WHERE dest = ? GROUP BY status`, []any{d.text(dest)}
	}
	rs, err := d.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("count log: %w", err)
	}
	defer rs.Close()
	out := make(map[Status]int64)
	for rs.Next() {
		var (
			st string
			n  int64
		)
		if err := rs.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count log: %w", err)
		}
		out[Status(st)] = n
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("count log: %w", err)
	}
	return out, nil
}

func listDeadLetters(ctx context.Context, d dialect, q DeadLetterQuery) ([]DeadLetter, error) {
	var (
		where []string
		args  []any
	)
	if !q.IncludeReplayed {
		where = append(where, "replayed_at IS NULL")
	}
	if q.Dest != "" {
		where, args = append(where, "dest = ?"), append(args, d.text(q.Dest))
	}
	if q.Source != "" {
		where, args = append(where, "source = ?"), append(args, d.text(q.Source))
	}
	if q.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, q.BeforeID)
	}
	query := `SELECT ` + deadColumns + ` FROM dead_letter`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	return queryAll(ctx, d, "list dead letters", scanDead, query+` ORDER BY id DESC LIMIT ?`, append(args, clampLimit(q.Limit))...)
}

func lookupDeadLetter(ctx context.Context, d dialect, id int64) (DeadLetter, error) {
	dl, err := scanDead(d.queryRow(ctx, `SELECT `+deadColumns+` FROM dead_letter WHERE id = ?`, id))
	if d.noRows(err) {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("look up dead letter %d: %w", id, err)
	}
	return dl, nil
}

func countDeadLetters(ctx context.Context, d dialect, dest string) (int64, error) {
	query, args := `SELECT COUNT(*) FROM dead_letter WHERE replayed_at IS NULL`, []any(nil)
	if dest != "" {
		query, args = query+` AND dest = ?`, []any{d.text(dest)}
	}
	var n int64
	if err := d.queryRow(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
}

// queryAll runs q on d and scans every row; what names the read in errors.
func queryAll[T any](ctx context.Context, d dialect, what string, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rs, err := d.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := scanAll(rs, scan)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func scanAll[T any](rs rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rs.Close()
	var out []T
	for rs.Next() {
		v, err := scan(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// scanDead reads a deadColumns row (NULL replayed_at: not replayed).
func scanDead(r scanner) (DeadLetter, error) {
	var (
		d        DeadLetter
		created  int64
		replayed *int64
	)
	err := r.Scan(&d.ID, &d.MessageID, &d.Source, &d.Dest, &d.Payload, &d.Error, &d.Status, &d.Code, &d.Pointer,
		&d.Attempts, &created, &replayed)
	if err != nil {
		return DeadLetter{}, err
	}
	d.CreatedAt = fromNanos(created)
	d.ReplayedAt = pgNullNanos(replayed)
	return d, nil
}

// numbered turns the ? placeholders of a query built for both stores into
// PostgreSQL's $1, $2, … (no literal in those queries holds a ?).
func numbered(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// loadKeys reads every live write key, hashed, with its source.
func loadKeys(ctx context.Context, d dialect) (map[[32]byte]string, error) {
	rs, err := d.query(ctx, `SELECT wkey, source FROM write_key WHERE revoked_at IS NULL`)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	keys := make(map[[32]byte]string)
	for rs.Next() {
		var k, src string
		if err := rs.Scan(&k, &src); err != nil {
			return nil, err
		}
		keys[sha256.Sum256([]byte(k))] = src
	}
	return keys, rs.Err()
}

func listSources(ctx context.Context, d dialect) ([]Source, error) {
	rs, err := d.query(ctx, `
SELECT s.name, k.wkey, k.seeded, k.created_at, k.revoked_at
FROM source s LEFT JOIN write_key k ON k.source = s.name
ORDER BY `+d.byteOrder("s.name")+`, k.created_at, `+d.byteOrder("k.wkey"))
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	defer rs.Close()
	var out []Source
	for rs.Next() {
		var (
			name    string
			key     *string
			seeded  *bool
			created *int64
			revoked *int64
		)
		if err := rs.Scan(&name, &key, &seeded, &created, &revoked); err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Name != name {
			out = append(out, Source{Name: name})
		}
		if key != nil {
			src := &out[len(out)-1]
			src.WriteKeys = append(src.WriteKeys, WriteKey{Key: *key, Seeded: seeded != nil && *seeded,
				CreatedAt: pgNullNanos(created), RevokedAt: pgNullNanos(revoked)})
		}
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	return out, nil
}

func destSettings(ctx context.Context, d dialect, dest string) (DestSettings, error) {
	ds, err := scanSettings(d.queryRow(ctx, `SELECT dest, settings, version, updated_at FROM dest_settings WHERE dest = ?`, dest))
	if d.noRows(err) {
		return DestSettings{}, fmt.Errorf("settings of destination %q: %w", dest, ErrNotFound)
	}
	if err != nil {
		return DestSettings{}, fmt.Errorf("read settings of destination %q: %w", dest, err)
	}
	return ds, nil
}

func listDestSettings(ctx context.Context, d dialect) ([]DestSettings, error) {
	return queryAll(ctx, d, "list destination settings", scanSettings, `SELECT dest, settings, version, updated_at FROM dest_settings ORDER BY `+d.byteOrder("dest"))
}

func scanSettings(r scanner) (DestSettings, error) {
	var (
		d       DestSettings
		raw     string
		updated int64
	)
	if err := r.Scan(&d.Dest, &raw, &d.Version, &updated); err != nil {
		return DestSettings{}, err
	}
	d.Settings = json.RawMessage(raw)
	d.UpdatedAt = fromNanos(updated)
	return d, nil
}
