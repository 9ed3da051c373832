package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/trace"
	"slices"
	"time"
)

// request is one write submitted to the writer goroutine. run executes
// inside the batch transaction (within its own savepoint) and leaves its
// results in variables its closure captured; the submitter reads them only
// after receiving from done, which orders the accesses.
type request struct {
	ctx context.Context
	// durable requests need their commit fsynced before they return (see
	// durability); a batch is synced if any of its requests is durable.
	durable bool
	at      time.Time // submission time: the batch window runs from here
	rows    int       // weight toward BatchRows
	run     func(w *wtx) error
	delta   map[string]*destCounts // counter changes, applied after commit
	done    chan error             // buffered 1
	// release, when set, is called by the writer once the request's batch
	// is over (committed, failed or skipped): what run reads may be reused
	// from then on, even if the submitter gave up long before.
	release func()
}

// wtx is the state of the batch transaction shared by its requests.
type wtx struct {
	ctx context.Context
	tx  *sql.Tx
	now time.Time
	req *request // the request being run
}

// count records a counter change of the current request.
func (w *wtx) count(dest string, d destCounts) {
	if w.req.delta == nil {
		w.req.delta = make(map[string]*destCounts)
	}
	c := w.req.delta[dest]
	if c == nil {
		c = &destCounts{}
		w.req.delta[dest] = c
	}
	c.add(d)
}

// durability says whether a write must reach the disk before submit
// returns. Enqueue must: the SDK gets its 200 only after that. Delivery's
// own bookkeeping (leases, expanding the inbox, acks, retries, dead
// letters) need not: every commit reaches the operating system at once, so
// a killed process loses none of it, and only a power loss or kernel crash
// can lose the last unsynced ones, which rolls the queue back to a
// consistent earlier state (WAL frames are replayed in order up to the
// last synced commit, and every later synced commit syncs them too). The
// worst that does is deliver again an event that was delivered just
// before the power went, which Klaviyo de-duplicates by unique_id for
// events and which is a no-op for profile upserts. What it saves: under
// ingest load the fsync is most of the writer's time, and its latency grows
// with every other fsync on the disk (a delivery lease committed with
// fsync took up to 48 ms there); delivery's commits were a third of them.
type durability bool

const (
	synced   durability = true
	unsynced durability = false
)

// submit hands run to the writer and waits until its batch committed. If
// ctx ends first, submit returns ctx.Err() at once; the request then either
// never runs (the writer skips requests whose context is done) or runs and
// commits normally — nothing is left half-done.
func (s *SQLite) submit(ctx context.Context, d durability, rows int, run func(w *wtx) error) error {
	return s.submitRequest(ctx, &request{durable: d == synced, rows: rows, run: run})
}

// submitRequest is submit for a request that may carry a release.
func (s *SQLite) submitRequest(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.ctx, r.at, r.done = ctx, time.Now(), make(chan error, 1)
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	s.inflight.Add(1)
	s.closeMu.RUnlock()
	select {
	case s.reqs <- r:
		s.inflight.Done()
	case <-ctx.Done():
		s.inflight.Done()
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeLoop is the writer goroutine: it owns wdb until reqs is closed and
// drained.
func (s *SQLite) writeLoop() {
	defer close(s.writerDone)
	batch := make([]*request, 0, 256)
	synced := make([]*request, 0, 256)
	unsynced := make([]*request, 0, 256)
	for {
		first, ok := <-s.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], first)
		more := s.collect(first, &batch)
		// Requests that need fsync (Enqueue: an SDK waits for its 200)
		// commit first, in a transaction of their own; delivery's
		// bookkeeping that arrived with them follows without fsync. In
		// one transaction the Enqueues also waited for the bookkeeping
		// (up to 5 ms of leasing or acks), and the bookkeeping for their
		// fsync. Requests in one batch were submitted concurrently, so
		// none was promised an order among them.
		synced, unsynced = synced[:0], unsynced[:0]
		for _, r := range batch {
			if r.durable {
				synced = append(synced, r)
			} else {
				unsynced = append(unsynced, r)
			}
		}
		for _, part := range [...][]*request{synced, unsynced} {
			if len(part) > 0 {
				s.runBatch(part)
			}
		}
		clear(batch)
		clear(synced)
		clear(unsynced)
		if !more {
			return
		}
	}
}

// collect adds requests to batch until the window that opened when first
// was submitted closes or BatchRows is reached. It reports false once reqs
// is closed and empty.
func (s *SQLite) collect(first *request, batch *[]*request) bool {
	rows := first.rows
	wait := time.Until(first.at.Add(s.opts.BatchWindow))
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for rows < s.opts.BatchRows {
		if timeout == nil {
			// Window over (or disabled): take only what is already queued.
			select {
			case r, ok := <-s.reqs:
				if !ok {
					return false
				}
				*batch = append(*batch, r)
				rows += r.rows
			default:
				return true
			}
			continue
		}
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return false
			}
			*batch = append(*batch, r)
			rows += r.rows
		case <-timeout:
			timeout = nil
		}
	}
	return true
}

// runBatch runs every live request of batch in one transaction, commits
// once (one fsync), applies the counter changes and wakes the submitters.
//
// Requests normally run back to back with no savepoints: a savepoint makes
// SQLite copy every page it touches to a sub-journal first, which costs
// more than the inserts. If a request fails, the transaction is rolled
// back and the batch runs again with each request in its own savepoint, so
// the failing one gets its error and the others commit. A failed commit
// fails every request that had succeeded.
func (s *SQLite) runBatch(batch []*request) {
	errs, err := s.runTx(batch, false)
	if err == nil && slices.ContainsFunc(errs, func(e error) bool { return e != nil && !isCtxErr(e) }) {
		errs, err = s.runTx(batch, true)
	}
	if err != nil {
		s.log.Error("queue: write transaction failed", "err", err)
		for i := range batch {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	} else {
		s.commits.Add(1)
		s.statsMu.Lock()
		for i, r := range batch {
			if errs[i] != nil {
				continue
			}
			s.committedRows.Add(int64(r.rows))
			for dest, d := range r.delta {
				s.countsFor(dest).add(*d)
			}
		}
		s.statsMu.Unlock()
	}
	for i, r := range batch {
		r.done <- errs[i]
		if r.release != nil {
			r.release()
		}
	}
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// runTx runs the batch in one transaction. With isolate false it stops at
// the first failing request and rolls back (the caller retries isolated);
// with isolate true each request runs in a savepoint and the transaction
// commits whatever succeeded. err is a begin or commit failure.
func (s *SQLite) runTx(batch []*request, isolate bool) (errs []error, err error) {
	errs = make([]error, len(batch))
	if err := s.setSync(slices.ContainsFunc(batch, func(r *request) bool { return r.durable })); err != nil {
		return errs, err
	}
	tx, err := s.wdb.BeginTx(context.Background(), nil)
	if err != nil {
		s.resetWriteConn()
		return errs, fmt.Errorf("begin: %w", err)
	}
	// Requests are short and Close must not cut a commit, so statements
	// run under a background context; a submitter that gave up before its
	// request started is skipped instead.
	w := &wtx{ctx: context.Background(), tx: tx, now: s.opts.Now()}
	// Regions split the writer's time in an execution trace (relaybench
	// -profile): running the requests, then the commit (with or without
	// fsync). Free when not tracing.
	reg := trace.StartRegion(context.Background(), "queue-write")
	for i, r := range batch {
		r.delta = nil
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if isolate {
			errs[i] = s.runIsolated(w, r)
			continue
		}
		w.req = r
		errs[i] = r.run(w)
		w.req = nil
		if errs[i] != nil {
			reg.End()
			if rerr := tx.Rollback(); rerr != nil {
				s.resetWriteConn()
			}
			return errs, nil
		}
	}
	reg.End()
	commit := "queue-commit"
	if s.syncFull {
		commit = "queue-commit-fsync"
	}
	defer trace.StartRegion(context.Background(), commit).End()
	if err := tx.Commit(); err != nil {
		s.resetWriteConn()
		return errs, fmt.Errorf("commit: %w", err)
	}
	return errs, nil
}

// setSync switches the write connection between synchronous=FULL (commit
// waits for fsync) and NORMAL (it does not; see durability) when needed.
func (s *SQLite) setSync(full bool) error {
	if s.syncFull == full {
		return nil
	}
	mode := "NORMAL"
	if full {
		mode = "FULL"
	}
	if _, err := s.wdb.ExecContext(context.Background(), "PRAGMA synchronous = "+mode); err != nil {
		return fmt.Errorf("set synchronous %s: %w", mode, err)
	}
	s.syncFull = full
	return nil
}

func (s *SQLite) runIsolated(w *wtx, r *request) error {
	if _, err := w.tx.ExecContext(w.ctx, "SAVEPOINT req"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	w.req = r
	err := r.run(w)
	w.req = nil
	if err != nil {
		r.delta = nil
		if _, rerr := w.tx.ExecContext(w.ctx, "ROLLBACK TO req"); rerr != nil {
			return fmt.Errorf("%w (and roll back: %v)", err, rerr)
		}
	}
	if _, rerr := w.tx.ExecContext(w.ctx, "RELEASE req"); rerr != nil && err == nil {
		return fmt.Errorf("release savepoint: %w", rerr)
	}
	return err
}

// resetWriteConn makes sure no transaction is left open on the write
// connection after a failed BEGIN or COMMIT (SQLite normally rolls back by
// itself; an error here just means it did).
func (s *SQLite) resetWriteConn() {
	_, _ = s.wdb.ExecContext(context.Background(), "ROLLBACK")
}
