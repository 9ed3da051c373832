package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// pgRecordSQL is recordSQL (sqlite_log.go) in PostgreSQL: the same
// precedence in the WHERE of DO UPDATE, history as a JSONB array keeping
// the last MaxHistory states.
const pgRecordSQL = `
INSERT INTO delivery_log AS d (message_id, dest, source, type, event, user_id, email, status, prec, attempts, detail, time, phone)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (message_id, dest) DO UPDATE SET
	source   = CASE WHEN excluded.source  = '' THEN d.source  ELSE excluded.source  END,
	type     = CASE WHEN excluded.type    = '' THEN d.type    ELSE excluded.type    END,
	event    = CASE WHEN excluded.event   = '' THEN d.event   ELSE excluded.event   END,
	user_id  = CASE WHEN excluded.user_id = '' THEN d.user_id ELSE excluded.user_id END,
	email    = CASE WHEN excluded.email   = '' THEN d.email   ELSE excluded.email   END,
	phone    = CASE WHEN excluded.phone   = '' THEN d.phone   ELSE excluded.phone   END,
	status   = excluded.status,
	prec     = excluded.prec,
	attempts = excluded.attempts,
	detail   = excluded.detail,
	time     = excluded.time,
	history  = (CASE WHEN jsonb_array_length(d.history) >= 10 THEN d.history - 0 ELSE d.history END)
		|| jsonb_build_array(jsonb_build_object('status', d.status, 'attempts', d.attempts,
			'detail', left(d.detail, 256), 'time', d.time))
WHERE excluded.status = 'replayed'
	OR excluded.prec > d.prec
	OR (excluded.prec = d.prec AND (excluded.attempts > d.attempts
		OR (excluded.attempts = d.attempts AND excluded.time >= d.time)))`

// Record implements DeliveryLog.
func (s *Postgres) Record(ctx context.Context, entries []LogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i := range entries {
		if err := checkEntry(i, &entries[i]); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error { return s.recordTx(ctx, tx, entries) })
	if err != nil {
		return fmt.Errorf("record %d log entries: %w", len(entries), err)
	}
	return nil
}

// recordTx upserts validated entries inside tx, in order, as one pipelined
// batch (one round trip).
func (s *Postgres) recordTx(ctx context.Context, tx pgx.Tx, entries []LogEntry) error {
	now := s.now().UnixNano()
	var b pgx.Batch
	for i := range entries {
		e := &entries[i]
		t := toNanos(e.Time)
		if t == 0 {
			t = now
		}
		b.Queue(pgRecordSQL, e.MessageID, e.Dest, e.Source, e.Type, e.Event, e.UserID,
			strings.ToLower(e.Email), string(e.Status), e.Status.Rank(), e.Attempts,
			truncate(e.Detail, MaxDetail), t, e.Phone)
	}
	res := tx.SendBatch(ctx, &b)
	for i := range entries {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return fmt.Errorf("entry %d (messageId %q): %w", i, entries[i].MessageID, err)
		}
	}
	return res.Close()
}

const pgLogColumns = `id, message_id, dest, source, type, event, user_id, email, status, attempts, detail, time, history`

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

// QueryLog implements LogReader.
func (s *Postgres) QueryLog(ctx context.Context, q LogQuery) ([]LogEntry, error) {
	if q.Status != "" && !q.Status.Valid() {
		return nil, fmt.Errorf("query log: unknown status %q: %w", q.Status, ErrInvalid)
	}
	where, args := logFilter(q)
	args = append(args, clampLimit(q.Limit))
	query := numbered(`SELECT ` + pgLogColumns + ` FROM delivery_log` + where + ` ORDER BY time DESC, id DESC LIMIT ?`)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query log: %w", err)
	}
	defer rows.Close()
	var out []LogEntry
	for rows.Next() {
		e, err := pgScanLog(rows)
		if err != nil {
			return nil, fmt.Errorf("query log: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query log: %w", err)
	}
	return out, nil
}

func pgScanLog(r pgx.Row) (LogEntry, error) {
	var (
		e       LogEntry
		status  string
		t       int64
		history []byte
	)
	err := r.Scan(&e.ID, &e.MessageID, &e.Dest, &e.Source, &e.Type, &e.Event, &e.UserID, &e.Email,
		&status, &e.Attempts, &e.Detail, &t, &history)
	if err != nil {
		return LogEntry{}, err
	}
	e.Status = Status(status)
	e.Time = fromNanos(t)
	var steps []struct {
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
		Detail   string `json:"detail"`
		Time     int64  `json:"time"`
	}
	if err := json.Unmarshal(history, &steps); err != nil {
		return LogEntry{}, fmt.Errorf("log row %d: history: %w", e.ID, err)
	}
	for _, st := range steps {
		e.History = append(e.History, Step{Status: Status(st.Status), Attempts: st.Attempts, Detail: st.Detail, Time: fromNanos(st.Time)})
	}
	return e, nil
}

// LookupLog implements LogReader.
func (s *Postgres) LookupLog(ctx context.Context, messageID, dest string) (LogEntry, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+pgLogColumns+` FROM delivery_log WHERE message_id = $1 AND dest = $2`, messageID, dest)
	e, err := pgScanLog(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return LogEntry{}, fmt.Errorf("log entry of messageId %q at %q: %w", messageID, dest, ErrNotFound)
	}
	if err != nil {
		return LogEntry{}, fmt.Errorf("look up log entry of messageId %q at %q: %w", messageID, dest, err)
	}
	return e, nil
}

// CountLog implements LogReader.
func (s *Postgres) CountLog(ctx context.Context, dest string) (map[Status]int64, error) {
	query, args := `SELECT status, COUNT(*) FROM delivery_log GROUP BY status`, []any(nil)
	if dest != "" {
		query, args = `SELECT status, COUNT(*) FROM delivery_log WHERE dest = $1 GROUP BY status`, []any{dest}
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("count log: %w", err)
	}
	defer rows.Close()
	out := make(map[Status]int64)
	for rows.Next() {
		var (
			st string
			n  int64
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count log: %w", err)
		}
		out[Status(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count log: %w", err)
	}
	return out, nil
}

// Prune implements Pruner.
func (s *Postgres) Prune(ctx context.Context, r Retention) (Pruned, error) {
	var p Pruned
	if r.LogMaxRows < 0 || r.LogMaxAge < 0 || r.ReplayedMaxAge < 0 {
		return p, fmt.Errorf("prune: negative retention: %w", ErrInvalid)
	}
	now := s.now()
	if r.LogMaxAge > 0 {
		cut := now.Add(-r.LogMaxAge).UnixNano()
		n, err := s.deleteChunks(ctx,
			`DELETE FROM delivery_log WHERE id IN (SELECT id FROM delivery_log WHERE time < $1 ORDER BY time LIMIT $2)`, cut)
		p.LogRows += n
		if err != nil {
			return p, fmt.Errorf("prune log by age: %w", err)
		}
	}
	if r.LogMaxRows > 0 {
		var total int64
		if err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM delivery_log`).Scan(&total); err != nil {
			return p, fmt.Errorf("prune log by count: %w", err)
		}
		excess := total - r.LogMaxRows
		for excess > 0 {
			tag, err := s.pool.Exec(ctx, `DELETE FROM delivery_log WHERE id IN (SELECT id FROM delivery_log ORDER BY time, id LIMIT $1)`,
				min(excess, pruneChunk))
			if err != nil {
				return p, fmt.Errorf("prune log by count: %w", err)
			}
			n := tag.RowsAffected()
			if n == 0 {
				break
			}
			p.LogRows += n
			excess -= n
		}
	}
	if r.ReplayedMaxAge > 0 {
		cut := now.Add(-r.ReplayedMaxAge).UnixNano()
		n, err := s.deleteChunks(ctx,
			`DELETE FROM dead_letter WHERE id IN (SELECT id FROM dead_letter WHERE replayed_at IS NOT NULL AND replayed_at < $1 LIMIT $2)`, cut)
		p.DeadLetters += n
		if err != nil {
			return p, fmt.Errorf("prune replayed dead letters: %w", err)
		}
	}
	return p, nil
}

// deleteChunks runs query (whose last parameter is the chunk size) until it
// deletes fewer than pruneChunk rows.
func (s *Postgres) deleteChunks(ctx context.Context, query string, args ...any) (int64, error) {
	args = append(args, pruneChunk)
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, query, args...)
		if err != nil {
			return total, err
		}
		n := tag.RowsAffected()
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}
