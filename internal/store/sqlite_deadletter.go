package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// AddDeadLetters implements DeadLetterWriter.
func (s *SQLite) AddDeadLetters(ctx context.Context, dls []DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	for i := range dls {
		if err := checkDeadLetter(i, &dls[i]); err != nil {
			return fmt.Errorf("add dead letters: %w", err)
		}
	}
	now := s.now().UnixNano()
	ids := make([]int64, len(dls))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
INSERT INTO dead_letter (message_id, source, dest, payload, error, status, code, pointer, attempts, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (message_id, dest) WHERE replayed_at IS NULL DO UPDATE SET
	source = excluded.source, payload = excluded.payload, error = excluded.error, status = excluded.status,
	code = excluded.code, pointer = excluded.pointer, attempts = excluded.attempts
RETURNING id`)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		defer stmt.Close()
		for i := range dls {
			d := &dls[i]
			t := toNanos(d.CreatedAt)
			if t == 0 {
				t = now
			}
			err := stmt.QueryRowContext(ctx, d.MessageID, d.Source, d.Dest, d.Payload, truncate(d.Error, MaxDeadError),
				d.Status, d.Code, d.Pointer, d.Attempts, t).Scan(&ids[i])
			if err != nil {
				return fmt.Errorf("dead letter %d (messageId %q): %w", i, d.MessageID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add %d dead letters: %w", len(dls), err)
	}
	for i := range dls {
		dls[i].ID = ids[i]
	}
	return nil
}

// ListDeadLetters implements DeadLetterReader (dialect.go).
func (s *SQLite) ListDeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error) {
	return listDeadLetters(ctx, sqliteDialect{s.r}, q)
}

// LookupDeadLetter implements DeadLetterReader (dialect.go).
func (s *SQLite) LookupDeadLetter(ctx context.Context, id int64) (DeadLetter, error) {
	return lookupDeadLetter(ctx, sqliteDialect{s.r}, id)
}

// CountDeadLetters implements DeadLetterReader (dialect.go).
func (s *SQLite) CountDeadLetters(ctx context.Context, dest string) (int64, error) {
	return countDeadLetters(ctx, sqliteDialect{s.r}, dest)
}

// TakeForReplay implements Replayer.
func (s *SQLite) TakeForReplay(ctx context.Context, sel ReplaySelector, enqueue func(context.Context, []DeadLetter) error) (int, error) {
	switch {
	case enqueue == nil:
		return 0, fmt.Errorf("take for replay: enqueue func is nil: %w", ErrInvalid)
	case sel.ID == 0 && sel.Dest == "":
		return 0, fmt.Errorf("take for replay: select a dead letter id or a destination: %w", ErrInvalid)
	case sel.ID < 0 || sel.Limit < 0:
		return 0, fmt.Errorf("take for replay: negative id or limit: %w", ErrInvalid)
	}
	where, args := []string{"replayed_at IS NULL"}, []any{}
	if sel.ID != 0 {
		where, args = append(where, "id = ?"), append(args, sel.ID)
	}
	if sel.Dest != "" {
		where, args = append(where, "dest = ?"), append(args, sel.Dest)
	}
	if !sel.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, sel.Since.UnixNano())
	}
	inner := `SELECT id FROM dead_letter WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id`
	if sel.Limit > 0 {
		inner += ` LIMIT ` + strconv.Itoa(sel.Limit)
	}
	now := s.now()
	var taken []DeadLetter
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE dead_letter SET replayed_at = ? WHERE id IN (`+inner+`) RETURNING `+deadColumns,
			append([]any{now.UnixNano()}, args...)...)
		if err != nil {
			return err
		}
		if taken, err = scanAll[DeadLetter](sqlRows{rows}, scanDead); err != nil {
			return err
		}
		if len(taken) == 0 {
			if sel.ID == 0 {
				return nil
			}
			var exists bool
			err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM dead_letter WHERE id = ?)`, sel.ID).Scan(&exists)
			if err != nil {
				return err
			}
			if !exists {
				return fmt.Errorf("dead letter %d: %w", sel.ID, ErrNotFound)
			}
			return nil // already replayed
		}
		slices.SortFunc(taken, func(a, b DeadLetter) int { return cmp.Compare(a.ID, b.ID) })
		entries := make([]LogEntry, len(taken))
		for i, d := range taken {
			entries[i] = LogEntry{MessageID: d.MessageID, Source: d.Source, Dest: d.Dest, Status: StatusReplayed,
				Detail: "replayed from dead letter " + strconv.FormatInt(d.ID, 10), Time: now}
		}
		if err := s.recordTx(ctx, tx, entries); err != nil {
			return fmt.Errorf("mark log replayed: %w", err)
		}
		if err := enqueue(ctx, taken); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("take dead letters for replay: %w", err)
	}
	return len(taken), nil
}
