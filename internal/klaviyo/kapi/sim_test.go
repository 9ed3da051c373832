package kapi_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
	"github.com/relaycdp/relay/internal/sim"
)

// These tests run the client against the simulator, each half testing the
// other: the simulator validates every request against Klaviyo's spec and
// enforces the rate limits, the client must honour what it answers.

const simKey = "pk_kapi_sim_test"

func newSim(t *testing.T, faults sim.Faults) (*sim.Sim, *kapi.Client) {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := sim.New(sim.Config{Keys: []string{simKey}, RateLimits: true, Faults: faults, JobDelay: -1}, discard)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close() })
	c, err := kapi.New(kapi.Config{BaseURL: srv.URL, BackoffBase: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func event(uniqueID, email string) klaviyo.Request {
	return klaviyo.Request{Method: "POST", Path: "/api/events", Body: map[string]any{
		"data": map[string]any{"type": "event", "attributes": map[string]any{
			"properties": map[string]any{"n": 1},
			"unique_id":  uniqueID,
			"metric":     map[string]any{"data": map[string]any{"type": "metric", "attributes": map[string]any{"name": "Sim Test"}}},
			"profile":    map[string]any{"data": map[string]any{"type": "profile", "attributes": map[string]any{"email": email}}},
		}},
	}}
}

// A 429 storm: no request reaches the endpoint before Retry-After ends,
// and every call still succeeds.
func TestSimStorm(t *testing.T) {
	s, c := newSim(t, sim.Faults{Storm: sim.Storm{Rate: 1, RetryAfter: 1, For: 1500 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Do(ctx, simKey, event("storm-"+string(rune('a'+i)), "storm@example.com"))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("call failed: %v", err)
		}
	}
	recs := s.Requests()
	if v := sim.RetryAfterViolations(recs); len(v) > 0 {
		t.Fatalf("Retry-After violated: %v", v)
	}
	if s.State().Throttled == 0 {
		t.Fatal("the storm throttled nothing")
	}
	if got := len(s.State().Events); got != 8 {
		t.Fatalf("simulator holds %d events, want 8", got)
	}
}

// Server errors are retried inside the call until one gets through.
func TestSimServerErrorsRecovered(t *testing.T) {
	s, c := newSim(t, sim.Faults{ErrorRate: 0.5})
	ctx := context.Background()
	for i := range 20 {
		if _, err := c.Do(ctx, simKey, event("e"+string(rune('a'+i)), "e@example.com")); err != nil {
			// Four attempts at 50% each: a failure is possible (1 in 16)
			// and must then be classed retryable, never permanent.
			if kapi.ClassOf(err) != kapi.Retryable {
				t.Fatalf("call %d: %v classed %v", i, err, kapi.ClassOf(err))
			}
		}
	}
	if s.State().Faulted == 0 {
		t.Fatal("no fault injected")
	}
}

// Validation errors come back typed, with Klaviyo's detail and pointer,
// and are not retried.
func TestSimValidationError(t *testing.T) {
	s, c := newSim(t, sim.Faults{})
	req := event("v1", "v@example.com")
	attrs := req.Body.(map[string]any)["data"].(map[string]any)["attributes"].(map[string]any)
	delete(attrs, "metric")
	_, err := c.Do(context.Background(), simKey, req)
	var kerr *kapi.Error
	if !errors.As(err, &kerr) {
		t.Fatalf("err = %v, want *kapi.Error", err)
	}
	if kerr.Status != 400 || kerr.Class != kapi.Permanent || len(kerr.Errors) == 0 {
		t.Fatalf("err = %+v", kerr)
	}
	if p := kerr.Errors[0].Source.Pointer; !strings.Contains(p, "/data/attributes") {
		t.Fatalf("pointer = %q", p)
	}
	if kerr.Errors[0].Detail == "" || !strings.Contains(err.Error(), kerr.Errors[0].Detail) {
		t.Fatalf("detail missing from %q", err)
	}
	if n := s.State().Requests["POST /api/events"]; n != 1 {
		t.Fatalf("%d requests, want 1 (4xx are not retried)", n)
	}
	if strings.Contains(err.Error(), simKey) {
		t.Fatal("the API key appears in the error")
	}
}

// A bulk job with one bad item: Klaviyo's pointer names the item, so the
// caller can fail exactly that one.
func TestSimBulkItemPointer(t *testing.T) {
	_, c := newSim(t, sim.Faults{})
	ops := []klaviyo.Op{}
	for i, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		ev := &klaviyo.EventAttributes{Metric: "Bulk", Properties: map[string]any{"i": i}, UniqueID: "bulk-" + email}
		if i == 1 {
			ev.Time = "1980-01-01T00:00:00Z" // Klaviyo refuses events before 1990
		}
		ops = append(ops, klaviyo.Op{Kind: klaviyo.OpEvent, Event: ev,
			Profile: &klaviyo.Profile{Type: "profile", Attributes: klaviyo.ProfileAttributes{Email: email}}})
	}
	_, err := c.Do(context.Background(), simKey, klaviyo.EventBulkJob(ops))
	var kerr *kapi.Error
	if !errors.As(err, &kerr) || kerr.Status != 400 {
		t.Fatalf("err = %v", err)
	}
	var items []int
	for _, p := range kerr.Pointers() {
		if i, ok := klaviyo.ItemIndex(p); ok {
			items = append(items, i)
		}
	}
	if len(items) == 0 || items[0] != 1 {
		t.Fatalf("pointers %v name items %v, want item 1", kerr.Pointers(), items)
	}
}
