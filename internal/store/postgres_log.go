package store

import (
	"context"
	"fmt"
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
		b.Queue(pgRecordSQL, textSafe(e.MessageID), textSafe(e.Dest), textSafe(e.Source), textSafe(e.Type), textSafe(e.Event), textSafe(e.UserID),
			textSafe(strings.ToLower(e.Email)), string(e.Status), e.Status.Rank(), e.Attempts,
			textSafe(truncate(e.Detail, MaxDetail)), t, textSafe(e.Phone))
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

// QueryLog implements LogReader (dialect.go).
func (s *Postgres) QueryLog(ctx context.Context, q LogQuery) ([]LogEntry, error) {
	return queryLog(ctx, pgDialect{s.pool}, q)
}

// LookupLog implements LogReader (dialect.go).
func (s *Postgres) LookupLog(ctx context.Context, messageID, dest string) (LogEntry, error) {
	return lookupLog(ctx, pgDialect{s.pool}, messageID, dest)
}

// CountLog implements LogReader (dialect.go).
func (s *Postgres) CountLog(ctx context.Context, dest string) (map[Status]int64, error) {
	return countLog(ctx, pgDialect{s.pool}, dest)
}
