package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// TestZeroLossKillsDuringBacklogDrain builds a backlog of 20,000 events
// while Klaviyo throttles every request, lets it heal, and SIGKILLs relay
// several times while the backlog is being delivered. After the last
// restart every acknowledged event is in Klaviyo exactly once, and no
// process ignored a Retry-After it had received.
func TestZeroLossKillsDuringBacklogDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: kills relay processes")
	}
	// Klaviyo refuses everything while the backlog builds.
	ks := startSim(t, sim.Faults{Storm: sim.Storm{Rate: 1, RetryAfter: 1}})
	dir := t.TempDir()
	cfg := relayConfig(t, dir, ks.URL, "")
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	r := startRelay(t, cfg, data, addr)

	const n = 20000
	s := newSender("backlog")
	acked := map[string]bool{}
	ctx := context.Background()
	for sent := 0; sent < n; sent += 200 {
		body, ids := s.batch(200)
		status, msg, err := r.post(ctx, "/v1/batch", body)
		if err != nil || status != 200 {
			t.Fatalf("ingest: %d %s %v", status, msg, err)
		}
		for _, id := range ids {
			acked[id] = true
		}
	}
	if got := deliveredItems(ks); got > 0 {
		t.Fatalf("%d events delivered while Klaviyo refused everything", got)
	}

	// Heal, with some latency and occasional 429s so the drain takes a
	// few seconds, and kill relay each time the drain has made progress.
	ks.SetFaults(sim.Faults{Latency: 50 * time.Millisecond, Storm: sim.Storm{Rate: 0.2, RetryAfter: 1}})
	const kills = 4
	duringDrain := 0
	last := 0
	var killedAt []time.Time
	for i := range kills {
		testutil.EventuallyWhy(t, 60*time.Second, "delivery progress", func() (bool, string) {
			got := deliveredItems(ks)
			return got > last, fmt.Sprintf("%d events accepted by Klaviyo", got)
		})
		r.kill()
		killedAt = append(killedAt, time.Now())
		last = deliveredItems(ks)
		if last < n {
			duringDrain++
		}
		t.Logf("kill %d: Klaviyo had accepted %d of %d events", i+1, last, n)
		r = startRelay(t, cfg, data, addr)
	}
	if duringDrain < 2 {
		t.Fatalf("only %d of %d kills landed while the backlog was draining: the test did not exercise anything", duringDrain, kills)
	}

	testutil.EventuallyWhy(t, 120*time.Second, "every acknowledged event delivered", func() (bool, string) {
		seen := map[string]int{}
		for _, e := range ks.State().Events {
			if strings.HasPrefix(e.UniqueID, "backlog-") {
				seen[e.UniqueID]++
			}
		}
		missing := 0
		for id := range acked {
			if seen[id] == 0 {
				missing++
			}
		}
		for id, c := range seen {
			if c != 1 {
				t.Fatalf("event %s stored %d times", id, c)
			}
			if !acked[id] {
				t.Fatalf("event %s stored but never acknowledged", id)
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d acknowledged events missing", missing, len(acked))
	})
	within, across := retryAfterByLifetime(ks.Requests(), killedAt)
	if len(across) > 0 {
		// The rate limits (with every Retry-After) live in the store, so a
		// restarted relay must honour the killed one's 429s too.
		t.Fatalf("%d requests came before a Retry-After given to an earlier, killed process ended; first: %s", len(across), across[0])
	}
	if len(within) > 0 {
		t.Fatalf("%d requests ignored a Retry-After their own process had received; first: %s", len(within), within[0])
	}
	// Events accepted by Klaviyo more than once (a bulk job sent, then
	// relay killed before it recorded success) are deduplicated by
	// Klaviyo on unique_id, as above; how many there were is worth seeing.
	t.Logf("%d events, %d kills during the drain; Klaviyo accepted %d event items in all (%d resent)",
		n, duringDrain, deliveredItems(ks), deliveredItems(ks)-n)
}

// deliveredItems counts the event items Klaviyo accepted (bulk jobs and
// single calls), resends included.
func deliveredItems(ks *klaviyoSim) int {
	n := 0
	for _, r := range ks.Requests() {
		if r.Status != 202 {
			continue
		}
		switch r.Endpoint {
		case "POST /api/event-bulk-create-jobs":
			n += r.Items
		case "POST /api/events":
			n++
		}
	}
	return n
}
