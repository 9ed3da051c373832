package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// AddDeadLetters implements DeadLetterWriter.
func (s *Postgres) AddDeadLetters(ctx context.Context, dls []DeadLetter) error {
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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var b pgx.Batch
		for i := range dls {
			d := &dls[i]
			t := toNanos(d.CreatedAt)
			if t == 0 {
				t = now
			}
			b.Queue(`
INSERT INTO dead_letter AS x (message_id, source, dest, payload, error, status, code, pointer, attempts, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (message_id, dest) WHERE replayed_at IS NULL DO UPDATE SET
	source = excluded.source, payload = excluded.payload, error = excluded.error, status = excluded.status,
	code = excluded.code, pointer = excluded.pointer, attempts = excluded.attempts
RETURNING id`, textSafe(d.MessageID), textSafe(d.Source), textSafe(d.Dest), d.Payload, textSafe(truncate(d.Error, MaxDeadError)),
				d.Status, textSafe(d.Code), textSafe(d.Pointer), d.Attempts, t)
		}
		res := tx.SendBatch(ctx, &b)
		for i := range dls {
			if err := res.QueryRow().Scan(&ids[i]); err != nil {
				res.Close()
				return fmt.Errorf("dead letter %d (messageId %q): %w", i, dls[i].MessageID, err)
			}
		}
		return res.Close()
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
func (s *Postgres) ListDeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error) {
	return listDeadLetters(ctx, pgDialect{s.pool}, q)
}

// LookupDeadLetter implements DeadLetterReader (dialect.go).
func (s *Postgres) LookupDeadLetter(ctx context.Context, id int64) (DeadLetter, error) {
	return lookupDeadLetter(ctx, pgDialect{s.pool}, id)
}

// CountDeadLetters implements DeadLetterReader (dialect.go).
func (s *Postgres) CountDeadLetters(ctx context.Context, dest string) (int64, error) {
	return countDeadLetters(ctx, pgDialect{s.pool}, dest)
}

// TakeForReplay implements Replayer. Rows are taken with FOR UPDATE SKIP
// LOCKED, so concurrent callers (several nodes' consoles, relay replay)
// take disjoint dead letters and never wait on each other.
func (s *Postgres) TakeForReplay(ctx context.Context, sel ReplaySelector, enqueue func(context.Context, []DeadLetter) error) (int, error) {
	switch {
	case enqueue == nil:
		return 0, fmt.Errorf("take for replay: enqueue func is nil: %w", ErrInvalid)
	case sel.ID == 0 && sel.Dest == "":
		return 0, fmt.Errorf("take for replay: select a dead letter id or a destination: %w", ErrInvalid)
	case sel.ID < 0 || sel.Limit < 0:
		return 0, fmt.Errorf("take for replay: negative id or limit: %w", ErrInvalid)
	}
	now := s.now()
	args := []any{now.UnixNano()}
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	where := []string{"replayed_at IS NULL"}
	if sel.ID != 0 {
		where = append(where, "id = "+arg(sel.ID))
	}
	if sel.Dest != "" {
		where = append(where, "dest = "+arg(sel.Dest))
	}
	if !sel.Since.IsZero() {
		where = append(where, "created_at >= "+arg(sel.Since.UnixNano()))
	}
	inner := `SELECT id FROM dead_letter WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id`
	if sel.Limit > 0 {
		inner += ` LIMIT ` + strconv.Itoa(sel.Limit)
	}
	inner += ` FOR UPDATE SKIP LOCKED`
	var taken []DeadLetter
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The selection is a CTE so it runs once (LIMIT inside IN (…) may
		// be re-evaluated by the planner and take more rows).
		rows, err := tx.Query(ctx, `WITH sel AS (`+inner+`)
UPDATE dead_letter SET replayed_at = $1 FROM sel WHERE dead_letter.id = sel.id AND dead_letter.replayed_at IS NULL
RETURNING `+qualify(deadColumns), args...)
		if err != nil {
			return err
		}
		if taken, err = scanAll[DeadLetter](rows, scanDead); err != nil {
			return err
		}
		if len(taken) == 0 {
			if sel.ID == 0 {
				return nil
			}
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM dead_letter WHERE id = $1)`, sel.ID).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return fmt.Errorf("dead letter %d: %w", sel.ID, ErrNotFound)
			}
			return nil // already replayed, or being replayed by another caller
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

// qualify prefixes each column of a list with the dead_letter table.
func qualify(cols string) string {
	parts := strings.Split(cols, ", ")
	for i, p := range parts {
		parts[i] = "dead_letter." + p
	}
	return strings.Join(parts, ", ")
}
