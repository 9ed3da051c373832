package queue_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/queue/queuetest"
	"github.com/relaycdp/relay/internal/testutil"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openSQLite(t testing.TB, dir string, opts queue.SQLiteOptions) *queue.SQLite {
	t.Helper()
	q, err := queue.OpenSQLite(context.Background(), filepath.Join(dir, "queue.db"), opts, discard())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return q
}

func TestSQLiteConformance(t *testing.T) {
	queuetest.RunConformance(t, func(t *testing.T, dir string) queue.Queue {
		return openSQLite(t, dir, queue.SQLiteOptions{})
	})
}

// The suite again with a batch window and small batches (a different
// batching path from the default, which commits without waiting).
func TestSQLiteConformanceWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	queuetest.RunConformance(t, func(t *testing.T, dir string) queue.Queue {
		return openSQLite(t, dir, queue.SQLiteOptions{BatchWindow: 2 * time.Millisecond, BatchRows: 7})
	})
}

func closeQ(t testing.TB, q *queue.SQLite) {
	t.Helper()
	if err := q.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestOpenRejectsBadPath(t *testing.T) {
	for _, p := range []string{"", "a?b", "file:x.db", "x#y"} {
		if _, err := queue.OpenSQLite(context.Background(), p, queue.SQLiteOptions{}, discard()); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("OpenSQLite(%q): %v, want ErrInvalid", p, err)
		}
	}
}

// On a single node, jobs left executing by a dead process are pending
// again at open, at once, with their attempts unchanged.
func TestReopenResetsExecuting(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := openSQLite(t, dir, queue.SQLiteOptions{})
	if err := q.Enqueue(ctx, []queue.Message{queuetest.Msg("a", "k", 1), queuetest.Msg("a", "k", 2)}); err != nil {
		t.Fatal(err)
	}
	jobs, err := q.Claim(ctx, "a", 1, time.Hour)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	closeQ(t, q)

	q = openSQLite(t, dir, queue.SQLiteOptions{})
	defer closeQ(t, q)
	info, err := q.Get(ctx, jobs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != queue.StatePending || !info.LeaseUntil.IsZero() || info.Attempts != 0 {
		t.Errorf("after reopen: state %s lease %v attempts %d; want pending, zero, 0", info.State, info.LeaseUntil, info.Attempts)
	}
	again, err := q.Claim(ctx, "a", 10, time.Hour)
	if err != nil || len(again) != 2 || again[0].ID != jobs[0].ID {
		t.Fatalf("claim after reopen: %v %v", again, err)
	}
}

func TestGetList(t *testing.T) {
	q := openSQLite(t, t.TempDir(), queue.SQLiteOptions{})
	defer closeQ(t, q)
	ctx := context.Background()
	var msgs []queue.Message
	for i := range 6 {
		msgs = append(msgs, queuetest.Msg("a", "", i))
	}
	msgs = append(msgs, queuetest.Msg("b", "", 9))
	if err := q.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	jobs, err := q.Claim(ctx, "a", 3, time.Hour)
	if err != nil || len(jobs) != 3 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	if err := q.Abort(ctx, []int64{jobs[0].ID}, "dead"); err != nil {
		t.Fatal(err)
	}
	if err := q.Retry(ctx, []int64{jobs[1].ID}, time.Now().Add(time.Hour), "later"); err != nil {
		t.Fatal(err)
	}
	if err := q.Succeed(ctx, []int64{jobs[2].ID}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{jobs[0].ID, jobs[2].ID} {
		if _, err := q.Get(ctx, id); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("get aborted or succeeded job %d: %v, want ErrNotFound", id, err)
		}
	}
	info, err := q.Get(ctx, jobs[1].ID)
	if err != nil || info.State != queue.StateFailed || info.LastError != "later" || info.Attempts != 1 || info.RetryAt.IsZero() {
		t.Errorf("get failed job: %+v %v", info, err)
	}
	for _, tc := range []struct {
		f    queue.ListFilter
		want int
	}{
		{queue.ListFilter{}, 5},
		{queue.ListFilter{Dest: "a"}, 4},
		{queue.ListFilter{Dest: "a", State: queue.StatePending}, 3},
		{queue.ListFilter{State: queue.StatePending}, 4},
		{queue.ListFilter{Dest: "a", State: queue.StateFailed}, 1},
		{queue.ListFilter{Limit: 2}, 2},
		{queue.ListFilter{AfterID: jobs[2].ID}, 4},
		{queue.ListFilter{AfterID: jobs[0].ID}, 5},
	} {
		got, err := q.List(ctx, tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("List(%+v) = %d jobs, %v; want %d", tc.f, len(got), err, tc.want)
		}
	}
	if _, err := q.List(ctx, queue.ListFilter{State: "bogus"}); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("list bogus state: %v", err)
	}

	if err := q.Compact(ctx, 0); err != nil {
		t.Errorf("compact: %v", err)
	}
	if d, err := q.Depth(ctx); err != nil || d != 5 {
		t.Errorf("depth: %d %v", d, err)
	}
}

// Close commits every Enqueue already submitted, and later ones get
// ErrClosed; nothing acknowledged is lost.
func TestCloseDrains(t *testing.T) {
	dir := t.TempDir()
	q := openSQLite(t, dir, queue.SQLiteOptions{BatchWindow: 5 * time.Millisecond})
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for p := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				err := q.Enqueue(ctx, []queue.Message{queuetest.Msg("a", "", p*100000+i)})
				if errors.Is(err, queue.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("enqueue: %v", err)
					return
				}
				mu.Lock()
				acked++
				mu.Unlock()
			}
		})
	}
	testutil.Eventually(t, 10*time.Second, "some enqueues", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return acked > 50
	})
	closeQ(t, q)
	wg.Wait()
	q = openSQLite(t, dir, queue.SQLiteOptions{})
	defer closeQ(t, q)
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Depth < int64(acked) {
		t.Errorf("depth %d after reopen, but %d enqueues were acknowledged", st.Depth, acked)
	}
}

// A context that ends while its request waits for the batch returns at
// once, and the other requests of the batch are unaffected.
func TestContextEndsWhileWaiting(t *testing.T) {
	q := openSQLite(t, t.TempDir(), queue.SQLiteOptions{BatchWindow: 200 * time.Millisecond, BatchRows: 1 << 20})
	defer closeQ(t, q)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	go func() { errc <- q.Enqueue(ctx, []queue.Message{queuetest.Msg("a", "", 1)}) }()
	go func() { errc <- q.Enqueue(context.Background(), []queue.Message{queuetest.Msg("a", "", 2)}) }()
	cancel()
	var canceled, ok int
	for range 2 {
		switch err := <-errc; {
		case err == nil:
			ok++
		case errors.Is(err, context.Canceled):
			canceled++
		default:
			t.Errorf("enqueue: %v", err)
		}
	}
	if ok != 1 || canceled != 1 {
		t.Errorf("%d ok, %d canceled; want 1 each", ok, canceled)
	}
	// The database is consistent: the counters match the rows, and the
	// canceled message is there at most once.
	st, _ := q.Stats(context.Background())
	all, err := q.List(context.Background(), queue.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(all)) != st.Depth || st.Depth < 1 || st.Depth > 2 {
		t.Errorf("depth %d, rows %d", st.Depth, len(all))
	}
}

// The statements that run constantly use the indexes, not table scans.
func TestQueryPlans(t *testing.T) {
	q := openSQLite(t, t.TempDir(), queue.SQLiteOptions{})
	defer closeQ(t, q)
	for name, plan := range q.ExplainHotQueries(context.Background()) {
		for _, line := range strings.Split(plan, "\n") {
			// "SCAN jobs USING INDEX jobs_aborted" (forget-aborted) walks only
			// old dead letters; a bare "SCAN jobs" reads the whole table.
			if strings.TrimSpace(line) == "SCAN jobs" || strings.Contains(line, "TEMP B-TREE") || strings.Contains(line, "failed") {
				t.Errorf("%s plan scans the table or sorts:\n%s", name, plan)
			}
		}
		t.Logf("%s:\n%s", name, plan)
	}
}

// A request that fails inside a shared batch gets its error; the other
// requests of the batch commit, and the counters match the rows.
func TestFailingRequestIsIsolated(t *testing.T) {
	q := openSQLite(t, t.TempDir(), queue.SQLiteOptions{BatchWindow: 50 * time.Millisecond, BatchRows: 1 << 20})
	defer closeQ(t, q)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 9)
	for i := range 8 {
		wg.Go(func() {
			errs[i] = q.Enqueue(ctx, []queue.Message{queuetest.Msg("a", "", i), queuetest.Msg("b", "", i)})
		})
	}
	wg.Go(func() { errs[8] = q.SubmitFailing(ctx) })
	wg.Wait()
	for i, err := range errs[:8] {
		if err != nil {
			t.Errorf("enqueue %d: %v", i, err)
		}
	}
	if errs[8] == nil || !strings.Contains(errs[8].Error(), "no_such_table") {
		t.Errorf("failing request: %v", errs[8])
	}
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := q.List(ctx, queue.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Depth != 16 || len(all) != 16 || st.ByDest["a"] != 8 {
		t.Errorf("depth %d, rows %d, by dest %v; want 16, 16, a:8", st.Depth, len(all), st.ByDest)
	}
	commits, _ := q.CommitStats()
	t.Logf("%d commits", commits)
}

// A batch that mixes requests needing fsync (Enqueue) with delivery's
// bookkeeping commits them in two transactions: the bookkeeping does not
// wait for an fsync it does not need, and Enqueue does not wait for the
// bookkeeping's statements.
func TestSyncedAndUnsyncedCommitApart(t *testing.T) {
	q := openSQLite(t, t.TempDir(), queue.SQLiteOptions{BatchWindow: 100 * time.Millisecond, BatchRows: 1 << 20})
	defer closeQ(t, q)
	ctx := context.Background()
	var mu sync.Mutex
	fsync := map[string]bool{}
	probe := func(name string) func(bool) {
		return func(f bool) {
			mu.Lock()
			defer mu.Unlock()
			fsync[name] = f
		}
	}
	before, _ := q.CommitStats()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Go(func() { errs[0] = q.SubmitProbe(ctx, false, probe("bookkeeping")) })
	wg.Go(func() { errs[1] = q.SubmitProbe(ctx, true, probe("durable")) })
	wg.Go(func() { errs[2] = q.Enqueue(ctx, []queue.Message{queuetest.Msg("a", "", 1)}) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if want := map[string]bool{"bookkeeping": false, "durable": true}; !maps.Equal(fsync, want) {
		t.Errorf("fsync per request = %v, want %v", fsync, want)
	}
	if after, _ := q.CommitStats(); after-before < 2 {
		t.Errorf("%d commits for a synced and an unsynced request, want 2", after-before)
	}
}

// MaxClaimScan bounds a claim's walk: with more held-back jobs than that
// ahead, a free job is not reached until the blocking job finishes.
func TestMaxClaimScan(t *testing.T) {
	q := openSQLite(t, t.TempDir(), queue.SQLiteOptions{MaxClaimScan: 10})
	defer closeQ(t, q)
	ctx := context.Background()
	var msgs []queue.Message
	for i := range 21 {
		msgs = append(msgs, queuetest.Msg("a", "hot", i))
	}
	msgs = append(msgs, queuetest.Msg("a", "free", 99))
	if err := q.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	head, err := q.Claim(ctx, "a", 1, time.Hour)
	if err != nil || len(head) != 1 {
		t.Fatalf("claim head: %v %v", head, err)
	}
	if got, err := q.Claim(ctx, "a", 5, time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("claim within the scan bound: %v %v; want none", got, err)
	}
	if err := q.Succeed(ctx, ids(head)); err != nil {
		t.Fatal(err)
	}
	got, err := q.Claim(ctx, "a", 5, time.Hour)
	if err != nil || len(got) != 5 || got[0].MessageID != "m-a-1" {
		t.Fatalf("claim after the head finished: %v %v", got, err)
	}
}

// A claim larger than one writer chunk is leased over several
// transactions: it must still return every due job once, in id order,
// with payloads, keep per-key order, and count them right.
func TestClaimAcrossWriterChunks(t *testing.T) {
	q := openSQLite(t, t.TempDir(), queue.SQLiteOptions{})
	defer closeQ(t, q)
	ctx := context.Background()
	var msgs []queue.Message
	for i := range 700 {
		msgs = append(msgs, queuetest.Msg("a", fmt.Sprintf("k%d", i%50), i))
	}
	if err := q.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	got, err := q.Claim(ctx, "a", 650, time.Hour)
	if err != nil || len(got) != 650 {
		t.Fatalf("claim: %d jobs, %v", len(got), err)
	}
	for i, j := range got {
		if want := msgs[i]; j.MessageID != want.MessageID || string(j.Payload) != string(want.Payload) || j.Key != want.Key {
			t.Fatalf("job %d = %s %q, want %s %q", i, j.MessageID, j.Payload, want.MessageID, want.Payload)
		}
		if i > 0 && j.ID <= got[i-1].ID {
			t.Fatalf("jobs out of id order at %d", i)
		}
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Executing != 650 || st.Pending != 50 {
		t.Fatalf("stats = %+v, %v; want 650 executing, 50 pending", st, err)
	}
	// The rest are held back behind their keys' executing jobs.
	if more, err := q.Claim(ctx, "a", 100, time.Hour); err != nil || len(more) != 0 {
		t.Fatalf("second claim: %d jobs, %v; want none (keys busy)", len(more), err)
	}
	if err := q.Succeed(ctx, ids(got)); err != nil {
		t.Fatal(err)
	}
	more, err := q.Claim(ctx, "a", 100, time.Hour)
	if err != nil || len(more) != 50 || more[0].MessageID != "m-a-650" {
		t.Fatalf("claim after succeed: %d jobs, %v", len(more), err)
	}
	if st, _ := q.Stats(ctx); st.Executing != 50 || st.Pending != 0 || st.Depth != 50 {
		t.Fatalf("stats after = %+v", st)
	}
}

// A queue file written by version 1 (payloads inline in jobs) opens with
// its jobs intact and claimable.
func TestUpgradeFromSchemaV1(t *testing.T) {
	q := upgraded(t, []string{
		`PRAGMA journal_mode=WAL`,
		`CREATE TABLE jobs (id INTEGER PRIMARY KEY, source TEXT NOT NULL, dest TEXT NOT NULL, key TEXT NOT NULL,
			message_id TEXT NOT NULL, payload BLOB NOT NULL, received_at INTEGER NOT NULL, state TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0, retry_at INTEGER NOT NULL DEFAULT 0, lease_until INTEGER NOT NULL DEFAULT 0,
			last_error TEXT NOT NULL DEFAULT '', updated_at INTEGER NOT NULL)`,
		`CREATE INDEX jobs_open ON jobs (dest, id, key, state, retry_at, lease_until) WHERE state IN ('pending','executing','failed')`,
		`CREATE INDEX jobs_aborted ON jobs (dest, id) WHERE state = 'aborted'`,
		`INSERT INTO jobs (id, source, dest, key, message_id, payload, received_at, state, updated_at) VALUES
			(7, 'web', 'a', 'u1', 'm7', '{"n":7}', 1, 'pending', 1),
			(9, 'web', 'a', 'u2', 'm9', '{"n":9}', 1, 'aborted', 1)`,
		`PRAGMA user_version = 1`,
	}, nil)
	defer closeQ(t, q)
	ctx := context.Background()
	got, err := q.Claim(ctx, "a", 10, time.Hour)
	if err != nil || len(got) != 2 || got[0].ID != 7 || string(got[0].Payload) != `{"n":7}` || got[1].ID <= 7 {
		t.Fatalf("claim after upgrade: %+v, %v", got, err)
	}
	// Version 1 kept dead letters as aborted rows; their dead letters are
	// in the store, so the queue forgets them and their payloads.
	if _, err := q.Get(ctx, 9); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("old aborted job after upgrade: %v, want ErrNotFound", err)
	}
	if n := tableRows(t, q, "payloads WHERE id = 9"); n != 0 {
		t.Errorf("old aborted job's payload still stored")
	}
}

// Enqueued messages wait in the inbox until a claim needs them; meanwhile
// Get, List and Stats see them as pending jobs, and one call's messages for
// two destinations keep slice order per destination.
func TestInboxMessagesAreJobs(t *testing.T) {
	q := openSQLite(t, t.TempDir(), queue.SQLiteOptions{})
	defer closeQ(t, q)
	ctx := context.Background()
	old := time.Now().Add(-time.Minute)
	msgs := []queue.Message{queuetest.Msg("a", "u1", 1), queuetest.Msg("b", "u1", 2), queuetest.Msg("a", "u2", 3), queuetest.Msg("b", "u2", 4)}
	msgs[0].ReceivedAt = old
	if err := q.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Pending != 4 || st.ByDest["a"] != 2 || st.OldestAge < 50*time.Second {
		t.Fatalf("stats %+v, %v", st, err)
	}
	all, err := q.List(ctx, queue.ListFilter{})
	if err != nil || len(all) != 4 {
		t.Fatalf("list: %d, %v", len(all), err)
	}
	var got []string
	for _, j := range all {
		got = append(got, j.Dest+":"+j.MessageID)
		if j.State != queue.StatePending {
			t.Errorf("%d is %s", j.ID, j.State)
		}
	}
	if want := "a:m-a-1 a:m-a-3 b:m-b-2 b:m-b-4"; strings.Join(got, " ") != want {
		t.Errorf("list order %q, want %q", strings.Join(got, " "), want)
	}
	page, err := q.List(ctx, queue.ListFilter{Dest: "b", AfterID: all[2].ID, Limit: 5})
	if err != nil || len(page) != 1 || page[0].MessageID != "m-b-4" {
		t.Errorf("list b after %d: %+v, %v", all[2].ID, page, err)
	}
	one, err := q.Get(ctx, all[1].ID)
	if err != nil || one.MessageID != "m-a-3" || string(one.Payload) != string(msgs[2].Payload) || one.ReceivedAt.IsZero() {
		t.Errorf("get from inbox: %+v, %v", one, err)
	}
	if _, err := q.Get(ctx, all[3].ID+1); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("get past the inbox: %v", err)
	}
	jobs := claim(t, q, "b", 10)
	if len(jobs) != 2 || jobs[0].MessageID != "m-b-2" || jobs[1].MessageID != "m-b-4" || !jobs[0].ReceivedAt.Equal(all[2].ReceivedAt) {
		t.Fatalf("claim b: %+v", jobs)
	}
	// a's messages were expanded on the way; they are still pending.
	if st, _ := q.Stats(ctx); st.Pending != 2 || st.Executing != 2 {
		t.Errorf("stats after claim %+v", st)
	}
}

// A key with a job already claimed holds back its later messages, whether
// they are job rows or still in the inbox.
func TestInboxKeepsKeyOrder(t *testing.T) {
	q := openSQLite(t, t.TempDir(), queue.SQLiteOptions{})
	defer closeQ(t, q)
	ctx := context.Background()
	if err := q.Enqueue(ctx, []queue.Message{queuetest.Msg("a", "hot", 1)}); err != nil {
		t.Fatal(err)
	}
	first := claim(t, q, "a", 1)
	if err := q.Enqueue(ctx, []queue.Message{queuetest.Msg("a", "hot", 2), queuetest.Msg("a", "cold", 3)}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, q, "a", 10); len(got) != 1 || got[0].MessageID != "m-a-3" {
		t.Fatalf("claim while hot is executing: %+v", got)
	}
	if err := q.Succeed(ctx, []int64{first[0].ID}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, q, "a", 10); len(got) != 1 || got[0].MessageID != "m-a-2" {
		t.Fatalf("claim after hot finished: %+v", got)
	}
}

// A damaged inbox row fails claims with an error that names it; nothing is
// deleted, and the queue keeps accepting messages.
func TestDamagedInboxRow(t *testing.T) {
	dir := t.TempDir()
	q := openSQLite(t, dir, queue.SQLiteOptions{})
	if err := q.Enqueue(context.Background(), []queue.Message{queuetest.Msg("a", "u", 1)}); err != nil {
		t.Fatal(err)
	}
	closeQ(t, q)
	db, err := sql.Open("sqlite", filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE inbox SET data = x'01ffff'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	q = openSQLite(t, dir, queue.SQLiteOptions{})
	defer closeQ(t, q)
	ctx := context.Background()
	_, err = q.Claim(ctx, "a", 10, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "inbox row 1") || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("claim of a damaged row: %v", err)
	}
	if err := q.Enqueue(ctx, []queue.Message{queuetest.Msg("a", "u", 2)}); err != nil {
		t.Fatalf("enqueue after damage: %v", err)
	}
	if st, _ := q.Stats(ctx); st.Pending != 2 {
		t.Errorf("pending %d, want 2 (nothing dropped)", st.Pending)
	}
}

func claim(t *testing.T, q *queue.SQLite, dest string, limit int) []queue.Job {
	t.Helper()
	jobs, err := q.Claim(context.Background(), dest, limit, time.Hour)
	if err != nil {
		t.Fatalf("claim %s: %v", dest, err)
	}
	return jobs
}

// Expanded jobs read their payloads from the inbox row they came from; the
// row goes once none of them needs it, and a dead letter keeps its payload
// after that.
func TestInboxRowsAreReleased(t *testing.T) {
	dir := t.TempDir()
	q := openSQLite(t, dir, queue.SQLiteOptions{})
	ctx := context.Background()
	msgs := []queue.Message{queuetest.Msg("a", "u1", 1), queuetest.Msg("a", "u2", 2), queuetest.Msg("a", "u3", 3)}
	if err := q.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	jobs := claim(t, q, "a", 10)
	if len(jobs) != 3 {
		t.Fatalf("claimed %d", len(jobs))
	}
	for i, j := range jobs {
		if string(j.Payload) != string(msgs[i].Payload) {
			t.Errorf("job %d payload %q, want %q", i, j.Payload, msgs[i].Payload)
		}
	}
	if err := q.Abort(ctx, []int64{jobs[0].ID}, "bad"); err != nil {
		t.Fatal(err)
	}
	if err := q.Retry(ctx, []int64{jobs[1].ID}, time.Now(), "later"); err != nil {
		t.Fatal(err)
	}
	if err := q.Succeed(ctx, []int64{jobs[2].ID}); err != nil {
		t.Fatal(err)
	}
	if n := inboxRows(t, q); n != 1 {
		t.Fatalf("%d inbox rows while a retry still reads from it, want 1", n)
	}
	again := claim(t, q, "a", 10)
	if len(again) != 1 || string(again[0].Payload) != string(msgs[1].Payload) {
		t.Fatalf("retried job: %+v", again)
	}
	if err := q.Succeed(ctx, []int64{again[0].ID}); err != nil {
		t.Fatal(err)
	}
	if n := inboxRows(t, q); n != 0 {
		t.Errorf("%d inbox rows after every job finished, want 0", n)
	}
	// The aborted job went with its payload (its dead letter is in the
	// store): queue.db keeps nothing of it, then or after a reopen.
	if _, err := q.Get(ctx, jobs[0].ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("aborted job: %v, want ErrNotFound", err)
	}
	for _, table := range []string{"jobs", "payloads", "inbox"} {
		if n := tableRows(t, q, table); n != 0 {
			t.Errorf("%d rows in %s after every job finished, want 0", n, table)
		}
	}
	closeQ(t, q)
	q = openSQLite(t, dir, queue.SQLiteOptions{})
	defer closeQ(t, q)
	if got := claim(t, q, "a", 10); len(got) != 0 {
		t.Fatalf("claim after reopen: %+v", got)
	}
	if st, _ := q.Stats(ctx); st.Depth != 0 {
		t.Errorf("stats after reopen %+v", st)
	}
}

// tableRows counts the rows of a table (or "table WHERE …") through a
// second connection.
func tableRows(t *testing.T, q *queue.SQLite, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", q.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// inboxRows counts the rows of the inbox table through a second
// connection.
func inboxRows(t *testing.T, q *queue.SQLite) int {
	t.Helper()
	db, err := sql.Open("sqlite", q.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM inbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Queue files of versions 2 (payloads in their own table) and 3 (an inbox
// whose rows were deleted on expansion) open with their jobs and inbox
// messages intact and claimable in order.
func TestUpgradeFromSchemaV2AndV3(t *testing.T) {
	v2 := []string{
		`PRAGMA journal_mode=WAL`,
		`CREATE TABLE jobs (id INTEGER PRIMARY KEY, source TEXT NOT NULL, dest TEXT NOT NULL, key TEXT NOT NULL,
			message_id TEXT NOT NULL, received_at INTEGER NOT NULL, state TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0, retry_at INTEGER NOT NULL DEFAULT 0, lease_until INTEGER NOT NULL DEFAULT 0,
			last_error TEXT NOT NULL DEFAULT '', updated_at INTEGER NOT NULL)`,
		`CREATE INDEX jobs_open ON jobs (dest, id, key, state, retry_at, lease_until) WHERE state IN ('pending','executing','failed')`,
		`CREATE INDEX jobs_aborted ON jobs (dest, id) WHERE state = 'aborted'`,
		`CREATE TABLE payloads (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)`,
		`CREATE TRIGGER jobs_payload_gone AFTER DELETE ON jobs BEGIN DELETE FROM payloads WHERE id = OLD.id; END`,
		`INSERT INTO jobs (id, source, dest, key, message_id, received_at, state, updated_at) VALUES
			(7, 'web', 'a', 'u1', 'm7', 1, 'pending', 1)`,
		`INSERT INTO payloads (id, payload) VALUES (7, '{"n":7}')`,
	}
	for _, tc := range []struct {
		version int
		extra   []string
		want    []string // message ids claimed, in order
	}{
		{2, nil, []string{"m7", "m-a-1"}},
		{3, []string{
			`CREATE TABLE inbox (id INTEGER PRIMARY KEY, dest TEXT NOT NULL, n INTEGER NOT NULL,
				enqueued_at INTEGER NOT NULL, received_at INTEGER NOT NULL, data BLOB NOT NULL)`,
			`CREATE INDEX inbox_dest ON inbox (dest, id)`,
		}, []string{"m7", "m8", "m-a-1"}},
	} {
		t.Run(fmt.Sprint("v", tc.version), func(t *testing.T) {
			var more func(db *sql.DB) error
			if tc.version == 3 {
				more = func(db *sql.DB) error {
					blob := queue.EncodeInboxForTest([]queue.Message{{Source: "web", Dest: "a", Key: "u2", MessageID: "m8", Payload: []byte(`{"n":8}`)}})
					_, err := db.Exec(`INSERT INTO inbox VALUES (8, 'a', 1, 1, 1, ?)`, blob)
					return err
				}
			}
			q := upgraded(t, append(append(slices.Clone(v2), tc.extra...), fmt.Sprintf("PRAGMA user_version = %d", tc.version)), more)
			defer closeQ(t, q)
			ctx := context.Background()
			got := claim(t, q, "a", 10)
			var ids []string
			for _, j := range got {
				ids = append(ids, j.MessageID)
			}
			if strings.Join(ids, " ") != strings.Join(tc.want, " ") || string(got[0].Payload) != `{"n":7}` {
				t.Fatalf("claimed %v (first payload %s), want %v", ids, got[0].Payload, tc.want)
			}
			if tc.version == 3 && string(got[1].Payload) != `{"n":8}` {
				t.Errorf("v3 inbox payload %s", got[1].Payload)
			}
			if err := q.Succeed(ctx, []int64{got[0].ID, got[1].ID}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// upgraded writes a queue file of an earlier version with stmts (then
// more, when set), opens it with this version and enqueues one message
// (m-a-1, key u3).
func upgraded(t *testing.T, stmts []string, more func(db *sql.DB) error) *queue.SQLite {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range stmts {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if more != nil {
		if err := more(db); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	q := openSQLite(t, dir, queue.SQLiteOptions{})
	if err := q.Enqueue(context.Background(), []queue.Message{queuetest.Msg("a", "u3", 1)}); err != nil {
		t.Fatal(err)
	}
	return q
}

// After every job finished (no row left) and a reopen, new messages are
// claimable: ids continue after the inbox's expansion mark, not after the
// rows left, or new inbox rows would sit below the mark unexpanded.
func TestIdsContinueAfterDrainAndReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := openSQLite(t, dir, queue.SQLiteOptions{})
	if err := q.Enqueue(ctx, []queue.Message{queuetest.Msg("a", "", 1), queuetest.Msg("a", "", 2)}); err != nil {
		t.Fatal(err)
	}
	jobs := claim(t, q, "a", 10)
	if len(jobs) != 2 {
		t.Fatalf("claimed %d, want 2", len(jobs))
	}
	if err := q.Succeed(ctx, []int64{jobs[0].ID}); err != nil {
		t.Fatal(err)
	}
	if err := q.Abort(ctx, []int64{jobs[1].ID}, "dead"); err != nil {
		t.Fatal(err)
	}
	closeQ(t, q)
	q = openSQLite(t, dir, queue.SQLiteOptions{})
	defer closeQ(t, q)
	if err := q.Enqueue(ctx, []queue.Message{queuetest.Msg("a", "", 3)}); err != nil {
		t.Fatal(err)
	}
	got := claim(t, q, "a", 10)
	if len(got) != 1 || got[0].MessageID != "m-a-3" || got[0].ID <= jobs[1].ID {
		t.Fatalf("claim after drain and reopen: %+v; want m-a-3 with an id after %d", got, jobs[1].ID)
	}
}
