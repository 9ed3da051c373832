package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// RecordAudit implements AuditLog.
func (s *Postgres) RecordAudit(ctx context.Context, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i := range entries {
		if err := checkAudit(i, &entries[i]); err != nil {
			return fmt.Errorf("record audit: %w", err)
		}
	}
	now := s.now().UnixNano()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var b pgx.Batch
		for i := range entries {
			e := &entries[i]
			t := toNanos(e.Time)
			if t == 0 {
				t = now
			}
			b.Queue(`INSERT INTO audit_log (message_id, dest, source, user_id, email, time, sent, dropped) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				textSafe(e.MessageID), textSafe(e.Dest), textSafe(e.Source), textSafe(e.UserID), textSafe(strings.ToLower(e.Email)),
				t, auditKeys(e.Sent), auditKeys(e.Dropped))
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("record %d audit entries: %w", len(entries), err)
	}
	return nil
}

// QueryAudit implements AuditLog.
func (s *Postgres) QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	where, args := auditFilter(q)
	args = textArgs(pgDialect{}, args)
	rows, err := s.pool.Query(ctx, numbered(`SELECT `+auditColumns+` FROM audit_log`+where+` ORDER BY id DESC LIMIT ?`), append(args, clampLimit(q.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("query audit: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	return out, nil
}
