package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// RecordAudit implements AuditLog.
func (s *SQLite) RecordAudit(ctx context.Context, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i := range entries {
		if err := checkAudit(i, &entries[i]); err != nil {
			return fmt.Errorf("record audit: %w", err)
		}
	}
	now := s.now().UnixNano()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_log (message_id, dest, source, user_id, email, time, sent, dropped) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		defer stmt.Close()
		for i := range entries {
			e := &entries[i]
			t := toNanos(e.Time)
			if t == 0 {
				t = now
			}
			if _, err := stmt.ExecContext(ctx, e.MessageID, e.Dest, e.Source, e.UserID, strings.ToLower(e.Email), t, auditKeys(e.Sent), auditKeys(e.Dropped)); err != nil {
				return fmt.Errorf("entry %d (messageId %q): %w", i, e.MessageID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d audit entries: %w", len(entries), err)
	}
	return nil
}

// QueryAudit implements AuditLog (audit.go).
func (s *SQLite) QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	return queryAudit(ctx, sqliteDialect{s.r}, q)
}
