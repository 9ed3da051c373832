package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// RecordAudit implements AuditLog.
func (s *Postgres) RecordAudit(ctx context.Context, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := checkAudits(entries); err != nil {
		return err
	}
	now := s.now().UnixNano()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var b pgx.Batch
		for i := range entries {
			b.Queue(numbered(auditInsert), auditArgs(pgDialect{}, &entries[i], now)...)
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
