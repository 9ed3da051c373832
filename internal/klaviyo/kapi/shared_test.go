package kapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/openapi"
)

// memLimiter is a Limiter kept in one map, standing in for a database
// shared by several processes.
type memLimiter struct {
	mu sync.Mutex
	m  map[string]*BucketState
}

func (l *memLimiter) state(b Bucket) *BucketState {
	if l.m == nil {
		l.m = map[string]*BucketState{}
	}
	k := b.KeyHash + " " + b.Endpoint
	if l.m[k] == nil {
		l.m[k] = &BucketState{}
	}
	return l.m[k]
}

func (l *memLimiter) Reserve(_ context.Context, b Bucket, now, deadline time.Time) (time.Time, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slot, ok := l.state(b).Reserve(b, now, deadline)
	return slot, ok, nil
}

func (l *memLimiter) BlockedUntil(_ context.Context, b Bucket) (time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Unix(0, l.state(b).Until), nil
}

func (l *memLimiter) Block(_ context.Context, b Bucket, now time.Time, ra, def time.Duration) (time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state(b).Block(b, now, ra, def), nil
}

func (l *memLimiter) Succeeded(_ context.Context, b Bucket) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state(b).Succeeded()
	return nil
}

// Three clients sharing a Limiter together stay within one key's limit,
// counted at the server (over half the window, as TestRateLimitUnderLoad
// explains).
func TestSharedLimiterAcrossClients(t *testing.T) {
	limits := map[string]openapi.Limit{"POST /api/events": {BurstPerSecond: 10, SteadyPerMin: 100000}}
	shared := &memLimiter{}
	srv := &arrivalServer{}
	env := newEnv(t, srv, func(c *Config) { c.Limits, c.Limiter = limits, shared })
	clients := []*Client{env.c}
	for range 2 {
		c, err := New(Config{BaseURL: env.srv.URL, Limits: limits, Limiter: shared}, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		clients = append(clients, c)
	}
	ctx := ctxTimeout(t, 60*time.Second)
	var wg sync.WaitGroup
	for _, c := range clients {
		for range 2 {
			wg.Go(func() {
				for range 5 {
					if _, err := c.Do(ctx, testKey, klaviyo.Request{Method: "POST", Path: "/api/events", Body: json.RawMessage(`{}`)}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	ts := srv.sorted()
	if len(ts) != 30 {
		t.Fatalf("server saw %d requests, want 30", len(ts))
	}
	if got := maxInWindow(ts, 500*time.Millisecond); got > 10 {
		t.Errorf("%d arrivals within 500ms from three clients, limit 10 per second", got)
	}
}

// A 429 one client receives blocks the endpoint for the others until its
// Retry-After has passed.
func TestSharedLimiterHonoursOthers429(t *testing.T) {
	shared := &memLimiter{}
	var (
		mu       sync.Mutex
		arrivals []time.Time
		first    = true
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		arrivals = append(arrivals, time.Now())
		if first {
			first = false
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 429, "")
			return
		}
		writeJSON(w, 202, "")
	})
	env := newEnv(t, h, func(c *Config) { c.Limiter = shared })
	other, err := New(Config{BaseURL: env.srv.URL, Limits: fastLimits(), Limiter: shared}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.CloseIdleConnections)
	ctx := ctxTimeout(t, 30*time.Second)
	req := klaviyo.Request{Method: "POST", Path: "/api/events", Body: json.RawMessage(`{}`)}
	// A short deadline: the first client returns the 429 instead of waiting.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = env.c.Do(short, testKey, req)
	cancel()
	if ClassOf(err) != Throttled {
		t.Fatalf("first call: %v, want throttled", err)
	}
	if _, err := other.Do(ctx, testKey, req); err != nil {
		t.Fatalf("other client: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 2 {
		t.Fatalf("%d requests, want 2", len(arrivals))
	}
	if gap := arrivals[1].Sub(arrivals[0]); gap < time.Second {
		t.Errorf("other client sent %v after the 429, before its Retry-After of 1s", gap)
	}
}
