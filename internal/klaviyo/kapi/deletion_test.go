package kapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo/kapi"
	"github.com/relaycdp/relay/internal/sim"
)

func TestRequestProfileDeletion(t *testing.T) {
	s, c := newSim(t, sim.Faults{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, e := range []string{"del-a@example.com", "del-b@example.com", "keep@example.com"} {
		if _, err := c.Do(ctx, simKey, event("ev-"+e, e)); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := c.LookupProfiles(ctx, simKey, "email", "del-b@example.com")
	if err != nil || len(ids) != 1 {
		t.Fatalf("lookup: %v %v", ids, err)
	}
	for _, tgt := range []kapi.DeletionTarget{{Email: "DEL-A@example.com"}, {ProfileID: ids[0]}, {PhoneNumber: "+15005550006"}} {
		if err := c.RequestProfileDeletion(ctx, simKey, tgt); err != nil {
			t.Fatalf("delete by %s: %v", tgt, err)
		}
	}
	st := s.State()
	if len(st.Profiles) != 1 || st.Profiles[0].Email != "keep@example.com" || len(st.Events) != 1 {
		t.Errorf("left: profiles %+v, events %d", st.Profiles, len(st.Events))
	}
	if st.Rejected != 0 {
		t.Errorf("the simulator rejected a request: %+v", st.Rejections)
	}

	for _, bad := range []kapi.DeletionTarget{{}, {Email: "a@example.com", ProfileID: "X"}, {ProfileID: "a/b"}} {
		err := c.RequestProfileDeletion(ctx, simKey, bad)
		if !errors.Is(err, kapi.ErrInvalidRequest) {
			t.Errorf("%+v: err = %v, want ErrInvalidRequest", bad, err)
		}
	}
	// Klaviyo's own checks come back as a permanent error.
	err = c.RequestProfileDeletion(ctx, simKey, kapi.DeletionTarget{PhoneNumber: "555-1234"})
	if kapi.ClassOf(err) != kapi.Permanent {
		t.Errorf("bad phone: class %v, err %v", kapi.ClassOf(err), err)
	}
}

// A 503 storm on the deletion endpoint is retried with backoff.
func TestRequestProfileDeletionRetries(t *testing.T) {
	s, _ := newSim(t, sim.Faults{ErrorRate: 0.5, Endpoints: []string{"POST /api/data-privacy-deletion-jobs"}})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	// Enough attempts that a call failing 12 times in a row (p = 2^-12)
	// is not a flake this test has to live with.
	c, err := kapi.New(kapi.Config{BaseURL: srv.URL, MaxAttempts: 12, BackoffBase: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond},
		slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 6 {
		if err := c.RequestProfileDeletion(ctx, simKey, kapi.DeletionTarget{ProfileID: "01HX0000000000000000000" + string(rune('A'+i))}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if s.State().Faulted == 0 {
		t.Error("no fault was injected; the test proves nothing")
	}
}
