package store_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo/kapi"
	"github.com/relaycdp/relay/internal/klaviyo/openapi"
)

// Several nodes reserving slots of one bucket through their own
// connections get slots that respect both windows together, and a block
// recorded by one is seen by all.
func TestPostgresRateLimiter(t *testing.T) {
	dsn := pgSchema(t)
	ctx := context.Background()
	b := kapi.Bucket{KeyHash: "ab12", Endpoint: "POST /api/event-bulk-create-jobs",
		Limit: openapi.Limit{BurstPerSecond: 10, SteadyPerMin: 150}, Burst: time.Second, Steady: time.Minute, Margin: 100 * time.Millisecond}
	var (
		mu    sync.Mutex
		slots []time.Time
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range 3 {
		s := openPostgres(t, dsn)
		defer s.Close()
		l := s.RateLimiter()
		for range 3 {
			wg.Go(func() {
				for range 20 {
					slot, ok, err := l.Reserve(ctx, b, time.Now(), time.Time{})
					if err != nil || !ok {
						t.Errorf("Reserve: %v %v", ok, err)
						return
					}
					mu.Lock()
					slots = append(slots, slot)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	sort.Slice(slots, func(i, j int) bool { return slots[i].Before(slots[j]) })
	if len(slots) != 180 {
		t.Fatalf("%d slots, want 180", len(slots))
	}
	if n := maxIn(slots, b.Burst+b.Margin); n > 10 {
		t.Errorf("%d slots within %v, burst limit 10", n, b.Burst+b.Margin)
	}
	if n := maxIn(slots, b.Steady+b.Margin); n > 150 {
		t.Errorf("%d slots within %v, steady limit 150", n, b.Steady+b.Margin)
	}
	if slots[0].Before(start.Add(-time.Millisecond)) {
		t.Errorf("first slot %v is before the start", slots[0])
	}

	s := openPostgres(t, dsn)
	defer s.Close()
	l := s.RateLimiter()
	node2 := openPostgres(t, dsn)
	defer node2.Close()
	other := node2.RateLimiter()
	now := time.Now()
	until, err := l.Block(ctx, b, now, 2*time.Second, time.Second)
	if err != nil || !until.Equal(now.Add(2*time.Second)) {
		t.Fatalf("Block = %v, %v", until, err)
	}
	if got, err := other.BlockedUntil(ctx, b); err != nil || !got.Equal(until) {
		t.Errorf("other node sees block until %v, %v; want %v", got, err, until)
	}
	if slot, _, err := other.Reserve(ctx, b, now, time.Time{}); err != nil || slot.Before(until) {
		t.Errorf("other node's slot %v, %v; want at or after the block's end %v", slot, err, until)
	}
	if err := other.Succeeded(ctx, b); err != nil {
		t.Error(err)
	}
}

func maxIn(ts []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j].Sub(ts[i]) < w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}
