package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// CreateDeletions implements DeletionStore (deletion.go).
func (s *Postgres) CreateDeletions(ctx context.Context, ds []Deletion) error {
	return createDeletions(ctx, s, ds, s.now())
}

// Deletion implements DeletionStore (deletion.go).
func (s *Postgres) Deletion(ctx context.Context, id int64) (Deletion, error) {
	return lookupDeletion(ctx, pgDialect{s.pool}, id)
}

// ListDeletions implements DeletionStore (deletion.go).
func (s *Postgres) ListDeletions(ctx context.Context, q DeletionQuery) ([]Deletion, error) {
	return listDeletions(ctx, pgDialect{s.pool}, q)
}

// DueDeletions implements DeletionStore (deletion.go).
func (s *Postgres) DueDeletions(ctx context.Context, now time.Time, limit int) ([]Deletion, error) {
	return dueDeletions(ctx, pgDialect{s.pool}, now, limit)
}

// UpdateDeletion implements DeletionStore (deletion.go).
func (s *Postgres) UpdateDeletion(ctx context.Context, d Deletion) error {
	return updateDeletion(ctx, s, d, s.now())
}

// ForgetUser implements DeletionStore (deletion.go).
func (s *Postgres) ForgetUser(ctx context.Context, subj DeletionSubject, messageIDs []string, match func(DeadLetter) bool) (Forgotten, error) {
	return forgetUser(ctx, s, subj, messageIDs, match)
}

// ClaimDeletions implements DeletionStore. SKIP LOCKED lets nodes claim at
// once without waiting for each other; a row another node has just
// claimed is re-checked under its lock and no longer qualifies.
func (s *Postgres) ClaimDeletions(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Deletion, error) {
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT id FROM deletion WHERE state IN ('pending', 'running')
				AND (CASE state WHEN 'running' THEN lease_until ELSE next_at END) <= $2
			ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
		UPDATE deletion d SET state = 'running', lease_until = $1 FROM due WHERE d.id = due.id
		RETURNING `+prefixColumns("d.", deletionColumns(pgDialect{})), now.Add(lease).UnixNano(), now.UnixNano(), deletionLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("claim deletions: %w", err)
	}
	out, err := scanAll(rows, scanDeletion)
	if err != nil {
		return nil, fmt.Errorf("claim deletions: %w", err)
	}
	slices.SortFunc(out, func(a, b Deletion) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// prefixColumns prefixes each column of a column list with p.
func prefixColumns(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

// ExtendDeletionLease implements DeletionStore (deletion.go).
func (s *Postgres) ExtendDeletionLease(ctx context.Context, id int64, until time.Time) error {
	return extendDeletionLease(ctx, s, id, until)
}
