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
			// No job rows: the oldest is in the inbox (ids are in queue
			// order there too), or it finished since the counters were read.
			err = s.rdb.QueryRowContext(ctx, sqlInboxOldestOf, dest).Scan(&recv)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
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

// sqlInboxOldestOf finds a destination's first inbox row (one seek in
// inbox_dest). Its received_at is the oldest of its messages.
const sqlInboxOldestOf = `SELECT received_at FROM inbox WHERE dest = ? ORDER BY id LIMIT 1`

const jobColumns = `jobs.id, source, dest, key, message_id, payload, received_at, state, attempts,
	retry_at, lease_until, last_error, updated_at, batch`

// jobsWithPayloads is the FROM clause that reads jobColumns. A job whose
// batch is not 0 has no payloads row: its payload is in that inbox row
// (withPayloads reads it).
const jobsWithPayloads = `jobs LEFT JOIN payloads ON payloads.id = jobs.id`

// Get returns one job with its state, or ErrNotFound (succeeded jobs are
// deleted, so they are not found either).
func (s *SQLite) Get(ctx context.Context, id int64) (JobInfo, error) {
	if s.isClosed() {
		return JobInfo{}, ErrClosed
	}
	tx, err := s.rdb.BeginTx(ctx, nil) // one snapshot: the job may be expanded meanwhile
	if err != nil {
		return JobInfo{}, fmt.Errorf("get job %d: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	row := tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM `+jobsWithPayloads+` WHERE jobs.id = ?`, id)
	j, batch, err := scanInfo(row.Scan)
	if err == nil {
		err = withPayloads(ctx, tx, []JobInfo{j}, []int64{batch})
	}
	if errors.Is(err, sql.ErrNoRows) {
		var in []JobInfo
		in, err = inboxJobs(ctx, tx, ListFilter{AfterID: id - 1, Limit: 1})
		if err == nil && (len(in) == 0 || in[0].ID != id) {
			return JobInfo{}, fmt.Errorf("get job %d: %w", id, ErrNotFound)
		}
		if err == nil {
			j = in[0]
		}
	}
	if err != nil {
		return JobInfo{}, fmt.Errorf("get job %d: %w", id, err)
	}
	return j, nil
}

// ListFilter selects jobs for List. Zero fields do not filter.
type ListFilter struct {
	Dest    string
	State   State // pending, executing or failed
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
	default:
		return nil, fmt.Errorf("list jobs: state %q is not pending, executing or failed: %w", f.State, ErrInvalid)
	}
	if f.Dest != "" {
		where = append(where, "dest = ?")
		args = append(args, f.Dest)
	}
	where = append(where, "jobs.id > ?")
	args = append(args, f.AfterID, f.Limit)
	// One snapshot for both tables, so that a message being expanded
	// meanwhile is listed once.
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	out, err := listJobRows(ctx, tx, where, args)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	// Inbox messages come after every job row (sqlite_inbox.go).
	if len(out) < f.Limit && (f.State == "" || f.State == StatePending) {
		f.Limit -= len(out)
		in, err := inboxJobs(ctx, tx, f)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, in...)
	}
	return out, nil
}

func listJobRows(ctx context.Context, tx *sql.Tx, where []string, args []any) ([]JobInfo, error) {
	rows, err := tx.QueryContext(ctx,
		`SELECT `+jobColumns+` FROM `+jobsWithPayloads+` WHERE `+strings.Join(where, " AND ")+` ORDER BY jobs.id LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []JobInfo
	var batches []int64
	for rows.Next() {
		j, batch, err := scanInfo(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
		batches = append(batches, batch)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, withPayloads(ctx, tx, out, batches)
}

// withPayloads fills in the payloads of jobs whose batch is not 0 from
// their inbox rows.
func withPayloads(ctx context.Context, tx *sql.Tx, jobs []JobInfo, batches []int64) error {
	var refs []payloadRef
	for i := range jobs {
		if batches[i] != 0 {
			refs = append(refs, payloadRef{id: jobs[i].ID, batch: batches[i], dst: &jobs[i].Payload})
		}
	}
	return resolvePayloads(ctx, tx, refs)
}

// inboxJobs lists up to f.Limit inbox messages of f.Dest (any if empty)
// with ids after f.AfterID, as pending jobs.
func inboxJobs(ctx context.Context, tx *sql.Tx, f ListFilter) ([]JobInfo, error) {
	// From the row that holds AfterID+1 on.
	rows, err := tx.QueryContext(ctx, `SELECT id, dest, n, enqueued_at, data FROM inbox
		WHERE id >= coalesce((SELECT max(id) FROM inbox WHERE id <= ?1 + 1), 0) AND (?2 = '' OR dest = ?2)
			AND id >= (SELECT coalesce(max(v), 0) FROM queue_meta WHERE k = 'expanded')
		ORDER BY id`, f.AfterID, f.Dest)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []JobInfo
	for len(out) < f.Limit && rows.Next() {
		var first, enqueuedAt int64
		var dest string
		var n int
		var data []byte
		if err := rows.Scan(&first, &dest, &n, &enqueuedAt, &data); err != nil {
			return nil, err
		}
		msgs, err := decodeInbox(data, n)
		if err != nil {
			return nil, fmt.Errorf("inbox row %d: %w", first, err)
		}
		for i, m := range msgs {
			id := first + int64(i)
			if id <= f.AfterID || len(out) == f.Limit {
				continue
			}
			recv := m.ReceivedAt
			if recv == 0 {
				recv = enqueuedAt
			}
			out = append(out, JobInfo{
				Job: Job{ID: id, Message: Message{Source: m.Source, Dest: dest, Key: m.Key, MessageID: m.MessageID,
					Payload: m.Payload, ReceivedAt: nanoTime(recv)}},
				State: StatePending, UpdatedAt: nanoTime(enqueuedAt),
			})
		}
	}
	return out, rows.Err()
}

func scanInfo(scan func(...any) error) (j JobInfo, batch int64, err error) {
	var state string
	var recv, retryAt, leaseUntil, updated int64
	err = scan(&j.ID, &j.Source, &j.Dest, &j.Key, &j.MessageID, &j.Payload, &recv, &state, &j.Attempts,
		&retryAt, &leaseUntil, &j.LastError, &updated, &batch)
	if err != nil {
		return JobInfo{}, 0, err
	}
	j.State = State(state)
	j.ReceivedAt = nanoTime(recv)
	j.RetryAt = nanoTime(retryAt)
	j.LeaseUntil = nanoTime(leaseUntil)
	j.UpdatedAt = nanoTime(updated)
	return j, batch, nil
}

// nanoTime converts a stored Unix-nanosecond time; 0 is unset.
func nanoTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
