package queue

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The queue's statements: the writer's (writerQueries) and the readers'
// (sqlScan, sqlPayloads). Ids travel as one JSON array bound to a single
// parameter (json_each), so a batch of any size is one statement whose
// plan is a rowid lookup per id.
const (
	sqlInsert    = `INSERT INTO jobs (id, source, dest, key, message_id, received_at, state, updated_at, batch) VALUES `
	sqlInsertRow = `(?, ?, ?, ?, ?, ?, 'pending', ?, ?)`
	// Claim's scan over the covering partial index jobs_open.
	sqlScan = `SELECT id, key, state, retry_at, lease_until FROM jobs
		WHERE dest = ? AND ` + openStates + ` AND id > ? ORDER BY id LIMIT ?`
	// A reclaimed expired lease counts as an attempt (see Job.Attempts).
	sqlClaim = `UPDATE jobs SET state = 'executing', lease_until = ?1, updated_at = ?2, retry_at = 0,
		attempts = attempts + (state = 'executing'),
		last_error = CASE WHEN state = 'executing' THEN 'lease expired' ELSE last_error END
		WHERE id IN (SELECT value FROM json_each(?3))
		RETURNING id, source, dest, key, message_id, received_at, attempts, last_error, batch`
	sqlRecheck = `SELECT id, state, retry_at, lease_until FROM jobs
		WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id`
	// Claim reads the payloads after its transaction, on a reader (see
	// Claim). Leased rows' payloads do not change.
	sqlPayloads = `SELECT id, payload FROM payloads WHERE id IN (SELECT value FROM json_each(?1))`
	sqlSucceed  = `DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'executing'
		RETURNING dest, batch`
	// A retried job still reads its payload from its batch, so it returns
	// batch 0: nothing for finish to release.
	sqlRetry = `UPDATE jobs SET state = 'failed', retry_at = ?2, attempts = attempts + 1, last_error = ?3,
		lease_until = 0, updated_at = ?4
		WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'executing' RETURNING dest, 0`
	// An aborted job is forgotten like a delivered one: its dead letter is
	// in the store.
	sqlAbort       = sqlSucceed
	sqlInboxInsert = `INSERT INTO inbox (id, dest, n, enqueued_at, received_at, data) VALUES (?, ?, ?, ?, ?, ?)`
	// The oldest inbox row not expanded yet.
	sqlInboxOldest = `SELECT id, dest, n, enqueued_at, data FROM inbox
		WHERE id >= (SELECT coalesce(max(v), 0) FROM queue_meta WHERE k = 'expanded') ORDER BY id LIMIT 1`
	sqlSetExpanded = `INSERT INTO queue_meta (k, v) VALUES ('expanded', ?1) ON CONFLICT (k) DO UPDATE SET v = excluded.v`
	// An expanded row goes once no job reads its payload from it any more
	// (its jobs have ids id … id+n-1: a range seek).
	sqlRelease = `DELETE FROM inbox WHERE id = ?1 AND NOT EXISTS (
		SELECT 1 FROM jobs WHERE jobs.id >= ?1 AND jobs.id < ?1 + inbox.n AND jobs.batch = ?1)`
)

// scanChunk is how many index entries Claim reads per query.
const scanChunk = 512

// Enqueue appends msgs as pending jobs and returns once they are committed
// with fsync, sharing the transaction with concurrent callers. The
// messages of one call are committed atomically and, per destination, get
// increasing ids in slice order. A zero ReceivedAt is set to the commit
// time. If ctx ends before Enqueue returns, the messages may or may not
// have been stored. They are written to the inbox (sqlite_inbox.go), one
// row per destination, encoded here rather than in the writer.
func (s *SQLite) Enqueue(ctx context.Context, msgs []Message) error {
	for i, m := range msgs {
		if m.Dest == "" {
			return fmt.Errorf("enqueue: message %d: empty Dest: %w", i, ErrInvalid)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	sc, _ := s.scratch.Get().(*inboxScratch)
	if sc == nil {
		sc = new(inboxScratch)
	}
	groups := inboxGroups(sc, msgs, s.blobs.Get)
	sc.trim()
	s.scratch.Put(sc)
	err := s.submitRequest(ctx, &request{durable: true, rows: len(msgs),
		run: func(w *wtx) error { return s.writeInbox(w, groups) },
		release: func() {
			for _, g := range groups {
				s.blobs.Put(g.data) // SQLite copied it when it was bound
			}
		}})
	if err != nil {
		return fmt.Errorf("enqueue %d messages: %w", len(msgs), err)
	}
	return nil
}

// inboxGroup is one inbox row to write: the messages of one Enqueue call
// for one destination.
type inboxGroup struct {
	dest   string
	n      int
	oldest int64 // smallest ReceivedAt set (Unix ns); 0 if none is
	unset  bool  // some message has no ReceivedAt (the commit time is used)
	data   []byte
}

// inboxGroups splits msgs by destination, keeping their order, and
// encodes each group.
func inboxGroups(sc *inboxScratch, msgs []Message, blob func() []byte) []inboxGroup {
	if !slices.ContainsFunc(msgs, func(m Message) bool { return m.Dest != msgs[0].Dest }) {
		return []inboxGroup{newInboxGroup(sc, msgs, blob())} // the usual case
	}
	var dests []string
	byDest := map[string][]Message{}
	for _, m := range msgs {
		if _, seen := byDest[m.Dest]; !seen {
			dests = append(dests, m.Dest)
		}
		byDest[m.Dest] = append(byDest[m.Dest], m)
	}
	groups := make([]inboxGroup, len(dests))
	for i, d := range dests {
		groups[i] = newInboxGroup(sc, byDest[d], blob())
	}
	return groups
}

// newInboxGroup encodes msgs, which share a destination, into blob's
// capacity when it suffices.
func newInboxGroup(sc *inboxScratch, msgs []Message, blob []byte) inboxGroup {
	g := inboxGroup{dest: msgs[0].Dest, n: len(msgs), data: sc.encode(msgs, blob)}
	for _, m := range msgs {
		if m.ReceivedAt.IsZero() {
			g.unset = true
		} else if r := m.ReceivedAt.UnixNano(); g.oldest == 0 || r < g.oldest {
			g.oldest = r
		}
	}
	return g
}

// writeInbox inserts groups as inbox rows, handing out their ids.
func (s *SQLite) writeInbox(w *wtx, groups []inboxGroup) error {
	st, err := s.txStmt(w, sqlInboxInsert)
	if err != nil {
		return err
	}
	now := w.now.UnixNano()
	for _, g := range groups {
		oldest := g.oldest
		if g.unset && (oldest == 0 || now < oldest) {
			oldest = now
		}
		id := s.lastID + 1
		if _, err := st.ExecContext(w.ctx, id, g.dest, g.n, now, oldest, g.data); err != nil {
			return fmt.Errorf("insert inbox row: %w", err)
		}
		s.lastID += int64(g.n)
		w.count(g.dest, destCounts{pending: int64(g.n), inbox: int64(g.n)})
	}
	return nil
}

// insertChunk is the most rows one INSERT statement carries: multi-row
// inserts cut the per-statement overhead of database/sql and the driver
// (7 parameters a row, well under SQLite's 32,766 limit). Chunks are
// powers of two (64, 32, …, 1), so seven statements cover every size.
const insertChunk = 64

// insertSQL returns the INSERT statement of prefix for n rows of row.
func insertSQL(prefix, row string, n int) string {
	var b strings.Builder
	b.WriteString(prefix)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// writerQueries are every statement the writer runs, prepared at open:
// preparing later, inside a transaction, would need a second connection
// from wdb, which has only the one the transaction holds.
func writerQueries() []string {
	q := []string{sqlClaim, sqlRecheck, sqlSucceed, sqlRetry,
		sqlInboxInsert, sqlInboxOldest, sqlSetExpanded, sqlRelease}
	for n := insertChunk; n >= 1; n /= 2 {
		q = append(q, insertSQL(sqlInsert, sqlInsertRow, n))
	}
	return q
}

// expandOne turns the oldest inbox row not expanded yet into pending jobs
// with the ids the row was given, which read their payloads from it; the
// row stays until they are all finished (release). It returns the row's
// destination and message count; n is 0 when there is nothing left to
// expand. The messages were counted as pending when they were enqueued.
func (s *SQLite) expandOne(w *wtx) (dest string, n int, err error) {
	st, err := s.txStmt(w, sqlInboxOldest)
	if err != nil {
		return "", 0, err
	}
	var id, enqueuedAt int64
	var data []byte
	err = st.QueryRowContext(w.ctx).Scan(&id, &dest, &n, &enqueuedAt, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("read inbox: %w", err)
	}
	msgs, err := decodeInbox(data, n)
	if err != nil {
		// Only damage to the file can do this; the row stays, so nothing
		// is lost, and every claim reports it until someone looks.
		return "", 0, fmt.Errorf("expand inbox row %d (%s): %w", id, dest, err)
	}
	if err := s.insertJobs(w, id, dest, enqueuedAt, msgs); err != nil {
		return "", 0, err
	}
	mark, err := s.txStmt(w, sqlSetExpanded)
	if err != nil {
		return "", 0, err
	}
	if _, err := mark.ExecContext(w.ctx, id+int64(n)); err != nil {
		return "", 0, fmt.Errorf("mark inbox row %d expanded: %w", id, err)
	}
	w.count(dest, destCounts{inbox: -int64(n)})
	return dest, n, nil
}

// insertJobs writes msgs as pending jobs of dest with the ids first,
// first+1, …, whose payloads stay in the inbox row first; a message
// without ReceivedAt gets unsetAt.
func (s *SQLite) insertJobs(w *wtx, first int64, dest string, unsetAt int64, msgs []inboxMessage) error {
	now := w.now.UnixNano()
	batch := first
	args := make([]any, 0, 8*min(len(msgs), insertChunk))
	for len(msgs) > 0 {
		n := insertChunk
		for n > len(msgs) {
			n /= 2
		}
		chunk := msgs[:n]
		msgs = msgs[n:]
		args = args[:0]
		for i, m := range chunk {
			recv := m.ReceivedAt
			if recv == 0 {
				recv = unsetAt
			}
			args = append(args, first+int64(i), m.Source, dest, m.Key, m.MessageID, recv, now, batch)
		}
		if err := s.execInsert(w, s.insertSQL[n], args); err != nil {
			return fmt.Errorf("insert jobs: %w", err)
		}
		first += int64(n)
	}
	return nil
}

func (s *SQLite) execInsert(w *wtx, query string, args []any) error {
	st, err := s.txStmt(w, query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(w.ctx, args...)
	return err
}

// txStmt returns the writer's statement for query (prepared at open)
// bound to the batch transaction.
func (s *SQLite) txStmt(w *wtx, query string) (*sql.Stmt, error) {
	st := s.stmts[query]
	if st == nil {
		return nil, fmt.Errorf("statement not prepared at open: %.40q", query)
	}
	return w.tx.StmtContext(w.ctx, st), nil
}

// Claim moves up to limit due jobs of dest to executing, leased for lease,
// and returns them oldest (smallest id) first.
//
// A job is due when it is pending, failed with its retry time reached, or
// executing with its lease expired (its worker died; Attempts then counts
// that lost attempt). A job is held back while an earlier job with the same
// non-empty Key is unfinished and not claimed in this same call: executing
// under a valid lease, failed waiting for its retry, or pending but cut by
// limit. Jobs of one Key in one claim are in id order; the order key is
// (dest, Key). Aborted jobs do not hold anything back.
//
// The scan walks the covering partial index jobs_open (dest, id, …) from
// the oldest unfinished job and stops at limit claimable jobs or after
// MaxClaimScan entries, so its cost is the number of executing and
// held-back jobs ahead of the claimable ones, never the whole backlog. It
// reads a snapshot on a reader connection, beside the writer; only the
// leasing goes through the writer (see leaseAll). When the job rows run
// out first, the scan expands inbox rows into jobs and goes on
// (findClaimable).
func (s *SQLite) Claim(ctx context.Context, dest string, limit int, lease time.Duration) ([]Job, error) {
	switch {
	case dest == "":
		return nil, fmt.Errorf("claim: empty dest: %w", ErrInvalid)
	case limit <= 0:
		return nil, fmt.Errorf("claim %q: limit %d must be positive: %w", dest, limit, ErrInvalid)
	case lease <= 0:
		return nil, fmt.Errorf("claim %q: lease %v must be positive: %w", dest, lease, ErrInvalid)
	}
	if s.isClosed() {
		return nil, fmt.Errorf("claim %q: %w", dest, ErrClosed)
	}
	// One claimer per destination at a time: a claim scans a snapshot and
	// leases its picks in several transactions (see leaseAll), and a second
	// claimer must not pick what the first has found but not leased yet.
	mu := s.claimLock(dest)
	mu.Lock()
	defer mu.Unlock()
	picks, err := s.findClaimable(ctx, dest, limit)
	if err != nil {
		if s.isClosed() { // closed while scanning
			err = ErrClosed
		}
		return nil, fmt.Errorf("claim %q: %w", dest, err)
	}
	jobs, batches, err := s.leaseAll(ctx, dest, picks.picks, lease)
	if err != nil {
		return nil, fmt.Errorf("claim %q: %w", dest, err)
	}
	if err := s.readPayloads(ctx, jobs, batches); err != nil {
		// The jobs stay leased; when the lease runs out they are claimed
		// again (counted as an attempt), as if this worker had died.
		return nil, fmt.Errorf("claim %q: %w", dest, err)
	}
	return jobs, nil
}

// readPayloads fills in the payloads of freshly leased jobs (batches[i]
// is jobs[i]'s) from a read connection: reading and decoding megabytes of
// them is no work for the writer, which every Enqueue waits on; WAL readers
// never block it.
func (s *SQLite) readPayloads(ctx context.Context, jobs []Job, batches []int64) error {
	if len(jobs) == 0 {
		return nil
	}
	refs := make([]payloadRef, len(jobs))
	for i := range jobs {
		refs[i] = payloadRef{id: jobs[i].ID, batch: batches[i], dst: &jobs[i].Payload}
	}
	if err := resolvePayloads(ctx, s.rdb, refs); err != nil {
		return fmt.Errorf("read payloads: %w", err)
	}
	return nil
}

// claimLock returns dest's claim mutex.
func (s *SQLite) claimLock(dest string) *sync.Mutex {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	mu := s.claimLocks[dest]
	if mu == nil {
		mu = &sync.Mutex{}
		s.claimLocks[dest] = mu
	}
	return mu
}

// candidate is a claimable job found by the scan.
type candidate struct {
	id    int64
	state State
}

// leaseAll leases the picks the scan found, a chunk per writer
// transaction, so Enqueues commit in between rather than waiting for one
// long claim. The scan read a snapshot, and each chunk re-reads its picks'
// states (stillClaimable), so a pick that changed since — finished late
// by a worker whose lease had expired, requeued — is leased only if it is
// still due. Nothing else can claim the picks meanwhile: Claim holds the
// destination's claim lock. Per-key order holds as the scan decided it,
// with one exception by nature: a dead letter requeued after the snapshot
// does not hold back later jobs of its key picked by this claim (replaying
// it is out of order anyway). jobs come back in id order.
func (s *SQLite) leaseAll(ctx context.Context, dest string, picks []candidate, lease time.Duration) ([]Job, []int64, error) {
	var jobs []Job
	var batches []int64
	for chunk := range slices.Chunk(picks, writerChunk) {
		var more []Job
		var moreBatches []int64
		err := s.submit(ctx, unsynced, len(chunk), func(w *wtx) error {
			due, err := s.stillClaimable(w, chunk)
			if err != nil {
				return err
			}
			more, moreBatches, err = s.lease(w, dest, due, lease)
			return err
		})
		if err != nil {
			// What was leased stays leased until its lease runs out.
			return nil, nil, err
		}
		jobs = append(jobs, more...)
		batches = append(batches, moreBatches...)
	}
	return jobs, batches, nil
}

// due reports whether a job in state js may be claimed at now.
func due(js State, retryAt, leaseUntil, now int64) bool {
	return js == StatePending ||
		(js == StateFailed && retryAt <= now) ||
		(js == StateExecuting && leaseUntil <= now)
}

// stillClaimable re-reads picks found by an earlier transaction and keeps
// the ones still due, with their current state.
func (s *SQLite) stillClaimable(w *wtx, picks []candidate) ([]candidate, error) {
	ids := make([]int64, len(picks))
	for i, p := range picks {
		ids[i] = p.id
	}
	st, err := s.txStmt(w, sqlRecheck)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(w.ctx, idsJSON(ids))
	if err != nil {
		return nil, fmt.Errorf("recheck picks: %w", err)
	}
	defer rows.Close()
	now := w.now.UnixNano()
	var out []candidate
	for rows.Next() {
		var c candidate
		var state string
		var retryAt, leaseUntil int64
		if err := rows.Scan(&c.id, &state, &retryAt, &leaseUntil); err != nil {
			return nil, fmt.Errorf("recheck picks: %w", err)
		}
		c.state = State(state)
		if due(c.state, retryAt, leaseUntil, now) {
			out = append(out, c)
		}
	}
	return out, rows.Err()
}

// lease moves picks to executing under a lease and returns them without
// payloads (see readPayloads), in id order, with the inbox row each one's
// payload is in (0: the payloads table).
func (s *SQLite) lease(w *wtx, dest string, picks []candidate, lease time.Duration) ([]Job, []int64, error) {
	if len(picks) == 0 {
		return nil, nil, nil
	}
	ids := make([]int64, len(picks))
	var d destCounts
	for i, p := range picks {
		ids[i] = p.id
		switch p.state {
		case StatePending:
			d.pending--
			d.executing++
		case StateFailed:
			d.failed--
			d.executing++
		}
	}
	st, err := s.txStmt(w, sqlClaim)
	if err != nil {
		return nil, nil, err
	}
	rows, err := st.QueryContext(w.ctx,
		w.now.Add(lease).UnixNano(), w.now.UnixNano(), idsJSON(ids))
	if err != nil {
		return nil, nil, fmt.Errorf("lease jobs: %w", err)
	}
	defer rows.Close()
	type leased struct {
		job   Job
		batch int64
	}
	got := make([]leased, 0, len(picks))
	for rows.Next() {
		var l leased
		j := &l.job
		var recv int64
		if err := rows.Scan(&j.ID, &j.Source, &j.Dest, &j.Key, &j.MessageID, &recv, &j.Attempts, &j.LastError, &l.batch); err != nil {
			return nil, nil, fmt.Errorf("read leased job: %w", err)
		}
		j.ReceivedAt = time.Unix(0, recv).UTC()
		got = append(got, l)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("lease jobs: %w", err)
	}
	if len(got) != len(picks) {
		return nil, nil, fmt.Errorf("leased %d jobs, scan found %d", len(got), len(picks))
	}
	slices.SortFunc(got, func(a, b leased) int { return cmp.Compare(a.job.ID, b.job.ID) })
	w.count(dest, d)
	jobs := make([]Job, len(got))
	batches := make([]int64, len(got))
	for i, l := range got {
		jobs[i], batches[i] = l.job, l.batch
	}
	return jobs, batches, nil
}

// claimScan is a claim's walk over dest's unfinished jobs in id order:
// the picks so far, the keys held back, and where to go on from.
type claimScan struct {
	dest    string
	limit   int
	now     int64
	blocked map[string]struct{}
	picks   []candidate
	after   int64 // the last id scanned
	scanned int
}

// findClaimable picks up to limit claimable jobs of dest, holding back
// every job behind an unfinished earlier job of its Key. When the job rows
// run out before limit, it expands inbox rows (oldest first) into jobs and
// scans on from where it stopped: every job row is older than every inbox
// message, so the walk still sees dest's messages in id order. Keys held
// back by the first snapshot stay held back, which is only ever stricter.
func (s *SQLite) findClaimable(ctx context.Context, dest string, limit int) (*claimScan, error) {
	c := &claimScan{dest: dest, limit: limit, now: s.opts.Now().UnixNano(), blocked: map[string]struct{}{}}
	for {
		atEnd, err := s.scanMore(ctx, c)
		if err != nil {
			return nil, err
		}
		if !atEnd || len(c.picks) >= limit || c.scanned >= s.opts.MaxClaimScan {
			return c, nil
		}
		got, err := s.expand(ctx, dest, limit-len(c.picks))
		if err != nil {
			return nil, err
		}
		if got == 0 {
			return c, nil
		}
	}
}

// scanMore goes on with c on a fresh snapshot and reports whether it
// reached the end of dest's job rows.
func (s *SQLite) scanMore(ctx context.Context, c *claimScan) (atEnd bool, err error) {
	// One read transaction: every chunk of this pass sees the same snapshot.
	tx, err := s.rdb.BeginTx(ctx, nil) // rdb's connections are query-only
	if err != nil {
		return false, fmt.Errorf("scan jobs: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	for len(c.picks) < c.limit && c.scanned < s.opts.MaxClaimScan {
		asked := min(scanChunk, s.opts.MaxClaimScan-c.scanned)
		n, err := s.scanChunk(ctx, tx, c, asked)
		if err != nil {
			return false, fmt.Errorf("scan jobs: %w", err)
		}
		c.scanned += n
		if n < asked && len(c.picks) < c.limit {
			return true, nil
		}
	}
	return false, nil
}

// scanChunk reads up to asked index entries after c.after and returns how
// many it read.
func (s *SQLite) scanChunk(ctx context.Context, tx *sql.Tx, c *claimScan, asked int) (int, error) {
	rows, err := tx.QueryContext(ctx, sqlScan, c.dest, c.after, asked)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for len(c.picks) < c.limit && rows.Next() {
		var key, state string
		var id, retryAt, leaseUntil int64
		if err := rows.Scan(&id, &key, &state, &retryAt, &leaseUntil); err != nil {
			return n, err
		}
		n++
		c.after = id
		if _, held := c.blocked[key]; held {
			continue
		}
		js := State(state)
		if due(js, retryAt, leaseUntil, c.now) {
			c.picks = append(c.picks, candidate{id: id, state: js})
		} else if key != "" {
			c.blocked[key] = struct{}{}
		}
	}
	return n, rows.Err()
}

// expand turns inbox rows into jobs, oldest first, one row per writer
// transaction (so Enqueues commit in between), until want messages of dest
// were expanded or the inbox is empty; it also stops after MaxClaimScan
// messages of other destinations. It returns the number of dest's.
func (s *SQLite) expand(ctx context.Context, dest string, want int) (int, error) {
	got, total := 0, 0
	for got < want && total < s.opts.MaxClaimScan && s.inboxLen() > 0 {
		var rowDest string
		var n int
		err := s.submit(ctx, unsynced, 1, func(w *wtx) error {
			var err error
			rowDest, n, err = s.expandOne(w)
			return err
		})
		if err != nil {
			return got, err
		}
		if n == 0 {
			break
		}
		total += n
		if rowDest == dest {
			got += n
		}
	}
	return got, nil
}

// inboxLen is the number of messages in the inbox, from the counters.
func (s *SQLite) inboxLen() int64 {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	var n int64
	for _, c := range s.counts {
		n += c.inbox
	}
	return n
}

// Succeed finishes claimed jobs as delivered by deleting them (the delivery
// log is kept elsewhere). Ids that are not executing — already finished,
// never claimed, unknown — are ignored, so a repeated ack is harmless.
func (s *SQLite) Succeed(ctx context.Context, ids []int64) error {
	return s.finish(ctx, "succeed", ids, sqlSucceed, destCounts{executing: -1})
}

// Retry moves claimed jobs to failed: claimable again from at, with
// attempts+1 and reason as LastError. Ids not executing are ignored.
func (s *SQLite) Retry(ctx context.Context, ids []int64, at time.Time, reason string) error {
	return s.finish(ctx, "retry", ids, sqlRetry, destCounts{executing: -1, failed: 1}, at.UnixNano(), reason)
}

// Abort forgets claimed jobs the caller dead-lettered, and their
// payloads, as Succeed does (see Queue.Abort). Ids not executing are
// ignored.
func (s *SQLite) Abort(ctx context.Context, ids []int64, reason string) error {
	if err := s.finish(ctx, "abort", ids, sqlAbort, destCounts{executing: -1}); err != nil {
		return err
	}
	s.log.Debug("queue: jobs aborted", slog.Int("jobs", len(ids)), slog.String("reason", reason))
	return nil
}

// Compact returns up to pages free pages (left by succeeded and purged
// jobs) to the filesystem; 0 means all. It holds the writer while it runs.
func (s *SQLite) Compact(ctx context.Context, pages int) error {
	err := s.submit(ctx, unsynced, 1, func(w *wtx) error {
		rows, err := w.tx.QueryContext(w.ctx, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", max(pages, 0)))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() { // the pragma frees pages as its rows are stepped
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	return nil
}

// finish runs query (Succeed's, Retry's or Abort's) over ids and releases
// the inbox rows no job needs any more.
func (s *SQLite) finish(ctx context.Context, verb string, ids []int64, query string, per destCounts, args ...any) error {
	if len(ids) == 0 {
		return nil
	}
	// Each id stands alone, so a large finish goes in pieces: the writer
	// commits Enqueues between them instead of after one long statement.
	for chunk := range slices.Chunk(ids, writerChunk) {
		arr := idsJSON(chunk)
		err := s.submit(ctx, unsynced, len(chunk), func(w *wtx) error {
			full := append([]any{arr}, args...)
			full = append(full, w.now.UnixNano())
			batches, err := s.updateCounting(w, query, per, full...)
			if err != nil {
				return err
			}
			return s.release(w, batches)
		})
		if err != nil {
			return fmt.Errorf("%s %d jobs: %w", verb, len(ids), err)
		}
	}
	return nil
}

// writerChunk bounds the rows one Succeed, Retry, Abort or Claim
// statement changes: ~3 ms of the writer, so an Enqueue queued behind it
// waits that long rather than the 15–20 ms of 2,000 rows at once.
const writerChunk = 256

// updateCounting runs a statement that RETURNs the dest and batch of
// every row it changed, adding per to that dest's counters once per row,
// and returns the distinct non-zero batches.
func (s *SQLite) updateCounting(w *wtx, query string, per destCounts, args ...any) ([]int64, error) {
	st, err := s.txStmt(w, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(w.ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	n := map[string]int64{}
	var batches []int64
	for rows.Next() {
		var dest string
		var batch int64
		if err := rows.Scan(&dest, &batch); err != nil {
			return nil, err
		}
		n[dest]++
		if batch != 0 && !slices.Contains(batches, batch) {
			batches = append(batches, batch)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for dest, k := range n {
		w.count(dest, destCounts{
			pending: per.pending * k, executing: per.executing * k,
			failed: per.failed * k,
		})
	}
	return batches, nil
}

// release deletes those of batches (expanded inbox rows) that no job reads
// its payload from any more.
func (s *SQLite) release(w *wtx, batches []int64) error {
	if len(batches) == 0 {
		return nil
	}
	st, err := s.txStmt(w, sqlRelease)
	if err != nil {
		return err
	}
	for _, b := range batches {
		if _, err := st.ExecContext(w.ctx, b); err != nil {
			return fmt.Errorf("release inbox row %d: %w", b, err)
		}
	}
	return nil
}

func idsJSON(ids []int64) string {
	b := make([]byte, 0, len(ids)*8+2)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}
