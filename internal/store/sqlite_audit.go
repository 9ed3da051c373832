package store

import (
	"context"
	"database/sql"
	"fmt"
)

// RecordAudit implements AuditLog.
func (s *SQLite) RecordAudit(ctx context.Context, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := checkAudits(entries); err != nil {
		return err
	}
	now := s.now().UnixNano()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, auditInsert)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		defer stmt.Close()
		for i := range entries {
			if _, err := stmt.ExecContext(ctx, auditArgs(sqliteDialect{}, &entries[i], now)...); err != nil {
				return fmt.Errorf("entry %d (messageId %q): %w", i, entries[i].MessageID, err)
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
