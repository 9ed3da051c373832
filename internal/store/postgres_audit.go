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

// QueryAudit implements AuditLog (audit.go).
func (s *Postgres) QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	return queryAudit(ctx, pgDialect{s.pool}, q)
}
