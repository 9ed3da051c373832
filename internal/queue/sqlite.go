package queue

// SQLite is the embedded, single-node implementation of Queue.
//
// Why modernc.org/sqlite: it is SQLite transpiled to pure Go, so the binary
// needs no cgo, cross-compiles with plain `go build` and stays static. On
// this machine size it is only about 1.2–1.7× slower than the cgo driver
// (mattn/go-sqlite3) for batched writes, and with group commit and
// synchronous=FULL it still sustains 100k+ inserts/s (STYLE.md, "Queue store
// measurements": ~102k rows/s at 100 rows per commit, ~148k at 1,000),
// which is more than 100× what Klaviyo's API can drain per account. A
// commit with fsync costs ~0.3–0.5 ms here, so durability per request
// would cap ingest at ~3k commits/s; group commit is what makes FULL
// affordable. SQL also keeps the console's queries simple.
//
// Storage model. Enqueue appends one row per destination of each call to
// the inbox: the call's messages encoded and s2-compressed in one blob
// (sqlite_inbox.go), so ingest costs the single writer a row per request
// rather than rows and index entries per event. Claims expand inbox rows,
// oldest first and only as delivery needs them, into job rows (rudder-
// server's jobsdb, STYLE.md item 6), which keep reading their payloads from
// the blob (jobs.batch) until the row is released with its last job; jobs
// of queue files older than the inbox keep theirs in the payloads table. Job rows move through
// explicit states with batched updates:
//
//	(inbox) ─Claim expands→ pending ─Claim→ executing ─Succeed→ (row deleted)
//	                                             ─Retry→   failed(retry_at, attempts+1, last_error) ─due→ claimable
//	                                             ─Abort→   (row deleted: the dead letter is in the store)
//	                                             ─lease expires→ claimable again (attempts+1, "lease expired")
//
// Succeeded rows are deleted at once: the delivery log lives elsewhere, and
// deleting keeps the file and its indexes as small as the backlog (freed
// pages are reused by later inserts; Compact returns them to the OS).
// Aborted rows go the same way (Queue.Abort).
//
// Concurrency and lock order (STYLE.md item 12). Every write — Enqueue,
// Claim's leasing, Succeed, Retry, Abort, Compact — is a
// request to the single writer goroutine, which owns the only write
// connection. It takes every request queued (up to BatchRows; optionally
// waiting BatchWindow for more), runs them in one transaction (BEGIN
// IMMEDIATE; savepoints only to isolate a failing request), commits once
// (one fsync if any request needs it: Enqueue and Requeue do, delivery's
// bookkeeping does not, see durability), then updates the in-memory
// counters and wakes every waiter.
// Reads (Claim's scan and payloads, Stats' oldest job, Get, List) use a
// separate pool of query-only connections, which WAL lets run beside the
// writer; WAL checkpoints run on a third connection (sqlite_checkpoint.go).
// Locks:
//
//	a destination's claim lock (held for one whole Claim) → closeMu
//	closeMu (RLock while submitting) → nothing else
//	statsMu (counters) is a leaf: taken alone, never while waiting on I/O
//
// The writer takes no lock except statsMu after a commit.
//
// Crash recovery: on a single node only this process holds leases, so at
// open every job still executing was claimed by a worker that no longer
// exists; OpenSQLite moves them straight back to pending (attempts
// unchanged: a restart is not the message's fault) instead of waiting for
// their leases to run out.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaycdp/relay/internal/bufpool"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SQLiteOptions tunes OpenSQLite. The zero value gives the defaults noted
// on each field.
type SQLiteOptions struct {
	// BatchWindow is how long the writer keeps collecting requests after the
	// first one of a batch arrived before committing. Zero or negative (the
	// default) means do not wait: the writer commits whatever is queued as
	// soon as it is free, and requests arriving during a commit share the
	// next one. Group commit needs no window under load; a 2 ms window
	// doubled ingest's median latency (≈6 ms against ≈3 ms at half load)
	// without raising throughput.
	BatchWindow time.Duration
	// BatchRows ends the window early once this many rows (messages, or
	// ids to update) are collected. Default 2,000. One Enqueue call is
	// never split, so a batch can exceed it.
	BatchRows int
	// CacheMiB bounds SQLite's page cache of the write connection; each
	// read connection gets a quarter of it. Default 16 MiB.
	CacheMiB int
	// ReadConns is the size of the read pool (Stats, Get, List). Default 2.
	ReadConns int
	// BusyTimeout is how long a connection waits for a lock held by another
	// connection (only checkpoints and readers contend here). Default 5s.
	BusyTimeout time.Duration
	// MaxClaimScan bounds how many unfinished jobs one Claim inspects
	// when looking for claimable ones, and so how long a Claim can hold the
	// writer (and delay Enqueue acks): ~1.3µs an entry here, so the default
	// 20,000 is ~25 ms. Jobs held back behind an unfinished earlier job of
	// their Key are skipped but still cost a step; with more held-back jobs
	// than this ahead of the claimable ones, Claim returns fewer (or none)
	// until the jobs holding them back finish — head-of-line blocking that
	// needs one profile with 20,000 events queued behind a failing one.
	MaxClaimScan int
	// Now is the clock; default time.Now. Tests may pin it.
	Now func() time.Time
}

func (o SQLiteOptions) withDefaults() SQLiteOptions {
	if o.BatchRows <= 0 {
		o.BatchRows = 2000
	}
	if o.CacheMiB <= 0 {
		o.CacheMiB = 16
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 2
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.MaxClaimScan <= 0 {
		o.MaxClaimScan = 20_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// schemaVersion is stored in PRAGMA user_version. Version 2 moved the
// payloads out of jobs (see payloads below), version 3 added the inbox,
// version 4 let jobs keep their payloads there (jobs.batch, queue_meta);
// migrate upgrades versions 1 to 3.
const schemaVersion = 4

// openStates is the SQL condition of an unfinished job. It is spelled
// identically in the partial index and in every query meant to use it,
// because SQLite only uses a partial index whose WHERE term the query
// repeats.
const openStates = `state IN ('pending','executing','failed')`

// schema: times are Unix nanoseconds (0 = unset); state is a State string.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS jobs (
		id          INTEGER PRIMARY KEY,
		source      TEXT    NOT NULL,
		dest        TEXT    NOT NULL,
		key         TEXT    NOT NULL,
		message_id  TEXT    NOT NULL,
		received_at INTEGER NOT NULL,
		state       TEXT    NOT NULL,
		attempts    INTEGER NOT NULL DEFAULT 0,
		retry_at    INTEGER NOT NULL DEFAULT 0,
		lease_until INTEGER NOT NULL DEFAULT 0,
		last_error  TEXT    NOT NULL DEFAULT '',
		updated_at  INTEGER NOT NULL,
		batch       INTEGER NOT NULL DEFAULT 0
	)`,
	// Claim's scan: a destination's unfinished jobs in id order, covering
	// everything the scan decides on, so it never touches the table rows
	// (with their payloads) of jobs it skips. Finished rows leave the index.
	`CREATE INDEX IF NOT EXISTS jobs_open ON jobs (dest, id, key, state, retry_at, lease_until)
		WHERE ` + openStates,
	// Rows aborted by versions that kept them, deleted at open (recover).
	`CREATE INDEX IF NOT EXISTS jobs_aborted ON jobs (dest, id) WHERE state = 'aborted'`,
	// The events, apart from their jobs: a state change rewrites the whole
	// row, and with the payload inline a claim of 2,000 jobs rewrote
	// megabytes inside the writer's transaction (25–35 ms that every
	// Enqueue waiting on that commit paid). A payload is written once and
	// goes with its job.
	`CREATE TABLE IF NOT EXISTS payloads (
		id      INTEGER PRIMARY KEY,
		payload BLOB    NOT NULL
	)`,
	`CREATE TRIGGER IF NOT EXISTS jobs_payload_gone AFTER DELETE ON jobs BEGIN
		DELETE FROM payloads WHERE id = OLD.id;
	END`,
	// Enqueued messages not yet turned into jobs (sqlite_inbox.go): the
	// messages of one Enqueue call for dest, ids id … id+n-1, encoded in
	// data. received_at is the oldest of them, enqueued_at the commit time
	// (the ReceivedAt of messages that had none).
	`CREATE TABLE IF NOT EXISTS inbox (
		id          INTEGER PRIMARY KEY,
		dest        TEXT    NOT NULL,
		n           INTEGER NOT NULL,
		enqueued_at INTEGER NOT NULL,
		received_at INTEGER NOT NULL,
		data        BLOB    NOT NULL
	)`,
	// Stats' oldest message of a destination with no job rows.
	`CREATE INDEX IF NOT EXISTS inbox_dest ON inbox (dest, id)`,
	// expanded: every inbox row with a smaller id has been expanded into
	// jobs (and stays only while some of them still read their payload
	// from it).
	`CREATE TABLE IF NOT EXISTS queue_meta (
		k TEXT PRIMARY KEY,
		v INTEGER NOT NULL
	)`,
}

// addBatch gives jobs of versions 1 to 3 the batch column: 0, their
// payloads are in payloads.
const addBatch = `ALTER TABLE jobs ADD COLUMN batch INTEGER NOT NULL DEFAULT 0`

// upgradeV1 moves version 1's inline payloads to their own table, which
// schema has just created.
var upgradeV1 = []string{
	`INSERT INTO payloads (id, payload) SELECT id, payload FROM jobs`,
	`ALTER TABLE jobs DROP COLUMN payload`,
}

// SQLite is the SQLite-backed Queue. Create it with OpenSQLite.
type SQLite struct {
	path string
	opts SQLiteOptions
	log  *slog.Logger

	// wdb has exactly one connection, the only writer. After open only
	// the writer goroutine (and Close, after it stopped) uses it.
	// Statements are prepared on wdb, not on a pinned *sql.Conn, because
	// Tx.StmtContext reuses a DB statement already prepared on the
	// transaction's connection but re-prepares a Conn statement each time.
	wdb       *sql.DB
	stmts     map[string]*sql.Stmt // prepared on wdb at open; read-only after
	insertSQL map[int]string       // multi-row INSERT text by row count; read-only after open
	// lastID is the last job id handed out; only the writer uses it.
	lastID int64
	// syncFull is the write connection's synchronous setting (FULL from
	// the DSN, NORMAL for batches that need no fsync); only the writer
	// uses it.
	syncFull bool
	rdb      *sql.DB // query-only readers
	cdb      *sql.DB // the background checkpoint's connection

	stopCheckpoints chan struct{}
	checkpointsDone chan struct{}

	reqs       chan *request
	writerDone chan struct{}

	closeMu  sync.RWMutex // guards closed; RLock held while submitting to reqs
	closed   bool
	inflight sync.WaitGroup // submitters between the closed check and the send
	closeErr error
	closeOne sync.Once

	statsMu sync.Mutex
	counts  map[string]*destCounts

	claimMu    sync.Mutex
	claimLocks map[string]*sync.Mutex // per destination, see Claim

	scratch sync.Pool            // *inboxScratch for Enqueue's encoding
	blobs   bufpool.Slices[byte] // Enqueue's encoded blobs, back from the writer once SQLite copied them

	commits, committedRows atomic.Int64 // group-commit effectiveness, for benchmarks
}

// destCounts counts one destination's rows by state. Succeeded rows are
// deleted, so they have no counter.
type destCounts struct {
	pending, executing, failed int64
	// inbox counts the pending messages still in the inbox (not yet
	// expanded into job rows); they are in pending too.
	inbox int64
}

func (c *destCounts) add(d destCounts) {
	c.inbox += d.inbox
	c.pending += d.pending
	c.executing += d.executing
	c.failed += d.failed
}

// OpenSQLite opens (creating if needed) the queue database at path: WAL,
// synchronous=FULL, bounded page caches, the schema, jobs left executing by
// a previous process made claimable again, and the writer goroutine started.
// The directory is created if missing.
func OpenSQLite(ctx context.Context, path string, opts SQLiteOptions, log *slog.Logger) (*SQLite, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open queue %q: path must be a plain file name (no '?', '#' or file: URI): %w", path, ErrInvalid)
	}
	if log == nil {
		return nil, fmt.Errorf("open queue %q: nil logger: %w", path, ErrInvalid)
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open queue %q: %w", path, err)
	}
	s := &SQLite{
		path:            path,
		opts:            opts,
		log:             log,
		reqs:            make(chan *request, 1024),
		blobs:           bufpool.Slices[byte]{MaxBytes: maxScratch},
		writerDone:      make(chan struct{}),
		stopCheckpoints: make(chan struct{}),
		checkpointsDone: make(chan struct{}),
		counts:          make(map[string]*destCounts),
		claimLocks:      make(map[string]*sync.Mutex),
		stmts:           make(map[string]*sql.Stmt),
		insertSQL:       make(map[int]string),
	}
	if err := s.open(ctx); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open queue %q: %w", path, err)
	}
	go s.writeLoop()
	go s.checkpointLoop(s.stopCheckpoints, s.checkpointsDone)
	return s, nil
}

func (s *SQLite) dsn(cacheKiB int, write bool) string {
	q := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", s.opts.BusyTimeout.Milliseconds()),
		fmt.Sprintf("_pragma=cache_size(-%d)", cacheKiB),
		"_pragma=synchronous(FULL)",
		"_pragma=foreign_keys(0)",
		// Sub-journals and json_each's temporary tables stay in memory.
		"_pragma=temp_store(MEMORY)",
	}
	if write {
		// auto_vacuum only takes effect on a new file (before the first
		// table); INCREMENTAL lets Compact give freed pages back.
		q = append(q, "_auto_vacuum=INCREMENTAL", "_journal_mode=WAL", "_txlock=immediate",
			// Truncate the WAL back to 64 MiB after checkpoints so a burst
			// does not leave a huge file behind.
			"_pragma=journal_size_limit(67108864)",
			// The background checkpoint keeps the WAL short; this is the
			// safety net (sqlite_checkpoint.go).
			fmt.Sprintf("_pragma=wal_autocheckpoint(%d)", writerAutoCheckpointPages))
	} else {
		q = append(q, "_query_only=1")
	}
	return s.path + "?" + strings.Join(q, "&")
}

// openOneConn opens a pool of exactly one connection that is never closed
// while the queue is open (the writer's, the checkpointer's).
func openOneConn(dsn string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

func (s *SQLite) open(ctx context.Context) error {
	var err error
	if s.wdb, err = openOneConn(s.dsn(s.opts.CacheMiB*1024, true)); err != nil {
		return err
	}
	var mode string
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal (filesystem without shared memory support?)", mode)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if err := s.recover(ctx); err != nil {
		return err
	}
	for _, q := range writerQueries() {
		st, err := s.wdb.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %.40q: %w", q, err)
		}
		s.stmts[q] = st
	}
	for n := insertChunk; n >= 1; n /= 2 {
		s.insertSQL[n] = insertSQL(sqlInsert, sqlInsertRow, n)
	}
	// Ids continue after every id in use and after the expansion mark:
	// finished jobs leave no row, and an inbox row below the mark would
	// never be expanded.
	if err := s.wdb.QueryRowContext(ctx, `SELECT max(
		coalesce((SELECT max(id) FROM jobs), 0), coalesce((SELECT max(id) FROM payloads), 0),
		coalesce((SELECT id + n - 1 FROM inbox ORDER BY id DESC LIMIT 1), 0),
		coalesce((SELECT max(v) FROM queue_meta WHERE k = 'expanded'), 1) - 1)`).Scan(&s.lastID); err != nil {
		return fmt.Errorf("read last job id: %w", err)
	}
	s.rdb, err = sql.Open("sqlite", s.dsn(max(s.opts.CacheMiB*1024/4, 1024), false))
	if err != nil {
		return err
	}
	s.rdb.SetMaxOpenConns(s.opts.ReadConns)
	s.rdb.SetMaxIdleConns(s.opts.ReadConns)
	if err := s.rdb.PingContext(ctx); err != nil {
		return err
	}
	s.cdb, err = openOneConn(s.dsn(1024, true))
	return err
}

func (s *SQLite) migrate(ctx context.Context) error {
	var v int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this binary's %d", v, schemaVersion)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin schema: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	stmts := slices.Clone(schema)
	if v == 1 {
		stmts = append(stmts, upgradeV1...)
	}
	if v >= 1 && v <= 3 {
		stmts = append(stmts, addBatch)
	}
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit schema: %w", err)
	}
	return nil
}

// recover resets jobs a dead process left executing and loads the counters.
func (s *SQLite) recover(ctx context.Context) error {
	// Versions before Abort forgot its jobs kept them as 'aborted' rows;
	// their dead letters are in the store (jobs_aborted finds them).
	if _, err := s.wdb.ExecContext(ctx, `DELETE FROM jobs WHERE state = 'aborted'`); err != nil {
		return fmt.Errorf("forget aborted jobs: %w", err)
	}
	res, err := s.wdb.ExecContext(ctx,
		`UPDATE jobs SET state = 'pending', lease_until = 0, updated_at = ? WHERE `+openStates+` AND state = 'executing'`,
		s.opts.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("reset executing jobs: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.log.Info("queue: jobs left executing by the previous process are pending again", slog.Int64("jobs", n))
	}
	rows, err := s.wdb.QueryContext(ctx,
		`SELECT dest, state, COUNT(*) FROM jobs WHERE `+openStates+` GROUP BY dest, state
		 UNION ALL
		 SELECT dest, 'inbox', sum(n) FROM inbox
		 WHERE id >= (SELECT coalesce(max(v), 0) FROM queue_meta WHERE k = 'expanded') GROUP BY dest`)
	if err != nil {
		return fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var dest, state string
		var n int64
		if err := rows.Scan(&dest, &state, &n); err != nil {
			return fmt.Errorf("count jobs: %w", err)
		}
		c := s.countsFor(dest)
		switch State(state) {
		case StatePending:
			c.pending += n
		case StateExecuting:
			c.executing += n
		case StateFailed:
			c.failed += n
		case "inbox":
			c.pending += n
			c.inbox += n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count jobs: %w", err)
	}
	return nil
}

// countsFor returns dest's counters, creating them. Callers hold statsMu
// (or own s exclusively, as during open).
func (s *SQLite) countsFor(dest string) *destCounts {
	c := s.counts[dest]
	if c == nil {
		c = &destCounts{}
		s.counts[dest] = c
	}
	return c
}

// Close stops accepting requests, lets the writer commit everything already
// submitted, checkpoints the WAL into the database file and closes it.
// Calling it again returns the first call's result.
func (s *SQLite) Close() error {
	s.closeOne.Do(func() {
		s.closeMu.Lock()
		s.closed = true
		s.closeMu.Unlock()
		// Submitters that passed the closed check finish their send (the
		// writer is still draining), then nobody sends again.
		s.inflight.Wait()
		close(s.reqs)
		<-s.writerDone
		close(s.stopCheckpoints)
		<-s.checkpointsDone
		var errs []error
		for _, st := range s.stmts {
			errs = append(errs, st.Close())
		}
		if _, err := s.wdb.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			errs = append(errs, fmt.Errorf("checkpoint: %w", err))
		}
		errs = append(errs, s.closeDBs())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close queue %q: %w", s.path, err)
		}
	})
	return s.closeErr
}

func (s *SQLite) closeDBs() error {
	var errs []error
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.cdb != nil {
		errs = append(errs, s.cdb.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	return errors.Join(errs...)
}

var _ Queue = (*SQLite)(nil)
