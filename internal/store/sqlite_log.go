package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// recordSQL upserts one log entry. The WHERE of DO UPDATE is the Status
// precedence (see the Status constants): the database decides, so batches
// need no reads. The replaced state is appended to history, which keeps the
// last MaxHistory (10) states, each with detail cut to 256 characters.
// Empty descriptive fields never erase known ones (delivery may not know
// the email the gateway recorded).
const recordSQL = `
INSERT INTO delivery_log (message_id, dest, source, type, event, user_id, email, status, prec, attempts, detail, time, phone)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (message_id, dest) DO UPDATE SET
	source   = CASE WHEN excluded.source  = '' THEN delivery_log.source  ELSE excluded.source  END,
	type     = CASE WHEN excluded.type    = '' THEN delivery_log.type    ELSE excluded.type    END,
	event    = CASE WHEN excluded.event   = '' THEN delivery_log.event   ELSE excluded.event   END,
	user_id  = CASE WHEN excluded.user_id = '' THEN delivery_log.user_id ELSE excluded.user_id END,
	email    = CASE WHEN excluded.email   = '' THEN delivery_log.email   ELSE excluded.email   END,
	phone    = CASE WHEN excluded.phone   = '' THEN delivery_log.phone   ELSE excluded.phone   END,
	status   = excluded.status,
	prec     = excluded.prec,
	attempts = excluded.attempts,
	detail   = excluded.detail,
	time     = excluded.time,
	history  = json_insert(
		CASE WHEN json_array_length(delivery_log.history) >= 10
			THEN json_remove(delivery_log.history, '$[0]') ELSE delivery_log.history END,
		'$[#]',
		json_object('status', delivery_log.status, 'attempts', delivery_log.attempts,
			'detail', substr(delivery_log.detail, 1, 256), 'time', delivery_log.time))
WHERE excluded.status = 'replayed'
	OR excluded.prec > delivery_log.prec
	OR (excluded.prec = delivery_log.prec AND (excluded.attempts > delivery_log.attempts
		OR (excluded.attempts = delivery_log.attempts AND excluded.time >= delivery_log.time)))`

// Record implements DeliveryLog.
func (s *SQLite) Record(ctx context.Context, entries []LogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i := range entries {
		if err := checkEntry(i, &entries[i]); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error { return s.recordTx(ctx, tx, entries) })
	if err != nil {
		return fmt.Errorf("record %d log entries: %w", len(entries), err)
	}
	return nil
}

// recordTx upserts validated entries inside tx, in order.
func (s *SQLite) recordTx(ctx context.Context, tx *sql.Tx, entries []LogEntry) error {
	stmt, err := tx.PrepareContext(ctx, recordSQL)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer stmt.Close()
	now := s.now().UnixNano()
	for i := range entries {
		e := &entries[i]
		t := toNanos(e.Time)
		if t == 0 {
			t = now
		}
		_, err := stmt.ExecContext(ctx, e.MessageID, e.Dest, e.Source, e.Type, e.Event, e.UserID,
			strings.ToLower(e.Email), string(e.Status), e.Status.Rank(), e.Attempts,
			truncate(e.Detail, MaxDetail), t, e.Phone)
		if err != nil {
			return fmt.Errorf("entry %d (messageId %q): %w", i, e.MessageID, err)
		}
	}
	return nil
}

// QueryLog implements LogReader (dialect.go).
func (s *SQLite) QueryLog(ctx context.Context, q LogQuery) ([]LogEntry, error) {
	return queryLog(ctx, sqliteDialect{s.r}, q)
}

// textMatch matches messageId, userId or email exactly or by prefix, as
// index range scans.
// logFilter renders q's conditions as a WHERE clause (empty when there are
// none) with ? placeholders, shared by both stores (PostgreSQL numbers them
// with numbered).
func logFilter(q LogQuery) (string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if q.Status != "" {
		add("status = ?", string(q.Status))
	}
	if q.Dest != "" {
		add("dest = ?", q.Dest)
	}
	if q.Source != "" {
		add("source = ?", q.Source)
	}
	if !q.Before.IsZero() {
		b := q.Before.UnixNano()
		if q.BeforeID > 0 {
			add("(time < ? OR (time = ? AND id < ?))", b, b, q.BeforeID)
		} else {
			add("time < ?", b)
		}
	}
	if q.Text != "" {
		cond, a := textMatch(q.Text)
		add(cond, a...)
	}
	if len(where) == 0 {
		return "", args
	}
	return ` WHERE ` + strings.Join(where, " AND "), args
}

func textMatch(text string) (string, []any) {
	lower := strings.ToLower(text)
	end, ok := prefixEnd(text)
	if !ok {
		return "(message_id = ? OR user_id = ? OR email = ?)", []any{text, text, lower}
	}
	lowerEnd, _ := prefixEnd(lower)
	return "((message_id >= ? AND message_id < ?) OR (user_id >= ? AND user_id < ?) OR (email >= ? AND email < ?))",
		[]any{text, end, text, end, lower, lowerEnd}
}

type scanner interface{ Scan(dest ...any) error }

func scanLog(r scanner) (LogEntry, error) {
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

// LookupLog implements LogReader (dialect.go).
func (s *SQLite) LookupLog(ctx context.Context, messageID, dest string) (LogEntry, error) {
	return lookupLog(ctx, sqliteDialect{s.r}, messageID, dest)
}

// CountLog implements LogReader (dialect.go).
func (s *SQLite) CountLog(ctx context.Context, dest string) (map[Status]int64, error) {
	return countLog(ctx, sqliteDialect{s.r}, dest)
}
