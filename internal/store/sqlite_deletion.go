package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// CreateDeletions implements DeletionStore (deletion.go).
func (s *SQLite) CreateDeletions(ctx context.Context, ds []Deletion) error {
	return createDeletions(ctx, s, ds, s.now())
}

// Deletion implements DeletionStore (deletion.go).
func (s *SQLite) Deletion(ctx context.Context, id int64) (Deletion, error) {
	return lookupDeletion(ctx, sqliteDialect{s.r}, id)
}

// ListDeletions implements DeletionStore (deletion.go).
func (s *SQLite) ListDeletions(ctx context.Context, q DeletionQuery) ([]Deletion, error) {
	return listDeletions(ctx, sqliteDialect{s.r}, q)
}

// DueDeletions implements DeletionStore (deletion.go).
func (s *SQLite) DueDeletions(ctx context.Context, now time.Time, limit int) ([]Deletion, error) {
	return dueDeletions(ctx, sqliteDialect{s.r}, now, limit)
}

// UpdateDeletion implements DeletionStore (deletion.go).
func (s *SQLite) UpdateDeletion(ctx context.Context, d Deletion) error {
	return updateDeletion(ctx, s, d, s.now())
}

// ForgetUser implements DeletionStore (deletion.go).
func (s *SQLite) ForgetUser(ctx context.Context, subj DeletionSubject, messageIDs []string, match func(DeadLetter) bool) (Forgotten, error) {
	return forgetUser(ctx, s, subj, messageIDs, match)
}

// ClaimDeletions implements DeletionStore. SQLite has one writer, so the
// select and the update in one transaction are atomic.
func (s *SQLite) ClaimDeletions(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Deletion, error) {
	var out []Deletion
	err := s.write(ctx, func(d dialect, w txer) error {
		rs, err := w.query(ctx, `UPDATE deletion SET state = 'running', lease_until = ?
			WHERE id IN (SELECT id FROM deletion WHERE state IN ('pending', 'running')
				AND (CASE state WHEN 'running' THEN lease_until ELSE next_at END) <= ? ORDER BY id LIMIT ?)
			RETURNING `+deletionColumns(d), now.Add(lease).UnixNano(), now.UnixNano(), deletionLimit(limit))
		if err != nil {
			return err
		}
		out, err = scanAll(rs, scanDeletion)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deletions: %w", err)
	}
	slices.SortFunc(out, func(a, b Deletion) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// ExtendDeletionLease implements DeletionStore (deletion.go).
func (s *SQLite) ExtendDeletionLease(ctx context.Context, id int64, until time.Time) error {
	return extendDeletionLease(ctx, s, id, until)
}
