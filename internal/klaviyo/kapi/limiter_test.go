package kapi

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/openapi"
)

// maxInWindow returns the largest number of times in any half-open
// window [t, t+w) (times sorted).
func maxInWindow(ts []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j].Sub(ts[i]) < w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// TestBucketWindowsSimulated drives buckets with simulated time (no
// sleeping) for three minutes of saturating or random demand and checks
// that no window of Klaviyo's length plus the margin gets more than the
// limit, for every limit in the spec and some small ones, and that
// sustained throughput is at least 90% of the steady limit.
func TestBucketWindowsSimulated(t *testing.T) {
	limits, err := openapi.RateLimits()
	if err != nil {
		t.Fatal(err)
	}
	limits["small 1/2"] = openapi.Limit{BurstPerSecond: 1, SteadyPerMin: 2}
	limits["small 3/60"] = openapi.Limit{BurstPerSecond: 3, SteadyPerMin: 60}
	limits["burst-bound 2/600"] = openapi.Limit{BurstPerSecond: 2, SteadyPerMin: 600}
	w := windows{burst: burstWindow, steady: steadyWindow, margin: defaultWindowMargin}
	const span = 3 * time.Minute
	for name, l := range limits {
		for _, demand := range []string{"saturating", "random"} {
			t.Run(fmt.Sprintf("%s %d per s %d per min %s", name, l.BurstPerSecond, l.SteadyPerMin, demand), func(t *testing.T) {
				b := newBucket(l, w)
				rng := rand.New(rand.NewPCG(1, 2))
				t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				now := t0
				var slots []time.Time
				for now.Sub(t0) < span {
					slot, ok := b.reserve(now, time.Time{})
					if !ok {
						t.Fatal("reserve without deadline refused")
					}
					if slot.Before(now) {
						t.Fatalf("slot %v before request time %v", slot, now)
					}
					slots = append(slots, slot)
					now = slot // saturating: ask again as soon as served
					if demand == "random" {
						// Idle gaps let buckets refill; bursts drain them.
						now = now.Add(time.Duration(rng.ExpFloat64() * float64(time.Minute) / float64(l.SteadyPerMin) * 0.9))
					}
				}
				if got := maxInWindow(slots, w.burst+w.margin); got > l.BurstPerSecond {
					t.Errorf("%d requests in one %v window, limit %d", got, w.burst+w.margin, l.BurstPerSecond)
				}
				if got := maxInWindow(slots, w.steady+w.margin); got > l.SteadyPerMin {
					t.Errorf("%d requests in one %v window, limit %d", got, w.steady+w.margin, l.SteadyPerMin)
				}
				if demand == "saturating" {
					achieved := float64(len(slots)) / span.Minutes()
					ideal := min(float64(l.SteadyPerMin), 60*float64(l.BurstPerSecond))
					if achieved < 0.9*ideal {
						t.Errorf("sustained %.1f/min, want ≥ 90%% of %.0f", achieved, ideal)
					}
				}
			})
		}
	}
}

// TestNaiveCompositionOverruns documents why the buckets are not the
// usual "N per second with burst N, plus M per minute with burst M": under
// saturating demand that composition lets about twice the limit through
// within one window.
func TestNaiveCompositionOverruns(t *testing.T) {
	l := openapi.Limit{BurstPerSecond: 10, SteadyPerMin: 150}
	burst := rate.NewLimiter(rate.Limit(l.BurstPerSecond), l.BurstPerSecond)
	steady := rate.NewLimiter(rate.Limit(float64(l.SteadyPerMin)/60), l.SteadyPerMin)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var slots []time.Time
	for range 400 {
		r1, r2 := burst.ReserveN(t0, 1), steady.ReserveN(t0, 1)
		slots = append(slots, t0.Add(max(r1.DelayFrom(t0), r2.DelayFrom(t0))))
	}
	sort.Slice(slots, func(i, j int) bool { return slots[i].Before(slots[j]) })
	sec, min := maxInWindow(slots, time.Second), maxInWindow(slots, time.Minute)
	if sec <= l.BurstPerSecond || min <= l.SteadyPerMin {
		t.Errorf("naive composition stayed within limits (%d/s, %d/min); the bucket design note is stale", sec, min)
	}
	t.Logf("naive composition: %d in 1s (limit %d), %d in 1min (limit %d)", sec, l.BurstPerSecond, min, l.SteadyPerMin)
}

// arrivalServer records server-side arrival times.
type arrivalServer struct {
	mu       sync.Mutex
	arrivals []time.Time
}

func (s *arrivalServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.arrivals = append(s.arrivals, time.Now())
	s.mu.Unlock()
	writeJSON(w, 202, "")
}

func (s *arrivalServer) sorted() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := append([]time.Time(nil), s.arrivals...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	return ts
}

// TestRateLimitUnderLoad: concurrent callers on one endpoint and key,
// counted at the server. The client guarantees at most L sends in any
// window of W+margin, but a sleeper may wake late on a loaded machine,
// and a late send shortens the gap to the next one. So arrivals are counted
// over half the window and up to 1.25 L are tolerated there: a correct
// client fails only if several sends are more than W/2+margin late, while
// a limiter that lets a full bucket plus a window's refill through (about
// twice the limit, as the naive composition does) still fails. The exact bound is checked with simulated time in
// TestBucketWindowsSimulated. The steady case shortens the "minute" to
// 1.5s to stay fast.
func TestRateLimitUnderLoad(t *testing.T) {
	tests := []struct {
		name   string
		limit  openapi.Limit
		steady time.Duration
		window time.Duration // window and limit checked at the server
		max    int
		calls  int
	}{
		{"burst 10/s", openapi.Limit{BurstPerSecond: 10, SteadyPerMin: 100000}, steadyWindow, time.Second, 10, 24},
		{"steady 8 per 1.5s", openapi.Limit{BurstPerSecond: 1000, SteadyPerMin: 8}, 1500 * time.Millisecond, 1500 * time.Millisecond, 8, 18},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := &arrivalServer{}
			env := newEnv(t, srv, func(c *Config) {
				c.Limits = map[string]openapi.Limit{"POST /api/events": tc.limit}
			})
			env.c.win.steady = tc.steady
			ctx := ctxTimeout(t, 60*time.Second)
			const workers = 6
			work := make(chan struct{}, tc.calls)
			for range tc.calls {
				work <- struct{}{}
			}
			close(work)
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range work {
						if _, err := env.c.Do(ctx, testKey, klaviyo.Request{Method: "POST", Path: "/api/events", Body: json.RawMessage(`{}`)}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			ts := srv.sorted()
			if len(ts) != tc.calls {
				t.Fatalf("server saw %d requests, want %d", len(ts), tc.calls)
			}
			// A full limit plus a quarter within half a window: one
			// window's sends arriving late (a loaded machine; the suite
			// runs packages in parallel) bunch a few into the next, while
			// the naive composition lets about twice the limit through.
			if got, most := maxInWindow(ts, tc.window/2), tc.max+tc.max/4; got > most {
				t.Errorf("%d arrivals within %v, limit %d per %v (at most %d tolerated)", got, tc.window/2, tc.max, tc.window, most)
			}
			t.Logf("max %d arrivals per %v, %d per %v (limit %d); %d calls took %v", maxInWindow(ts, tc.window), tc.window,
				maxInWindow(ts, tc.window/2), tc.window/2, tc.max, len(ts), ts[len(ts)-1].Sub(ts[0]))
		})
	}
}
