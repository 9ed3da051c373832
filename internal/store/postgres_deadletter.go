package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

const pgDeadColumns = `id, message_id, source, dest, payload, error, status, code, pointer, attempts, created_at, replayed_at`

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

// ListDeadLetters implements DeadLetterReader.
func (s *Postgres) ListDeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if !q.IncludeReplayed {
		where = append(where, "replayed_at IS NULL")
	}
	if q.Dest != "" {
		where = append(where, "dest = "+arg(q.Dest))
	}
	if q.Source != "" {
		where = append(where, "source = "+arg(q.Source))
	}
	if q.BeforeID > 0 {
		where = append(where, "id < "+arg(q.BeforeID))
	}
	query := `SELECT ` + pgDeadColumns + ` FROM dead_letter`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT ` + arg(clampLimit(q.Limit))
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	out, err := pgScanDeadRows(rows)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

func pgScanDeadRows(rows pgx.Rows) ([]DeadLetter, error) {
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		d, err := pgScanDead(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func pgScanDead(r pgx.Row) (DeadLetter, error) {
	var (
		d        DeadLetter
		created  int64
		replayed *int64
	)
	err := r.Scan(&d.ID, &d.MessageID, &d.Source, &d.Dest, &d.Payload, &d.Error, &d.Status, &d.Code, &d.Pointer,
		&d.Attempts, &created, &replayed)
	if err != nil {
		return DeadLetter{}, err
	}
	d.CreatedAt = fromNanos(created)
	d.ReplayedAt = pgNullNanos(replayed)
	return d, nil
}

// LookupDeadLetter implements DeadLetterReader.
func (s *Postgres) LookupDeadLetter(ctx context.Context, id int64) (DeadLetter, error) {
	d, err := pgScanDead(s.pool.QueryRow(ctx, `SELECT `+pgDeadColumns+` FROM dead_letter WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("look up dead letter %d: %w", id, err)
	}
	return d, nil
}

// CountDeadLetters implements DeadLetterReader.
func (s *Postgres) CountDeadLetters(ctx context.Context, dest string) (int64, error) {
	query, args := `SELECT COUNT(*) FROM dead_letter WHERE replayed_at IS NULL`, []any(nil)
	if dest != "" {
		query, args = query+` AND dest = $1`, []any{dest}
	}
	var n int64
	if err := s.pool.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
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
RETURNING `+qualify(pgDeadColumns), args...)
		if err != nil {
			return err
		}
		if taken, err = pgScanDeadRows(rows); err != nil {
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
