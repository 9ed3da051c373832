// Package queuetest owns the conformance suite every queue.Queue
// implementation must pass (SQLite now, NATS JetStream later), so they
// behave the same to delivery and the gateway.
package queuetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/testutil"
)

// Open opens a queue storing its data under dir. The suite calls it with a
// fresh t.TempDir() per subtest, and again with the same dir after closing
// the first queue to check that committed state survives a reopen. The
// suite closes every queue it opens.
type Open func(t *testing.T, dir string) queue.Queue

// hour is the lease used where a lease must not expire during a test.
const hour = time.Hour

// RunConformance runs the suite against the implementation open returns.
func RunConformance(t *testing.T, open Open) {
	tests := []struct {
		name string
		run  func(t *testing.T, open Open)
	}{
		{"EnqueueClaimSucceed", testEnqueueClaimSucceed},
		{"PayloadBufferReused", testPayloadBufferReused},
		{"ClaimLimitAndDest", testClaimLimitAndDest},
		{"RetryTiming", testRetryTiming},
		{"Abort", testAbort},
		{"LeaseExpiryRedelivers", testLeaseExpiry},
		{"PerKeyOrdering", testPerKeyOrdering},
		{"OrderingModel", testOrderingModel},
		{"ConcurrentEnqueue", testConcurrentEnqueue},
		{"ConcurrentClaimers", testConcurrentClaimers},
		{"Stats", testStats},
		{"ReopenDurability", testReopen},
		{"InvalidArguments", testInvalid},
		{"CanceledContext", testCanceled},
		{"Closed", testClosed},
		{"Drop", testDrop},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}

// openQ opens a queue and closes it when the test ends (Close must be safe
// to call twice, since some tests close explicitly).
func openQ(t *testing.T, open Open, dir string) queue.Queue {
	t.Helper()
	q := open(t, dir)
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return q
}

// epoch is a fixed, whole-microsecond receive time so round trips compare
// exactly.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Msg builds a message for dest with ordering key key; n makes it unique.
func Msg(dest, key string, n int) queue.Message {
	return queue.Message{
		Source:     "web",
		Dest:       dest,
		Key:        key,
		MessageID:  fmt.Sprintf("m-%s-%d", dest, n),
		Payload:    fmt.Appendf(nil, `{"type":"track","event":"E%d","userId":%q}`, n, key),
		ReceivedAt: epoch.Add(time.Duration(n) * time.Millisecond),
	}
}

func enqueue(t *testing.T, q queue.Queue, msgs ...queue.Message) {
	t.Helper()
	if err := q.Enqueue(context.Background(), msgs); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}

func claim(t *testing.T, q queue.Queue, dest string, limit int, lease time.Duration) []queue.Job {
	t.Helper()
	jobs, err := q.Claim(context.Background(), dest, limit, lease)
	if err != nil {
		t.Fatalf("claim %s: %v", dest, err)
	}
	return jobs
}

func ids(jobs []queue.Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func msgIDs(jobs []queue.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.MessageID
	}
	return out
}

func stats(t *testing.T, q queue.Queue) queue.Stats {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return st
}

// messageOpts compares messages, times by instant.
var messageOpts = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func testEnqueueClaimSucceed(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	in := []queue.Message{Msg("a", "u1", 1), Msg("a", "u2", 2), Msg("b", "u1", 3), Msg("a", "", 4)}
	enqueue(t, q, in...)

	jobs := claim(t, q, "a", 10, hour)
	var got []queue.Message
	for i, j := range jobs {
		got = append(got, j.Message)
		if j.Attempts != 0 || j.LastError != "" {
			t.Errorf("job %d: attempts %d, last error %q; want 0 and empty", i, j.Attempts, j.LastError)
		}
		if i > 0 && j.ID <= jobs[i-1].ID {
			t.Errorf("ids not increasing: %v", ids(jobs))
		}
	}
	want := []queue.Message{in[0], in[1], in[3]}
	if diff := cmp.Diff(want, got, messageOpts); diff != "" {
		t.Fatalf("claimed messages (-want +got):\n%s", diff)
	}
	if again := claim(t, q, "a", 10, hour); len(again) != 0 {
		t.Fatalf("second claim returned executing jobs %v", msgIDs(again))
	}
	st := stats(t, q)
	if st.Depth != 4 || st.Executing != 3 || st.Pending != 1 {
		t.Errorf("stats after claim: depth %d executing %d pending %d; want 4, 3, 1", st.Depth, st.Executing, st.Pending)
	}
	if err := q.Succeed(context.Background(), ids(jobs)); err != nil {
		t.Fatalf("succeed: %v", err)
	}
	// A repeated ack and unknown ids are ignored.
	if err := q.Succeed(context.Background(), append(ids(jobs), 1<<40)); err != nil {
		t.Fatalf("repeated succeed: %v", err)
	}
	if again := claim(t, q, "a", 10, hour); len(again) != 0 {
		t.Fatalf("claim after succeed returned %v", msgIDs(again))
	}
	st = stats(t, q)
	if diff := cmp.Diff(map[string]int64{"b": 1}, st.ByDest); diff != "" || st.Depth != 1 || st.Executing != 0 {
		t.Errorf("stats after succeed: depth %d executing %d by dest (-want +got):\n%s", st.Depth, st.Executing, diff)
	}
	b := claim(t, q, "b", 10, hour)
	if diff := cmp.Diff([]queue.Message{in[2]}, []queue.Message{b[0].Message}, messageOpts); len(b) != 1 || diff != "" {
		t.Fatalf("claim b: %d jobs, (-want +got):\n%s", len(b), diff)
	}
}

// testPayloadBufferReused: once Enqueue returned nil the caller may write
// over the payloads' buffer (the gateway reuses it for the next request);
// what was enqueued must not change.
func testPayloadBufferReused(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	in := []queue.Message{Msg("a", "u1", 1), Msg("a", "u2", 2)}
	want := make([]queue.Message, len(in))
	var buf []byte
	for i, m := range in {
		want[i] = m
		start := len(buf)
		buf = append(buf, m.Payload...)
		in[i].Payload = buf[start:len(buf):len(buf)]
	}
	enqueue(t, q, in...)
	for i := range buf {
		buf[i] = 'x'
	}
	jobs := claim(t, q, "a", 10, hour)
	got := make([]queue.Message, len(jobs))
	for i, j := range jobs {
		got[i] = j.Message
	}
	if diff := cmp.Diff(want, got, messageOpts); diff != "" {
		t.Fatalf("claimed after the caller reused the payload buffer (-want +got):\n%s", diff)
	}
}

func testClaimLimitAndDest(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	for i := range 5 {
		enqueue(t, q, Msg("a", "", i))
	}
	enqueue(t, q, Msg("b", "", 100))
	var got []string
	for _, n := range []int{2, 2, 2} {
		jobs := claim(t, q, "a", n, hour)
		got = append(got, msgIDs(jobs)...)
	}
	want := []string{"m-a-0", "m-a-1", "m-a-2", "m-a-3", "m-a-4"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("claims of 2 (-want +got):\n%s", diff)
	}
	if jobs := claim(t, q, "nobody", 5, hour); len(jobs) != 0 {
		t.Fatalf("unknown dest returned %v", msgIDs(jobs))
	}
}

func testRetryTiming(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	ctx := context.Background()
	enqueue(t, q, Msg("a", "", 1), Msg("a", "", 2), Msg("a", "", 3))
	jobs := claim(t, q, "a", 3, hour)
	if len(jobs) != 3 {
		t.Fatalf("claimed %d, want 3", len(jobs))
	}
	if err := q.Retry(ctx, []int64{jobs[0].ID}, time.Now().Add(-time.Second), "boom 1"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := q.Retry(ctx, []int64{jobs[1].ID}, time.Now().Add(hour), "later"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := q.Retry(ctx, []int64{jobs[2].ID}, time.Now().Add(200*time.Millisecond), "soon"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if st := stats(t, q); st.Failed != 3 || st.Executing != 0 || st.Depth != 3 {
		t.Errorf("stats: failed %d executing %d depth %d; want 3, 0, 3", st.Failed, st.Executing, st.Depth)
	}
	// Only the retry that is already due comes back at once.
	got := claim(t, q, "a", 10, hour)
	if len(got) != 1 || got[0].ID != jobs[0].ID || got[0].Attempts != 1 || got[0].LastError != "boom 1" {
		t.Fatalf("claim after retry: %+v; want job %d with attempts 1 and last error %q", summarize(got), jobs[0].ID, "boom 1")
	}
	// Retry it again: attempts accumulate.
	if err := q.Retry(ctx, ids(got), time.Now().Add(-time.Second), "boom 2"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	var soon []queue.Job
	testutil.Eventually(t, 10*time.Second, "the 200ms retry to become due", func() bool {
		soon = append(soon, claim(t, q, "a", 10, hour)...)
		return slices.ContainsFunc(soon, func(j queue.Job) bool { return j.ID == jobs[2].ID })
	})
	for _, j := range soon {
		switch j.ID {
		case jobs[0].ID:
			if j.Attempts != 2 || j.LastError != "boom 2" {
				t.Errorf("twice-retried job: attempts %d last error %q; want 2, %q", j.Attempts, j.LastError, "boom 2")
			}
		case jobs[2].ID:
			if j.Attempts != 1 || j.LastError != "soon" {
				t.Errorf("timed retry: attempts %d last error %q; want 1, %q", j.Attempts, j.LastError, "soon")
			}
		default:
			t.Errorf("job %d (retry in an hour) was claimed", j.ID)
		}
	}
}

func summarize(jobs []queue.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, fmt.Sprintf("{id %d %s attempts %d err %q}", j.ID, j.MessageID, j.Attempts, j.LastError))
	}
	return out
}

// testAbort: Abort forgets dead-lettered jobs (queue.Queue.Abort): they
// leave Depth, never hold their key back and are never claimed again, not
// after their lease would have expired and not after a reopen.
func testAbort(t *testing.T, open Open) {
	dir := t.TempDir()
	q := open(t, dir)
	ctx := context.Background()
	enqueue(t, q, Msg("a", "k", 1), Msg("a", "k", 2))
	const lease = 200 * time.Millisecond
	first := claim(t, q, "a", 1, lease)
	if len(first) != 1 {
		t.Fatalf("claimed %d, want 1", len(first))
	}
	if err := q.Abort(ctx, ids(first), "invalid email"); err != nil {
		t.Fatalf("abort: %v", err)
	}
	if st := stats(t, q); st.Depth != 1 || st.Executing != 0 || st.ByDest["a"] != 1 {
		t.Errorf("stats after abort: %+v; want depth 1, nothing executing", st)
	}
	next := claim(t, q, "a", 10, hour)
	if diff := cmp.Diff([]string{"m-a-2"}, msgIDs(next)); diff != "" {
		t.Fatalf("claim after abort (-want +got):\n%s", diff)
	}
	if err := q.Succeed(ctx, ids(next)); err != nil {
		t.Fatalf("succeed: %v", err)
	}
	// Finishing an aborted job again changes nothing.
	if err := q.Succeed(ctx, ids(first)); err != nil {
		t.Fatalf("succeed aborted: %v", err)
	}
	if err := q.Abort(ctx, ids(first), "again"); err != nil {
		t.Fatalf("abort again: %v", err)
	}
	if st := stats(t, q); st.Depth != 0 {
		t.Errorf("stats: depth %d; want 0", st.Depth)
	}
	time.Sleep(2 * lease) // the aborted claim's lease would have expired
	if jobs := claim(t, q, "a", 10, hour); len(jobs) != 0 {
		t.Fatalf("claim after the lease returned %v", msgIDs(jobs))
	}
	if err := q.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	q2 := openQ(t, open, dir)
	if st := stats(t, q2); st.Depth != 0 {
		t.Errorf("after reopen: depth %d; want 0", st.Depth)
	}
	if jobs := claim(t, q2, "a", 10, hour); len(jobs) != 0 {
		t.Fatalf("claim after reopen returned %v", msgIDs(jobs))
	}
}

func testLeaseExpiry(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	enqueue(t, q, Msg("a", "k", 1), Msg("a", "k", 2))
	first := claim(t, q, "a", 1, 100*time.Millisecond)
	if len(first) != 1 {
		t.Fatalf("claimed %d, want 1", len(first))
	}
	// The worker "dies". Until its lease runs out, job 2 is held back
	// behind it; afterwards both come back, in order.
	var got []queue.Job
	testutil.Eventually(t, 10*time.Second, "the lease to expire", func() bool {
		got = claim(t, q, "a", 10, hour)
		return len(got) > 0
	})
	if diff := cmp.Diff([]string{"m-a-1", "m-a-2"}, msgIDs(got)); diff != "" {
		t.Fatalf("claim after lease expiry (-want +got):\n%s", diff)
	}
	if got[0].ID != first[0].ID || got[0].Attempts != 1 || got[1].Attempts != 0 {
		t.Errorf("redelivered %+v; want job %d with attempts 1 then a fresh job", summarize(got), first[0].ID)
	}
}

func testPerKeyOrdering(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	ctx := context.Background()
	enqueue(t, q,
		Msg("a", "k1", 1), Msg("a", "k2", 2), Msg("a", "k1", 3),
		Msg("a", "", 4), Msg("a", "k1", 5), Msg("a", "k2", 6), Msg("a", "", 7))
	step := func(limit int, want ...string) []queue.Job {
		t.Helper()
		jobs := claim(t, q, "a", limit, hour)
		if got := msgIDs(jobs); !slices.Equal(want, got) {
			t.Fatalf("claim(limit %d) = %v; want %v", limit, got, want)
		}
		return jobs
	}
	one := step(1, "m-a-1")
	// k1 is held behind executing job 1 (jobs 3 and 5); k2 and jobs
	// without a key flow.
	rest := step(10, "m-a-2", "m-a-4", "m-a-6", "m-a-7")
	if err := q.Succeed(ctx, ids(rest)); err != nil {
		t.Fatalf("succeed: %v", err)
	}
	// A failed job waiting for its retry holds its key too.
	if err := q.Retry(ctx, ids(one), time.Now().Add(hour), "later"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	step(10)

	// A due retry comes back with the jobs behind it, because it is
	// returned in the same claim; a job cut by limit is held behind them.
	enqueue(t, q, Msg("a", "k3", 10), Msg("a", "k3", 11), Msg("a", "k3", 12), Msg("a", "k4", 13))
	first := step(1, "m-a-10")
	if err := q.Retry(ctx, ids(first), time.Now().Add(-time.Second), "boom"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	two := step(2, "m-a-10", "m-a-11")
	step(10, "m-a-13") // 12 is behind 10 and 11
	if err := q.Succeed(ctx, ids(two[:1])); err != nil {
		t.Fatalf("succeed: %v", err)
	}
	step(10) // 12 is still behind 11
	if err := q.Abort(ctx, ids(two[1:]), "bad"); err != nil {
		t.Fatalf("abort: %v", err)
	}
	step(10, "m-a-12")
}
