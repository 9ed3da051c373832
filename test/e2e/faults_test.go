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

// TestDeliveryUnderThrottlingAndErrors: through a 429 storm (Retry-After
// 2 s), a burst where every request fails with 5xx, then 20% of requests
// failing, every event is still delivered, no request reaches a throttled
// endpoint before its Retry-After, and events travel in bulk (many per
// Klaviyo request). The phases are set in turn so each fault is certain to
// be met, not left to chance.
func TestDeliveryUnderThrottlingAndErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ks := startSim(t, sim.Faults{Storm: sim.Storm{Rate: 1, RetryAfter: 2, For: 3 * time.Second}})
	dir := t.TempDir()
	r := startRelay(t, relayConfig(t, dir, ks.URL, ""), filepath.Join(dir, "data"), freeAddr(t))

	const n = 3000
	s := newSender("storm")
	ingest := func(events int) { s.post(t, r, events) }
	ingest(n / 3)
	testutil.EventuallyWhy(t, 10*time.Second, "a throttled request", func() (bool, string) {
		return ks.State().Throttled > 0, "no 429 yet"
	})
	testutil.EventuallyWhy(t, 20*time.Second, "the storm's end (a request accepted after a 429)", func() (bool, string) {
		return acceptedAfterThrottle(ks.Requests()), "every request since the first 429 throttled"
	})
	ks.SetFaults(sim.Faults{ErrorRate: 1})
	ingest(n / 3)
	testutil.EventuallyWhy(t, 10*time.Second, "a failed request", func() (bool, string) {
		return ks.State().Faulted > ks.State().Throttled, "no 5xx yet"
	})
	ks.SetFaults(sim.Faults{ErrorRate: 0.2})
	ingest(n - 2*(n/3))
	testutil.EventuallyWhy(t, 120*time.Second, "all events delivered", func() (bool, string) {
		got := countPrefix(ks.State().Events, "storm-")
		return got == n, fmt.Sprintf("%d of %d delivered", got, n)
	})

	recs := ks.Requests()
	if v := sim.RetryAfterViolations(recs); len(v) > 0 {
		t.Fatalf("%d requests arrived before an earlier 429's Retry-After ended, first: %+v", len(v), v[0])
	}
	var throttled, faulted, bulk, bulkItems, single int
	for _, rec := range recs {
		switch {
		case rec.Status == 429:
			throttled++
		case rec.Fault != "":
			faulted++
		case rec.Endpoint == "POST /api/event-bulk-create-jobs" && rec.Status == 202:
			bulk++
			bulkItems += rec.Items
		case rec.Endpoint == "POST /api/events" && rec.Status == 202:
			single++
		}
	}
	if throttled == 0 || faulted == 0 {
		t.Fatalf("faults were not exercised: %d throttled, %d faulted", throttled, faulted)
	}
	if bulk == 0 || bulkItems/bulk < 20 {
		t.Fatalf("bulk endpoint under-used: %d bulk requests carrying %d events, %d single calls", bulk, bulkItems, single)
	}
	t.Logf("%d events: %d bulk requests (%.0f events each), %d single calls, %d throttled, %d faulted",
		n, bulk, float64(bulkItems)/float64(bulk), single, throttled, faulted)
	if strings.Contains(r.Logs(), simKey) {
		t.Fatal("the Klaviyo API key appears in relay's logs")
	}
}

// acceptedAfterThrottle reports whether a request was accepted after a
// 429: the storm is over.
func acceptedAfterThrottle(recs []sim.RequestRecord) bool {
	throttled := false
	for _, rec := range recs {
		switch {
		case rec.Status == 429:
			throttled = true
		case throttled && rec.Status >= 200 && rec.Status < 300:
			return true
		}
	}
	return false
}
