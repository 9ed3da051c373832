package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// CreateDeletions implements DeletionStore.
func (s *SQLite) CreateDeletions(ctx context.Context, ds []Deletion) error {
	for i := range ds {
		if err := checkDeletion(i, &ds[i]); err != nil {
			return fmt.Errorf("create deletions: %w", err)
		}
	}
	now := s.now()
	ids := make([]int64, len(ds))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for i := range ds {
			d := &ds[i]
			dests, _ := json.Marshal(nonNil(d.Dests))
			steps, _ := json.Marshal(nonNilSteps(d.Steps))
			err := tx.QueryRowContext(ctx, `INSERT INTO deletion
				(user_id, email, phone, origin, local_only, dests, state, steps, next_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?) RETURNING id`,
				d.Subject.UserID, d.Subject.Email, d.Subject.Phone, d.Origin, d.LocalOnly, string(dests), string(steps),
				toNanos(d.NextAt), now.UnixNano(), now.UnixNano()).Scan(&ids[i])
			if err != nil {
				return fmt.Errorf("deletion %d: %w", i, err)
			}
			if d.Suppress != nil {
				sp := *d.Suppress
				sp.Regulation = DeletionRegulation(ids[i])
				if _, _, err := insertSuppression(ctx, sqliteDialect{}, sqliteTx{tx}, sp, now); err != nil {
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

// UpdateDeletion implements DeletionStore.
func (s *SQLite) UpdateDeletion(ctx context.Context, d Deletion) error {
	if !d.State.Valid() {
		return fmt.Errorf("update deletion %d: state %q: %w", d.ID, d.State, ErrInvalid)
	}
	subj := d.Subject
	if d.State == DeletionDone {
		subj = subj.Redacted()
	}
	steps, _ := json.Marshal(nonNilSteps(d.Steps))
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deletion SET user_id = ?, email = ?, phone = ?, state = ?, attempts = ?,
			last_error = ?, steps = ?, next_at = ?, updated_at = ?, lease_until = ? WHERE id = ?`,
			subj.UserID, subj.Email, subj.Phone, string(d.State), d.Attempts, truncate(d.LastError, MaxDetail),
			string(steps), toNanos(d.NextAt), s.now().UnixNano(), leaseOf(d), d.ID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("update deletion %d: %w", d.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("update deletion %d: %w", d.ID, ErrNotFound)
	}
	return nil
}

// ForgetUser implements DeletionStore.
func (s *SQLite) ForgetUser(ctx context.Context, subj DeletionSubject, messageIDs []string, match func(DeadLetter) bool) (Forgotten, error) {
	var out Forgotten
	if subj.Empty() && len(messageIDs) == 0 {
		return out, fmt.Errorf("forget user: no identifier and no messageId: %w", ErrInvalid)
	}
	ids, _ := json.Marshal(nonNil(messageIDs))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = Forgotten{}
		res, err := tx.ExecContext(ctx, `DELETE FROM delivery_log WHERE (? != '' AND user_id = ?) OR (? != '' AND email = ?)
			OR (? != '' AND phone = ?) OR message_id IN (SELECT value FROM json_each(?))`,
			subj.UserID, subj.UserID, subj.Email, strings.ToLower(subj.Email), subj.Phone, subj.Phone, string(ids))
		if err != nil {
			return fmt.Errorf("delivery log: %w", err)
		}
		if out.LogRows, err = res.RowsAffected(); err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, `UPDATE audit_log SET user_id = '', email = '' WHERE (? != '' AND user_id = ?) OR (? != '' AND email = ?)
			OR message_id IN (SELECT value FROM json_each(?))`,
			subj.UserID, subj.UserID, subj.Email, strings.ToLower(subj.Email), string(ids))
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		if out.AuditEntries, err = res.RowsAffected(); err != nil {
			return err
		}
		if match == nil {
			return nil
		}
		var gone []int64
		for after := int64(0); ; {
			rows, err := tx.QueryContext(ctx, `SELECT `+deadColumns+` FROM dead_letter WHERE id > ? ORDER BY id LIMIT 500`, after)
			if err != nil {
				return fmt.Errorf("dead letters: %w", err)
			}
			page, err := scanAll[DeadLetter](sqlRows{rows}, scanDead)
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
		arr, _ := json.Marshal(gone)
		res, err = tx.ExecContext(ctx, `DELETE FROM dead_letter WHERE id IN (SELECT value FROM json_each(?))`, string(arr))
		if err != nil {
			return fmt.Errorf("dead letters: %w", err)
		}
		out.DeadLetters, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return Forgotten{}, fmt.Errorf("forget user: %w", err)
	}
	return out, nil
}

// finishDeletion decodes the JSON and time columns both stores share.
func finishDeletion(d Deletion, state string, dests, steps []byte, nextAt, createdAt, updatedAt, leaseUntil int64) (Deletion, error) {
	d.State = DeletionState(state)
	if err := json.Unmarshal(dests, &d.Dests); err != nil {
		return Deletion{}, fmt.Errorf("deletion %d: dests: %w", d.ID, err)
	}
	if err := json.Unmarshal(steps, &d.Steps); err != nil {
		return Deletion{}, fmt.Errorf("deletion %d: steps: %w", d.ID, err)
	}
	if len(d.Dests) == 0 {
		d.Dests = nil
	}
	if len(d.Steps) == 0 {
		d.Steps = nil
	}
	d.NextAt, d.CreatedAt, d.UpdatedAt = fromNanos(nextAt), fromNanos(createdAt), fromNanos(updatedAt)
	d.LeaseUntil = fromNanos(leaseUntil)
	return d, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilSteps(s []DeletionStep) []DeletionStep {
	if s == nil {
		return []DeletionStep{}
	}
	return s
}

// ClaimDeletions implements DeletionStore. SQLite has one writer, so the
// select and the update in one transaction are atomic.
func (s *SQLite) ClaimDeletions(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Deletion, error) {
	var out []Deletion
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE deletion SET state = 'running', lease_until = ?
			WHERE id IN (SELECT id FROM deletion WHERE state IN ('pending', 'running')
				AND (CASE state WHEN 'running' THEN lease_until ELSE next_at END) <= ? ORDER BY id LIMIT ?)
			RETURNING `+deletionColumns(sqliteDialect{}), now.Add(lease).UnixNano(), now.UnixNano(), deletionLimit(limit))
		if err != nil {
			return err
		}
		out, err = scanAll[Deletion](sqlRows{rows}, scanDeletion)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deletions: %w", err)
	}
	slices.SortFunc(out, func(a, b Deletion) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// ExtendDeletionLease implements DeletionStore.
func (s *SQLite) ExtendDeletionLease(ctx context.Context, id int64, until time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE deletion SET lease_until = ? WHERE id = ? AND state = 'running'`, until.UnixNano(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("extend the lease of deletion %d: %w", id, err)
	}
	return nil
}
