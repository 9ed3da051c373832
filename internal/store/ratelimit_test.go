package store_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/ratelimit"
	"github.com/relaycdp/relay/internal/store"
)

// Several nodes reserving slots of one bucket through their own
// connections get slots that respect both windows together, and a block
// recorded by one is seen by all.
func TestPostgresRateLimiter(t *testing.T) {
	dsn := pgSchema(t)
	checkSharedLimiter(t, func(t *testing.T) (ratelimit.Limiter, func()) {
		s := openPostgres(t, dsn)
		return s.RateLimiter(), func() { s.Close() }
	})
}

// The same on SQLite, where the "nodes" are processes that follow one
// another on the same file (a restart after kill -9) or run beside each
// other (relay replay): a 429's block and the spent budget survive them.
func TestSQLiteRateLimiter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	checkSharedLimiter(t, func(t *testing.T) (ratelimit.Limiter, func()) {
		s, err := store.OpenSQLite(context.Background(), path, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return s.RateLimiter(), func() { s.Close() }
	})
}

// checkSharedLimiter runs three nodes' reservations against one bucket, then
// checks that one node's block binds another.
func checkSharedLimiter(t *testing.T, node func(t *testing.T) (ratelimit.Limiter, func())) {
	ctx := context.Background()
	b := ratelimit.Bucket{KeyHash: "ab12", Endpoint: "POST /api/event-bulk-create-jobs",
		Limit: ratelimit.Limit{BurstPerSecond: 10, SteadyPerMin: 150}, Burst: time.Second, Steady: time.Minute, Margin: 100 * time.Millisecond}
	var (
		mu    sync.Mutex
		slots []time.Time
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range 3 {
		l, done := node(t)
		defer done()
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

	l, done := node(t)
	defer done()
	other, done2 := node(t)
	defer done2()
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
