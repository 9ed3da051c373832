package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/queue/queuetest"
)

// Regression: after every job succeeded (or was dropped) and the inbox
// rows were released, a reopened queue handed out ids below the expanded
// mark again, and the messages of that inbox row were never claimed.
func TestSQLiteReopenAfterDrainClaimsNewMessages(t *testing.T) {
	for _, drain := range []string{"succeed", "drop"} {
		t.Run(drain, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			q := openSQLite(t, dir, queue.SQLiteOptions{})
			if err := q.Enqueue(ctx, []queue.Message{queuetest.Msg("k", "a", 1), queuetest.Msg("k", "b", 2)}); err != nil {
				t.Fatal(err)
			}
			switch drain {
			case "succeed":
				jobs, err := q.Claim(ctx, "k", 10, time.Hour)
				if err != nil || len(jobs) != 2 {
					t.Fatalf("claim: %v %v", jobs, err)
				}
				if err := q.Succeed(ctx, []int64{jobs[0].ID, jobs[1].ID}); err != nil {
					t.Fatal(err)
				}
			case "drop":
				if d, err := q.Drop(ctx, "k", func(queue.Message) bool { return true }); err != nil || d.Dropped != 2 {
					t.Fatalf("drop: %+v %v", d, err)
				}
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			q = openSQLite(t, dir, queue.SQLiteOptions{})
			defer q.Close()
			if err := q.Enqueue(ctx, []queue.Message{queuetest.Msg("k", "a", 3)}); err != nil {
				t.Fatal(err)
			}
			jobs, err := q.Claim(ctx, "k", 10, time.Hour)
			if err != nil || len(jobs) != 1 || jobs[0].MessageID != "m-k-3" {
				t.Fatalf("after reopen: claimed %v, %v; the new message is stuck", jobs, err)
			}
		})
	}
}
