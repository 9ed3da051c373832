package deliverytest

import (
	"context"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/store"
)

// Claims honour the limit and hand each job out once, in order.
func TestFakeQueueClaimsInOrderUpToLimit(t *testing.T) {
	ctx := context.Background()
	q := &FakeQueue{Jobs: []queue.Job{{ID: 1}, {ID: 2}, {ID: 3}}}
	for _, want := range [][]int64{{1, 2}, {3}, {}} {
		got, _ := q.Claim(ctx, "d", 2, time.Minute)
		if len(got) != len(want) {
			t.Fatalf("claimed %v, want IDs %v", got, want)
		}
		for i := range got {
			if got[i].ID != want[i] {
				t.Fatalf("claimed %v, want IDs %v", got, want)
			}
		}
	}
}

// The log keeps the latest entry of each message and every entry in order.
func TestFakeLogKeepsLatestAndAll(t *testing.T) {
	ctx := context.Background()
	l := &FakeLog{}
	_ = l.Record(ctx, []store.LogEntry{{MessageID: "a", Status: store.StatusRetrying}, {MessageID: "b", Status: store.StatusDelivered}})
	_ = l.Record(ctx, []store.LogEntry{{MessageID: "a", Status: store.StatusDelivered}})
	_ = l.AddDeadLetters(ctx, []store.DeadLetter{{MessageID: "c", Code: "x"}})
	if len(l.Entries) != 2 || l.Entries["a"].Status != store.StatusDelivered || len(l.Records) != 3 || l.Records[0].Status != store.StatusRetrying {
		t.Errorf("entries %+v, records %+v", l.Entries, l.Records)
	}
	if l.Dead["c"].Code != "x" || len(l.DeadLetters) != 1 {
		t.Errorf("dead %+v, dead letters %+v", l.Dead, l.DeadLetters)
	}
}
