package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// AuditEntry is one delivered event's privacy record: which keys reached
// the destination and which the destination's privacy policy dropped. It
// holds key names only, never values (docs/PRIVACY.md).
type AuditEntry struct {
	ID        int64     `json:"id"` // assigned by the store
	MessageID string    `json:"messageId"`
	Dest      string    `json:"dest"`
	Source    string    `json:"source,omitempty"`
	UserID    string    `json:"userId,omitempty"`
	Email     string    `json:"email,omitempty"` // stored and searched in lower case
	Time      time.Time `json:"time"`            // the store's clock when zero
	Sent      []string  `json:"sent"`
	Dropped   []string  `json:"dropped"`
}

// AuditQuery selects audit entries, newest first. Empty fields match
// everything.
type AuditQuery struct {
	// User matches userId exactly or email case-insensitively.
	User      string
	MessageID string
	Dest      string
	Since     time.Time // inclusive
	Until     time.Time // exclusive
	Limit     int       // default 50, at most 1000
	// BeforeID pages backwards: the last ID of the previous page.
	BeforeID int64
}

// AuditLog is the privacy audit log: delivery appends, the console and
// the NDJSON export read. An event delivered again (a replay) gets another
// entry.
type AuditLog interface {
	// RecordAudit appends entries in one transaction; an entry without
	// MessageID or Dest fails the call before anything is written.
	RecordAudit(ctx context.Context, entries []AuditEntry) error
	AuditReader
}

// AuditReader is the console's and the export's view of the audit log.
type AuditReader interface {
	QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

// MaxAuditKeys bounds the keys one entry keeps per list.
const MaxAuditKeys = 1000

func checkAudit(i int, e *AuditEntry) error {
	switch {
	case e.MessageID == "":
		return fmt.Errorf("audit entry %d: empty messageId: %w", i, ErrInvalid)
	case e.Dest == "":
		return fmt.Errorf("audit entry %d: empty dest: %w", i, ErrInvalid)
	}
	return nil
}

// auditKeys encodes a key list for storage ("[]" for none).
func auditKeys(keys []string) string {
	if len(keys) > MaxAuditKeys {
		keys = keys[:MaxAuditKeys]
	}
	if keys == nil {
		keys = []string{}
	}
	b, _ := json.Marshal(keys)
	return string(b)
}

// auditFilter renders q as a WHERE clause with ? placeholders (both
// stores; PostgreSQL numbers them).
func auditFilter(q AuditQuery) (string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if q.User != "" {
		add("(user_id = ? OR email = ?)", q.User, strings.ToLower(q.User))
	}
	if q.MessageID != "" {
		add("message_id = ?", q.MessageID)
	}
	if q.Dest != "" {
		add("dest = ?", q.Dest)
	}
	if !q.Since.IsZero() {
		add("time >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		add("time < ?", q.Until.UnixNano())
	}
	if q.BeforeID > 0 {
		add("id < ?", q.BeforeID)
	}
	if len(where) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

const auditInsert = `INSERT INTO audit_log (message_id, dest, source, user_id, email, time, sent, dropped) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// checkAudits checks every entry before a store writes any.
func checkAudits(entries []AuditEntry) error {
	for i := range entries {
		if err := checkAudit(i, &entries[i]); err != nil {
			return fmt.Errorf("record audit: %w", err)
		}
	}
	return nil
}

// auditArgs are auditInsert's arguments for e, stamped now (Unix
// nanoseconds) when it has no time.
func auditArgs(d dialect, e *AuditEntry, now int64) []any {
	t := toNanos(e.Time)
	if t == 0 {
		t = now
	}
	return []any{d.text(e.MessageID), d.text(e.Dest), d.text(e.Source), d.text(e.UserID), d.text(strings.ToLower(e.Email)),
		t, auditKeys(e.Sent), auditKeys(e.Dropped)}
}

const auditColumns = `id, message_id, dest, source, user_id, email, time, sent, dropped`

func queryAudit(ctx context.Context, d dialect, q AuditQuery) ([]AuditEntry, error) {
	where, args := auditFilter(q)
	args = append(textArgs(d, args), clampLimit(q.Limit))
	return queryAll(ctx, d, "query audit", scanAudit, `SELECT `+auditColumns+` FROM audit_log`+where+` ORDER BY id DESC LIMIT ?`, args...)
}

func scanAudit(r scanner) (AuditEntry, error) {
	var (
		e             AuditEntry
		t             int64
		sent, dropped string
	)
	if err := r.Scan(&e.ID, &e.MessageID, &e.Dest, &e.Source, &e.UserID, &e.Email, &t, &sent, &dropped); err != nil {
		return e, err
	}
	e.Time = fromNanos(t)
	if err := json.Unmarshal([]byte(sent), &e.Sent); err != nil {
		return e, fmt.Errorf("audit row %d: sent: %w", e.ID, err)
	}
	if err := json.Unmarshal([]byte(dropped), &e.Dropped); err != nil {
		return e, fmt.Errorf("audit row %d: dropped: %w", e.ID, err)
	}
	return e, nil
}

// ExportAudit writes every entry q selects (ignoring q.Limit) as NDJSON,
// newest first, a page at a time, and returns how many it wrote.
func ExportAudit(ctx context.Context, a AuditReader, q AuditQuery, w io.Writer) (int, error) {
	q.Limit = 1000
	enc := json.NewEncoder(w)
	n := 0
	for {
		page, err := a.QueryAudit(ctx, q)
		if err != nil {
			return n, fmt.Errorf("export audit: %w", err)
		}
		for i := range page {
			if err := enc.Encode(&page[i]); err != nil {
				return n, fmt.Errorf("export audit: %w", err)
			}
			n++
		}
		if len(page) < q.Limit {
			return n, nil
		}
		q.BeforeID = page[len(page)-1].ID
	}
}
