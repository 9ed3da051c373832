package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateDeletions implements DeletionStore.
func (s *Postgres) CreateDeletions(ctx context.Context, ds []Deletion) error {
	for i := range ds {
		if err := checkDeletion(i, &ds[i]); err != nil {
			return fmt.Errorf("create deletions: %w", err)
		}
	}
	now := s.now()
	ids := make([]int64, len(ds))
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for i := range ds {
			d := &ds[i]
			dests, _ := json.Marshal(nonNil(d.Dests))
			steps, _ := json.Marshal(nonNilSteps(d.Steps))
			err := tx.QueryRow(ctx, `INSERT INTO deletion
				(user_id, email, phone, origin, local_only, dests, state, steps, next_at, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6::jsonb, 'pending', $7::jsonb, $8, $9, $9) RETURNING id`,
				d.Subject.UserID, d.Subject.Email, d.Subject.Phone, d.Origin, d.LocalOnly, string(dests), string(steps),
				toNanos(d.NextAt), now.UnixNano()).Scan(&ids[i])
			if err != nil {
				return fmt.Errorf("deletion %d: %w", i, err)
			}
			if d.Suppress != nil {
				sp := *d.Suppress
				sp.Regulation = DeletionRegulation(ids[i])
				if _, _, err := insertSuppression(ctx, pgDialect{}, pgTx{tx}, sp, now); err != nil {
					return fmt.Errorf("deletion %d: suppression: %w", i, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create %d deletions: %w", len(ds), err)
	}
	for i := range ds {
		ds[i].ID, ds[i].State, ds[i].CreatedAt, ds[i].UpdatedAt = ids[i], DeletionPending, now, now
	}
	return nil
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

// UpdateDeletion implements DeletionStore.
func (s *Postgres) UpdateDeletion(ctx context.Context, d Deletion) error {
	if !d.State.Valid() {
		return fmt.Errorf("update deletion %d: state %q: %w", d.ID, d.State, ErrInvalid)
	}
	subj := d.Subject
	if d.State == DeletionDone {
		subj = subj.Redacted()
	}
	steps, _ := json.Marshal(nonNilSteps(d.Steps))
	tag, err := s.pool.Exec(ctx, `UPDATE deletion SET user_id = $1, email = $2, phone = $3, state = $4, attempts = $5,
		last_error = $6, steps = $7::jsonb, next_at = $8, updated_at = $9, lease_until = $11 WHERE id = $10`,
		subj.UserID, subj.Email, subj.Phone, string(d.State), d.Attempts, truncate(d.LastError, MaxDetail),
		string(steps), toNanos(d.NextAt), s.now().UnixNano(), d.ID, leaseOf(d))
	if err != nil {
		return fmt.Errorf("update deletion %d: %w", d.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update deletion %d: %w", d.ID, ErrNotFound)
	}
	return nil
}

// ForgetUser implements DeletionStore.
func (s *Postgres) ForgetUser(ctx context.Context, subj DeletionSubject, messageIDs []string, match func(DeadLetter) bool) (Forgotten, error) {
	var out Forgotten
	if subj.Empty() && len(messageIDs) == 0 {
		return out, fmt.Errorf("forget user: no identifier and no messageId: %w", ErrInvalid)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = Forgotten{}
		tag, err := tx.Exec(ctx, `DELETE FROM delivery_log WHERE ($1 != '' AND user_id = $1) OR ($2 != '' AND email = $2)
			OR ($4 != '' AND phone = $4) OR message_id = ANY($3)`, textSafe(subj.UserID), textSafe(strings.ToLower(subj.Email)), nonNil(messageIDs), textSafe(subj.Phone))
		if err != nil {
			return fmt.Errorf("delivery log: %w", err)
		}
		out.LogRows = tag.RowsAffected()
		tag, err = tx.Exec(ctx, `UPDATE audit_log SET user_id = '', email = '' WHERE ($1 != '' AND user_id = $1) OR ($2 != '' AND email = $2)
			OR message_id = ANY($3)`, subj.UserID, strings.ToLower(subj.Email), nonNil(messageIDs))
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		out.AuditEntries = tag.RowsAffected()
		if match == nil {
			return nil
		}
		var gone []int64
		for after := int64(0); ; {
			rows, err := tx.Query(ctx, `SELECT `+deadColumns+` FROM dead_letter WHERE id > $1 ORDER BY id LIMIT 500`, after)
			if err != nil {
				return fmt.Errorf("dead letters: %w", err)
			}
			page, err := scanAll[DeadLetter](rows, scanDead)
			if err != nil {
				return fmt.Errorf("dead letters: %w", err)
			}
			for _, d := range page {
				if match(d) {
					gone = append(gone, d.ID)
				}
			}
			if len(page) < 500 {
				break
			}
			after = page[len(page)-1].ID
		}
		if len(gone) == 0 {
			return nil
		}
		tag, err = tx.Exec(ctx, `DELETE FROM dead_letter WHERE id = ANY($1)`, gone)
		if err != nil {
			return fmt.Errorf("dead letters: %w", err)
		}
		out.DeadLetters = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return Forgotten{}, fmt.Errorf("forget user: %w", err)
	}
	return out, nil
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

// ExtendDeletionLease implements DeletionStore.
func (s *Postgres) ExtendDeletionLease(ctx context.Context, id int64, until time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE deletion SET lease_until = $1 WHERE id = $2 AND state = 'running'`, until.UnixNano(), id); err != nil {
		return fmt.Errorf("extend the lease of deletion %d: %w", id, err)
	}
	return nil
}
