package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Stats reports the queue's counts and the age of its oldest unfinished job.
//
// The counts come from counters the writer keeps in memory (loaded with
// one indexed GROUP BY at open, then adjusted by every committed change),
// so they cost nothing however deep the queue; they are exact because this
// process is the database's only writer. OldestAge is the age, by
// ReceivedAt, of the first job in queue order (smallest unfinished id) —
// one index seek per destination with unfinished jobs.
func (s *SQLite) Stats(ctx context.Context) (Stats, error) {
	if s.isClosed() {
		return Stats{}, ErrClosed
	}
	st := Stats{ByDest: map[string]int64{}}
	var open []string
	s.statsMu.Lock()
	for dest, c := range s.counts {
		depth := c.pending + c.executing + c.failed
		st.Pending += c.pending
		st.Executing += c.executing
		st.Failed += c.failed
		st.Aborted += c.aborted
		st.Depth += depth
		if depth > 0 {
			st.ByDest[dest] = depth
			open = append(open, dest)
		}
	}
	s.statsMu.Unlock()

	var oldest int64
	for _, dest := range open {
		var recv int64
		err := s.rdb.QueryRowContext(ctx, sqlOldest, dest).Scan(&recv)
		if errors.Is(err, sql.ErrNoRows) {
			continue // finished since the counters were read
		}
		if err != nil {
			return Stats{}, fmt.Errorf("queue stats: oldest job of %q: %w", dest, err)
		}
		if oldest == 0 || recv < oldest {
			oldest = recv
		}
	}
	if oldest != 0 {
		st.OldestAge = max(s.opts.Now().Sub(time.Unix(0, oldest)), 0)
	}
	return st, nil
}

// Depth is the number of unfinished jobs (Stats.Depth) from the in-memory
// counters: free to call on every request, as the gateway's back-pressure
// check does.
func (s *SQLite) Depth(ctx context.Context) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	var n int64
	s.statsMu.Lock()
	for _, c := range s.counts {
		n += c.pending + c.executing + c.failed
	}
	s.statsMu.Unlock()
	return n, nil
}

func (s *SQLite) isClosed() bool {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.closed
}

// sqlOldest finds a destination's first job in queue order (one seek in
// jobs_open).
const sqlOldest = `SELECT received_at FROM jobs WHERE dest = ? AND ` + openStates + ` ORDER BY id LIMIT 1`

const jobColumns = `jobs.id, source, dest, key, message_id, payload, received_at, state, attempts,
	retry_at, lease_until, last_error, updated_at`

// jobsWithPayloads is the FROM clause that reads jobColumns.
const jobsWithPayloads = `jobs JOIN payloads ON payloads.id = jobs.id`

// Get returns one job with its state, or ErrNotFound (succeeded jobs are
// deleted, so they are not found either).
func (s *SQLite) Get(ctx context.Context, id int64) (JobInfo, error) {
	if s.isClosed() {
		return JobInfo{}, ErrClosed
	}
	row := s.rdb.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM `+jobsWithPayloads+` WHERE jobs.id = ?`, id)
	j, err := scanInfo(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return JobInfo{}, fmt.Errorf("get job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return JobInfo{}, fmt.Errorf("get job %d: %w", id, err)
	}
	return j, nil
}

// ListFilter selects jobs for List. Zero fields do not filter.
type ListFilter struct {
	Dest    string
	State   State // pending, executing, failed or aborted
	AfterID int64 // keyset pagination: ids greater than this
	Limit   int   // default 100, at most 1,000
}

// List returns jobs in id order, for the console's queue inspector.
func (s *SQLite) List(ctx context.Context, f ListFilter) ([]JobInfo, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	var where []string
	var args []any
	switch f.State {
	case "":
	case StatePending, StateExecuting, StateFailed:
		// Repeat the partial index's term so the index applies.
		where = append(where, openStates, "state = ?")
		args = append(args, string(f.State))
	case StateAborted:
		where = append(where, "state = 'aborted'")
	default:
		return nil, fmt.Errorf("list jobs: state %q is not pending, executing, failed or aborted: %w", f.State, ErrInvalid)
	}
	if f.Dest != "" {
		where = append(where, "dest = ?")
		args = append(args, f.Dest)
	}
	where = append(where, "jobs.id > ?")
	args = append(args, f.AfterID, f.Limit)
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT `+jobColumns+` FROM `+jobsWithPayloads+` WHERE `+strings.Join(where, " AND ")+` ORDER BY jobs.id LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []JobInfo
	for rows.Next() {
		j, err := scanInfo(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

func scanInfo(scan func(...any) error) (JobInfo, error) {
	var j JobInfo
	var state string
	var recv, retryAt, leaseUntil, updated int64
	err := scan(&j.ID, &j.Source, &j.Dest, &j.Key, &j.MessageID, &j.Payload, &recv, &state, &j.Attempts,
		&retryAt, &leaseUntil, &j.LastError, &updated)
	if err != nil {
		return JobInfo{}, err
	}
	j.State = State(state)
	j.ReceivedAt = nanoTime(recv)
	j.RetryAt = nanoTime(retryAt)
	j.LeaseUntil = nanoTime(leaseUntil)
	j.UpdatedAt = nanoTime(updated)
	return j, nil
}

// nanoTime converts a stored Unix-nanosecond time; 0 is unset.
func nanoTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
