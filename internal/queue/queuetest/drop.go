package queuetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/testutil"
)

// testDrop: Drop deletes a destination's pending and failed jobs that
// match, counts the executing ones without touching them, and leaves
// other destinations and other users alone.
func testDrop(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	ctx := context.Background()
	enqueue(t, q, Msg("k", "u1", 1), Msg("k", "u2", 2), Msg("k", "u1", 3), Msg("k", "u1", 4), Msg("k", "u2", 5), Msg("other", "u1", 6))

	executing := claim(t, q, "k", 1, hour) // u1's first
	if len(executing) != 1 || executing[0].Key != "u1" {
		t.Fatalf("claimed %v", msgIDs(executing))
	}
	failing := claim(t, q, "k", 1, hour) // u2's first
	if len(failing) != 1 || failing[0].Key != "u2" {
		t.Fatalf("claimed %v", msgIDs(failing))
	}
	if err := q.Retry(ctx, ids(failing), time.Now().Add(time.Hour), "boom"); err != nil {
		t.Fatal(err)
	}

	byKey := func(key string) func(queue.Message) bool {
		return func(m queue.Message) bool { return m.Key == key && len(m.Payload) > 0 }
	}
	got, err := q.Drop(ctx, "k", byKey("u1"))
	if err != nil {
		t.Fatal(err)
	}
	if got != (queue.Dropped{Dropped: 2, InFlight: 1}) {
		t.Errorf("drop u1 = %+v, want 2 dropped, 1 in flight", got)
	}
	got, err = q.Drop(ctx, "k", byKey("u2"))
	if err != nil {
		t.Fatal(err)
	}
	if got != (queue.Dropped{Dropped: 2}) {
		t.Errorf("drop u2 (one failed, one pending) = %+v, want 2 dropped", got)
	}
	if err := q.Succeed(ctx, ids(executing)); err != nil {
		t.Fatal(err)
	}
	if got, err = q.Drop(ctx, "k", byKey("u1")); err != nil || got != (queue.Dropped{}) {
		t.Errorf("second drop = %+v, %v; want nothing", got, err)
	}
	if rest := claim(t, q, "k", 10, hour); len(rest) != 0 {
		t.Errorf("dropped jobs still claimable: %v", msgIDs(rest))
	}
	testutil.Eventually(t, 5*time.Second, "depth of k to reach 0", func() bool { return stats(t, q).ByDest["k"] == 0 })
	other := claim(t, q, "other", 10, hour)
	if len(other) != 1 || other[0].MessageID != "m-other-6" {
		t.Errorf("another destination's job was touched: %v", msgIDs(other))
	}

	if _, err := q.Drop(ctx, "", byKey("u1")); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("drop without dest: %v, want ErrInvalid", err)
	}
}
