package kapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/testutil"
)

type callID struct{}

// tagTransport stamps each attempt with "caller/attempt" from the
// caller's ctx, so the server's records can be joined with the client's
// hook events.
type tagTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (tt *tagTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	caller, _ := r.Context().Value(callID{}).(string)
	tt.mu.Lock()
	tt.n[caller]++
	tag := fmt.Sprintf("%s/%d", caller, tt.n[caller])
	tt.mu.Unlock()
	r = r.Clone(r.Context())
	r.Header.Set("X-Test-Attempt", tag)
	return tt.next.RoundTrip(r)
}

// stormServer answers the first n429 requests of testKey to /api/events with 429 and
// Retry-After, and records arrival and answer times per attempt tag.
type stormServer struct {
	retryAfter time.Duration
	n429       int

	mu      sync.Mutex
	count   map[string]int             // key+path → requests seen
	arrived map[string]time.Time       // tag → arrival
	sent429 map[string]time.Time       // tag → just before the 429 was written
	byPath  map[string][]time.Time     // path → arrivals
	ok      map[string]int             // path → successes
	order   map[string][]stormResponse // path → responses in order
}

type stormResponse struct {
	tag    string
	status int
}

func newStormServer(ra time.Duration, n429 int) *stormServer {
	return &stormServer{retryAfter: ra, n429: n429, count: map[string]int{}, arrived: map[string]time.Time{},
		sent429: map[string]time.Time{}, byPath: map[string][]time.Time{}, ok: map[string]int{}, order: map[string][]stormResponse{}}
}

func (s *stormServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	tag := r.Header.Get("X-Test-Attempt")
	k := r.Header.Get("Authorization") + " " + r.URL.Path
	s.mu.Lock()
	s.arrived[tag] = now
	s.byPath[r.URL.Path] = append(s.byPath[r.URL.Path], now)
	s.count[k]++
	// Only testKey's event endpoint storms; the probes must not.
	throttle := s.count[k] <= s.n429 && r.URL.Path == "/api/events" && r.Header.Get("Authorization") == "Klaviyo-API-Key "+testKey
	st := 202
	if throttle {
		st = 429
		s.sent429[tag] = time.Now()
	} else {
		s.ok[r.URL.Path]++
	}
	s.order[r.URL.Path] = append(s.order[r.URL.Path], stormResponse{tag, st})
	s.mu.Unlock()
	if throttle {
		w.Header().Set("Retry-After", strconv.Itoa(int(s.retryAfter/time.Second)))
		writeJSON(w, 429, `{"errors":[{"status":429,"code":"throttled","title":"Request was throttled.","detail":"Request was throttled. Expected available in 1 second."}]}`)
		return
	}
	writeJSON(w, 202, "")
}

// gateLog records the client's pass/block decisions in lock order.
type gateLog struct {
	mu     sync.Mutex
	events []gateEvent
	passes map[string]int // caller → passes so far
}

type gateEvent struct {
	block    bool
	endpoint string
	tag      string // pass: the attempt let through; block: the attempt whose 429 caused it
	at       time.Time
	until    time.Time
}

func (g *gateLog) hooks() *hooks {
	caller := func(ctx context.Context) string { s, _ := ctx.Value(callID{}).(string); return s }
	return &hooks{
		passed: func(ctx context.Context, ep string, at time.Time) {
			g.mu.Lock()
			defer g.mu.Unlock()
			c := caller(ctx)
			g.passes[c]++
			g.events = append(g.events, gateEvent{endpoint: ep, tag: fmt.Sprintf("%s/%d", c, g.passes[c]), at: at})
		},
		blocked: func(ctx context.Context, ep string, at, until time.Time) {
			g.mu.Lock()
			defer g.mu.Unlock()
			c := caller(ctx)
			g.events = append(g.events, gateEvent{block: true, endpoint: ep, tag: fmt.Sprintf("%s/%d", c, g.passes[c]), at: at, until: until})
		},
	}
}

// TestThrottleStorm: concurrent callers hit a 429 storm on one endpoint.
// No request the client lets through after learning of a 429 may reach
// the server before that 429's Retry-After has elapsed (measured from when
// the server wrote the 429), whichever goroutine sends it; requests already
// on the wire when the 429 arrived are the only ones allowed earlier.
// Another endpoint and another key on the same endpoint are not blocked.
// Every call succeeds in the end.
func TestThrottleStorm(t *testing.T) {
	const ra = time.Second
	srv := newStormServer(ra, 10)
	g := &gateLog{passes: map[string]int{}}
	tt := &tagTransport{next: newTransport(), n: map[string]int{}}
	env := newEnv(t, srv, func(c *Config) { c.HTTPClient = &http.Client{Transport: tt} })
	t.Cleanup(tt.next.(*http.Transport).CloseIdleConnections)
	env.c.hooks = g.hooks()

	ctx := ctxTimeout(t, 60*time.Second)
	const callers, calls = 6, 3
	var wg sync.WaitGroup
	errs := make(chan error, callers*calls+2)
	for i := range callers {
		wg.Go(func() {
			cctx := context.WithValue(ctx, callID{}, fmt.Sprintf("c%d", i))
			for range calls {
				if _, err := env.c.Do(cctx, testKey, klaviyo.Request{Method: "POST", Path: "/api/events", Body: json.RawMessage(`{}`)}); err != nil {
					errs <- err
				}
			}
		})
	}
	// Once the endpoint is blocked, another endpoint (same key) and the
	// same endpoint with another key must go straight through.
	testutil.Eventually(t, 10*time.Second, "first 429 block", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, e := range g.events {
			if e.block {
				return true
			}
		}
		return false
	})
	for i, probe := range []struct{ key, path string }{{testKey, "/api/profile-import"}, {"pk_other_account_key_000000000000000", "/api/events"}} {
		wg.Go(func() {
			pctx := context.WithValue(ctx, callID{}, fmt.Sprintf("probe%d", i))
			if _, err := env.c.Do(pctx, probe.key, klaviyo.Request{Method: "POST", Path: probe.path, Body: json.RawMessage(`{}`)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call failed: %v", err)
	}

	g.mu.Lock()
	events := append([]gateEvent(nil), g.events...)
	g.mu.Unlock()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if got := srv.ok["/api/events"]; got != callers*calls+1 {
		t.Errorf("%d successful event calls, want %d", got, callers*calls+1)
	}
	blocks, checked := 0, 0
	var firstBlock *gateEvent
	for i, b := range events {
		if !b.block || b.endpoint != "POST /api/events" || b.tag[0] != 'c' {
			continue
		}
		blocks++
		if firstBlock == nil {
			firstBlock = &events[i]
		}
		sent, ok := srv.sent429[b.tag]
		if !ok {
			t.Fatalf("block attributed to %s, which got no 429", b.tag)
		}
		if b.until.Sub(sent) < ra {
			t.Errorf("block from %s ends %v after the 429 was sent, want ≥ %v", b.tag, b.until.Sub(sent), ra)
		}
		for _, p := range events[i+1:] {
			if p.block || p.endpoint != b.endpoint || p.tag[0] != 'c' {
				continue
			}
			checked++
			arr, ok := srv.arrived[p.tag]
			if !ok {
				t.Fatalf("attempt %s passed the gate but never arrived", p.tag)
			}
			if gap := arr.Sub(sent); gap < ra {
				t.Errorf("attempt %s let through after the 429 to %s arrived %v after it, before Retry-After %v", p.tag, b.tag, gap, ra)
			}
			if p.at.Before(b.until) {
				t.Errorf("attempt %s passed at %v, before the block's end", p.tag, b.until.Sub(p.at))
			}
		}
	}
	if blocks == 0 || checked == 0 {
		t.Fatalf("storm produced %d blocks and %d checked attempts; the test did not exercise anything", blocks, checked)
	}
	// 429s are not Retryable failures: no call gave up although every
	// caller met more 429s than MaxAttempts allows for 5xx.
	if got := len(srv.sent429); got != 10 {
		t.Errorf("server sent %d 429s, want 10", got)
	}
	// The probes were let through while the event endpoint was blocked.
	for _, e := range events {
		if !e.block && (e.tag == "probe0/1" || e.tag == "probe1/1") {
			if !e.at.Before(firstBlock.until) {
				t.Errorf("probe %s (%s) waited for another bucket's block", e.tag, e.endpoint)
			}
		}
	}
	t.Logf("%d blocks, %d post-block attempts checked, %d 429s", blocks, checked, len(srv.sent429))
}

// TestThrottleWithoutRetryAfter: without the header the client blocks for
// DefaultRetryAfter, doubling on each further such 429; measured between
// server-side arrivals (lower bounds only).
func TestThrottleWithoutRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	srv := &scripted{script: list(
		status(429, ""), status(429, ""), status(429, ""), status(202, ""),
	)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		srv.ServeHTTP(w, r)
	})
	const def = 40 * time.Millisecond
	env := newEnv(t, h, func(c *Config) { c.DefaultRetryAfter = def })
	if _, err := env.c.Do(ctxTimeout(t, 10*time.Second), testKey, klaviyo.Request{Method: "POST", Path: "/api/events"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 4 {
		t.Fatalf("%d requests, want 4", len(arrivals))
	}
	for i, want := range []time.Duration{def, 2 * def, 4 * def} {
		if gap := arrivals[i+1].Sub(arrivals[i]); gap < want {
			t.Errorf("gap after 429 #%d = %v, want ≥ %v", i+1, gap, want)
		}
	}
}
