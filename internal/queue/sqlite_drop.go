package queue

import (
	"context"
	"fmt"
	"slices"
)

// Deleting undelivered jobs of one state; RETURNING feeds the counters and
// the inbox rows to release, as in finish.
const sqlDrop = `DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?1)) AND state = ?2
	RETURNING dest, batch`

// Drop deletes dest's pending and failed jobs that match selects. It first
// expands the inbox, so messages enqueued before the call are jobs it can
// see; messages enqueued while it runs may escape it (they arrived after
// the deletion was asked for). The deletion is fsynced: a dropped event
// must not come back after a crash.
func (s *SQLite) Drop(ctx context.Context, dest string, match func(Message) bool) (Dropped, error) {
	var out Dropped
	if s.isClosed() {
		return out, ErrClosed
	}
	if dest == "" || match == nil {
		return out, fmt.Errorf("drop: dest and match are required: %w", ErrInvalid)
	}
	for s.inboxLen() > 0 {
		before := s.inboxLen()
		if _, err := s.expand(ctx, dest, int(before)); err != nil {
			return out, fmt.Errorf("drop: expand inbox: %w", err)
		}
		if s.inboxLen() >= before {
			break
		}
	}
	byState := map[State][]int64{}
	for _, st := range []State{StatePending, StateFailed, StateExecuting} {
		var after int64
		for {
			jobs, err := s.List(ctx, ListFilter{Dest: dest, State: st, AfterID: after, Limit: 1000})
			if err != nil {
				return out, fmt.Errorf("drop: %w", err)
			}
			for _, j := range jobs {
				if match(j.Message) {
					byState[st] = append(byState[st], j.ID)
				}
			}
			if len(jobs) < 1000 {
				break
			}
			after = jobs[len(jobs)-1].ID
		}
	}
	out.InFlight = len(byState[StateExecuting])
	for _, st := range []State{StatePending, StateFailed} {
		per := destCounts{pending: -1}
		if st == StateFailed {
			per = destCounts{failed: -1}
		}
		for chunk := range slices.Chunk(byState[st], writerChunk) {
			err := s.submit(ctx, synced, len(chunk), func(w *wtx) error {
				rows, err := w.tx.QueryContext(w.ctx, sqlDrop, idsJSON(chunk), string(st))
				if err != nil {
					return err
				}
				var batches []int64
				n := 0
				for rows.Next() {
					var d string
					var b int64
					if err := rows.Scan(&d, &b); err != nil {
						rows.Close()
						return err
					}
					n++
					if b != 0 && !slices.Contains(batches, b) {
						batches = append(batches, b)
					}
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
				w.count(dest, destCounts{pending: per.pending * int64(n), failed: per.failed * int64(n)})
				out.Dropped += n
				return s.release(w, batches)
			})
			if err != nil {
				return out, fmt.Errorf("drop %d %s jobs: %w", len(chunk), st, err)
			}
		}
	}
	return out, nil
}
