package queuetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/testutil"
)

func testStats(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	ctx := context.Background()
	if st := stats(t, q); st.Depth != 0 || st.OldestAge != 0 || len(st.ByDest) != 0 {
		t.Errorf("empty queue stats: %+v", st)
	}
	var msgs []queue.Message
	for i, dest := range []string{"a", "a", "a", "a", "b"} {
		m := Msg(dest, "", i)
		m.ReceivedAt = time.Now()
		msgs = append(msgs, m)
	}
	msgs[0].ReceivedAt = time.Now().Add(-time.Hour)
	enqueue(t, q, msgs...)
	jobs := claim(t, q, "a", 3, hour)
	if err := q.Retry(ctx, ids(jobs[1:2]), time.Now().Add(hour), "x"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := q.Abort(ctx, ids(jobs[2:3]), "y"); err != nil {
		t.Fatalf("abort: %v", err)
	}
	st := stats(t, q)
	want := queue.Stats{Depth: 4, Pending: 2, Executing: 1, Failed: 1, ByDest: map[string]int64{"a": 3, "b": 1}}
	got := st
	got.OldestAge = 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if st.OldestAge < time.Hour || st.OldestAge > 2*time.Hour {
		t.Errorf("oldest age %v, want about an hour", st.OldestAge)
	}
	// Once the hour-old job succeeds, the oldest is a recent one.
	if err := q.Succeed(ctx, ids(jobs[:1])); err != nil {
		t.Fatalf("succeed: %v", err)
	}
	if st := stats(t, q); st.Depth != 3 || st.OldestAge >= time.Hour {
		t.Errorf("after succeed: depth %d oldest age %v; want 3 and less than the hour-old job", st.Depth, st.OldestAge)
	}
}

func testReopen(t *testing.T, open Open) {
	dir := t.TempDir()
	ctx := context.Background()
	in := []queue.Message{
		Msg("a", "k", 1), Msg("a", "j", 2), Msg("a", "k", 3), Msg("a", "", 4), Msg("b", "k", 5),
	}
	q1 := open(t, dir)
	enqueue(t, q1, in...)
	jobs := claim(t, q1, "a", 3, 200*time.Millisecond) // 1, 2, 3
	if len(jobs) != 3 {
		t.Fatalf("claimed %d, want 3", len(jobs))
	}
	if err := q1.Retry(ctx, ids(jobs[0:1]), time.Now().Add(-time.Second), "boom"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := q1.Abort(ctx, ids(jobs[1:2]), "bad"); err != nil {
		t.Fatalf("abort: %v", err)
	}
	// jobs[2] stays executing when the queue closes.
	if err := q1.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	q2 := openQ(t, open, dir)
	if st := stats(t, q2); st.Depth != 4 {
		t.Errorf("after reopen: depth %d; want 4", st.Depth)
	}
	var got []queue.Job
	testutil.Eventually(t, 10*time.Second, "every unfinished job to be claimable after reopen", func() bool {
		got = append(got, claim(t, q2, "a", 10, hour)...)
		return len(got) >= 3
	})
	byMsg := map[string]queue.Job{}
	for _, j := range got {
		byMsg[j.MessageID] = j
	}
	for _, m := range []queue.Message{in[0], in[2], in[3]} {
		j, ok := byMsg[m.MessageID]
		if !ok {
			t.Errorf("message %s lost across reopen (claimed %v)", m.MessageID, msgIDs(got))
			continue
		}
		if diff := cmp.Diff(m, j.Message, messageOpts); diff != "" {
			t.Errorf("message %s changed across reopen (-want +got):\n%s", m.MessageID, diff)
		}
	}
	if j := byMsg[in[0].MessageID]; j.Attempts != 1 || j.LastError != "boom" {
		t.Errorf("retried job after reopen: attempts %d last error %q; want 1, %q", j.Attempts, j.LastError, "boom")
	}
	if len(got) != 3 {
		t.Errorf("claimed %v after reopen, want the 3 unfinished jobs of a", msgIDs(got))
	}
	if b := claim(t, q2, "b", 10, hour); len(b) != 1 || b[0].MessageID != in[4].MessageID {
		t.Errorf("claim b after reopen: %v", msgIDs(b))
	}
}

func testInvalid(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	ctx := context.Background()
	bad := Msg("", "k", 1)
	if err := q.Enqueue(ctx, []queue.Message{Msg("a", "", 1), bad}); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("enqueue with empty Dest: %v, want ErrInvalid", err)
	}
	if st := stats(t, q); st.Depth != 0 {
		t.Errorf("a rejected Enqueue stored %d jobs", st.Depth)
	}
	for _, c := range []struct {
		dest  string
		limit int
		lease time.Duration
	}{{"", 1, hour}, {"a", 0, hour}, {"a", 1, 0}} {
		if _, err := q.Claim(ctx, c.dest, c.limit, c.lease); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("Claim(%q, %d, %v): %v, want ErrInvalid", c.dest, c.limit, c.lease, err)
		}
	}
	if err := q.Enqueue(ctx, nil); err != nil {
		t.Errorf("empty Enqueue: %v", err)
	}
}

func testCanceled(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Enqueue(ctx, []queue.Message{Msg("a", "", 1)}); !errors.Is(err, context.Canceled) {
		t.Errorf("enqueue with canceled context: %v", err)
	}
	if _, err := q.Claim(ctx, "a", 1, hour); !errors.Is(err, context.Canceled) {
		t.Errorf("claim with canceled context: %v", err)
	}
	// The queue still works.
	enqueue(t, q, Msg("a", "", 2))
	if jobs := claim(t, q, "a", 10, hour); len(jobs) == 0 || jobs[len(jobs)-1].MessageID != "m-a-2" {
		t.Errorf("claim after canceled calls: %v", msgIDs(jobs))
	}
}

func testClosed(t *testing.T, open Open) {
	q := open(t, t.TempDir())
	enqueue(t, q, Msg("a", "", 1))
	if err := q.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ctx := context.Background()
	if err := q.Enqueue(ctx, []queue.Message{Msg("a", "", 2)}); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("enqueue after close: %v, want ErrClosed", err)
	}
	if _, err := q.Claim(ctx, "a", 1, hour); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("claim after close: %v, want ErrClosed", err)
	}
	if _, err := q.Stats(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("stats after close: %v, want ErrClosed", err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}
