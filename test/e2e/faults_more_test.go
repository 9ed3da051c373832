package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// TestDeliveryUnderTimeoutsAndResets: Klaviyo first holds every request
// without answering (relay's own per-attempt timeout has to end them),
// then resets connections and answers 504 after a delay. Every event is
// still delivered exactly once and no Retry-After is ignored.
func TestDeliveryUnderTimeoutsAndResets(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	// Phase 1: every request is held without an answer until relay's own
	// per-attempt timeout (30 s) gives up on it.
	ks := startSim(t, sim.Faults{TimeoutRate: 1})
	dir := t.TempDir()
	r := startRelay(t, relayConfig(t, dir, ks.URL, ""), filepath.Join(dir, "data"), freeAddr(t))

	const n = 4000
	s := newSender("flaky")
	send := func(events int) { s.post(t, r, events) }
	send(n / 2)
	// Held requests enter the simulator's log when they end.
	testutil.EventuallyWhy(t, 50*time.Second, "a held request relay gave up on", func() (bool, string) {
		recs := ks.Requests()
		return gaveUp(recs) > 0, fmt.Sprintf("%d requests ended, faults %v", len(recs), faultCounts(recs))
	})
	// Phase 2: every connection is reset, then every request is answered
	// 504 after a second — each until it has happened, so the test never
	// depends on chance — then 30% resets and 20% late 504s while the
	// retries drain.
	ks.SetFaults(sim.Faults{ResetRate: 1})
	send(n / 4)
	// A request held since phase 1 ends at relay's 30 s attempt timeout;
	// the next attempt meets the new fault.
	testutil.EventuallyWhy(t, 90*time.Second, "a reset connection", func() (bool, string) {
		return faultCounts(ks.Requests())["reset"] > 0, fmt.Sprintf("faults %v", faultCounts(ks.Requests()))
	})
	ks.SetFaults(sim.Faults{TimeoutRate: 1, TimeoutHold: time.Second})
	send(n / 4)
	testutil.EventuallyWhy(t, 90*time.Second, "a late 504", func() (bool, string) {
		return late504(ks.Requests()) > 0, fmt.Sprintf("faults %v", faultCounts(ks.Requests()))
	})
	ks.SetFaults(sim.Faults{ResetRate: 0.3, TimeoutRate: 0.2, TimeoutHold: time.Second})

	testutil.EventuallyWhy(t, 100*time.Second, "all events delivered", func() (bool, string) {
		got := countPrefix(ks.State().Events, "flaky-")
		return got == n, fmt.Sprintf("%d of %d delivered, faults %v", got, n, faultCounts(ks.Requests()))
	})
	seen := map[string]int{}
	for _, e := range ks.State().Events {
		if strings.HasPrefix(e.UniqueID, "flaky-") {
			seen[e.UniqueID]++
		}
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("event %s stored %d times", id, c)
		}
	}
	recs := ks.Requests()
	if v := sim.RetryAfterViolations(recs); len(v) > 0 {
		t.Fatalf("%d requests ignored a Retry-After, first: %s", len(v), v[0])
	}
	f := faultCounts(recs)
	answered504 := late504(recs)
	if f["reset"] == 0 || gaveUp(recs) == 0 || answered504 == 0 {
		t.Fatalf("faults not exercised: %v, %d held until relay gave up, %d answered 504", f, gaveUp(recs), answered504)
	}
	t.Logf("%d events delivered through %d resets, %d requests relay timed out, %d late 504s (%d requests in all)",
		n, f["reset"], gaveUp(recs), answered504, len(recs))
	if strings.Contains(r.Logs(), simKey) {
		t.Fatal("the Klaviyo API key appears in relay's logs")
	}
}

func faultCounts(recs []sim.RequestRecord) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		if r.Fault != "" {
			out[r.Fault]++
		}
	}
	return out
}

// gaveUp counts requests the simulator held until relay's timeout ended
// them.
func gaveUp(recs []sim.RequestRecord) int {
	n := 0
	for _, r := range recs {
		if r.Fault == "timeout" && r.Status == 0 {
			n++
		}
	}
	return n
}

// late504 counts requests the simulator held and then answered 504.
func late504(recs []sim.RequestRecord) int {
	n := 0
	for _, rec := range recs {
		if rec.Fault == "timeout" && rec.Status == 504 {
			n++
		}
	}
	return n
}
