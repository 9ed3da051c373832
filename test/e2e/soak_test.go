package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
)

// soak skips unless RELAY_SOAK is set (make soak): these run for minutes.
func soak(t *testing.T) {
	t.Helper()
	if os.Getenv("RELAY_SOAK") == "" {
		t.Skip("soak test: set RELAY_SOAK=1 (make soak)")
	}
}

// soakDuration reads a duration from the environment, with a default.
func soakDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// checkExactlyOnce is checkAckedOnce plus: no request ignored a
// Retry-After.
func checkExactlyOnce(t *testing.T, ks *klaviyoSim, prefix string, acked map[string]bool, timeout time.Duration) {
	t.Helper()
	checkAckedOnce(t, ks, prefix, acked, timeout)
	if v := sim.RetryAfterViolations(ks.Requests()); len(v) > 0 {
		t.Fatalf("%d requests ignored a Retry-After, first: %s", len(v), v[0])
	}
}

// TestSoakKlaviyoOutage: Klaviyo is down for several minutes (RELAY_SOAK_OUTAGE,
// default 4m) — first answering 503, then resetting connections, then
// throttling with a long Retry-After — while events keep arriving. After
// it heals, everything is delivered exactly once, nothing is dead-lettered
// and no Retry-After is ignored. Relay's retry backoff is capped at 5
// minutes, so the drain may take that long after the outage ends.
func TestSoakKlaviyoOutage(t *testing.T) {
	soak(t)
	outage := soakDuration(t, "RELAY_SOAK_OUTAGE", 4*time.Minute)
	ks := startSim(t, sim.Faults{ErrorRate: 1})
	dir := t.TempDir()
	r := startRelay(t, relayConfig(t, dir, ks.URL, ""), filepath.Join(dir, "data"), freeAddr(t))

	s := newSender("outage")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			s.loopOnce(ctx, r)
			time.Sleep(100 * time.Millisecond) // about 200 events/s
		}
	}()
	phases := []sim.Faults{{ErrorRate: 1}, {ResetRate: 1}, {Storm: sim.Storm{Rate: 1, RetryAfter: 30}}}
	for i, f := range phases {
		ks.SetFaults(f)
		t.Logf("outage phase %d: %+v for %s", i+1, f, outage/3)
		time.Sleep(outage / 3)
	}
	ks.SetFaults(sim.Faults{})
	healed := time.Now()
	time.Sleep(10 * time.Second)
	stop()
	wg.Wait()
	acked := s.ackedIDs()
	t.Logf("outage over: %d events sent, %d acknowledged", s.sent.Load(), len(acked))
	checkExactlyOnce(t, ks, "outage-", acked, 10*time.Minute)
	t.Logf("drained %s after the outage ended", time.Since(healed).Round(time.Second))
	if strings.Contains(r.Logs(), simKey) {
		t.Fatal("the Klaviyo API key appears in relay's logs")
	}
}

// loopOnce sends one batch of 20 and records it if acknowledged.
func (s *sender) loopOnce(ctx context.Context, r *relayProc) {
	body, ids := s.batch(20)
	s.sent.Add(int64(len(ids)))
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	status, _, err := r.post(rctx, "/v1/batch", body)
	if err == nil && status == 200 {
		s.mu.Lock()
		for _, id := range ids {
			s.acked[id] = true
		}
		s.mu.Unlock()
	}
}

// TestSoakRepeatedKills: SIGKILL relay every few seconds for several
// minutes (RELAY_SOAK_KILLS_FOR, default 3m) under continuous ingest, with
// Klaviyo throttling and failing some requests; every acknowledged event
// ends up in Klaviyo exactly once.
func TestSoakRepeatedKills(t *testing.T) {
	soak(t)
	d := soakDuration(t, "RELAY_SOAK_KILLS_FOR", 3*time.Minute)
	ks := startSim(t, sim.Faults{ErrorRate: 0.05, Storm: sim.Storm{Rate: 0.1, RetryAfter: 1}})
	dir := t.TempDir()
	cfg := relayConfig(t, dir, ks.URL, "")
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	var cur atomic.Pointer[relayProc]
	cur.Store(startRelay(t, cfg, data, addr))
	s := newSender("soakkill")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); s.loop(ctx, cur.Load, 20*time.Millisecond) }()
	}
	var killedAt []time.Time
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(time.Duration(1500+len(killedAt)%5*700) * time.Millisecond)
		cur.Load().kill()
		killedAt = append(killedAt, time.Now())
		cur.Store(startRelay(t, cfg, data, addr))
	}
	stop()
	wg.Wait()
	acked := s.ackedIDs()
	t.Logf("%d kills; %d sent, %d acknowledged", len(killedAt), s.sent.Load(), len(acked))
	checkAckedOnce(t, ks, "soakkill-", acked, 10*time.Minute)
	within, across := retryAfterByLifetime(ks.Requests(), killedAt)
	if len(across) > 0 {
		// The rate limits (with every Retry-After) live in the store, so a
		// restarted relay must honour the killed one's 429s too.
		t.Fatalf("%d requests came before a Retry-After given to an earlier, killed process ended; first: %s", len(across), across[0])
	}
	if len(within) > 0 {
		t.Fatalf("%d requests ignored a Retry-After their own process had received; first: %s", len(within), within[0])
	}
}

// retryAfterByLifetime lists requests that came to an endpoint before an
// earlier 429's Retry-After ended, split into those where the 429 and the
// early request fell in one relay process's lifetime and those with a kill
// in between. Like sim.RetryAfterViolations it ignores requests that
// arrived before the 429 was answered or within InFlightGrace after: they
// were already on their way and could not have known. Across a kill it also
// ignores a 429 answered less than InFlightGrace before the kill, which the
// killed process may not have lived to store.
func retryAfterByLifetime(recs []sim.RequestRecord, killedAt []time.Time) (within, across []string) {
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b sim.RequestRecord) int { return a.Time.Compare(b.Time) })
	type key struct{ endpoint, key string }
	type block struct{ from, answered, until time.Time }
	blocked := map[key]block{}
	for _, r := range recs {
		k := key{r.Endpoint, r.Key}
		// A request arriving within InFlightGrace of the 429's answer was
		// already on its way (another goroutine's), as in the simulator's
		// own RetryAfterViolations.
		if b, ok := blocked[k]; ok && r.Time.Before(b.until) && r.Time.After(b.answered.Add(sim.InFlightGrace)) {
			msg := fmt.Sprintf("%s at %s, %v early", r.Endpoint, r.Time.Format(time.RFC3339Nano), b.until.Sub(r.Time))
			restarted, unrecorded := false, false
			for _, kt := range killedAt {
				if kt.After(b.from) && kt.Before(r.Time) {
					restarted = true
					// A process killed within InFlightGrace of the 429's
					// answer may have died before it could store the block:
					// no process can keep what it had no time to write.
					unrecorded = unrecorded || kt.Before(b.answered.Add(sim.InFlightGrace))
				}
			}
			switch {
			case restarted && unrecorded:
			case restarted:
				across = append(across, msg)
			default:
				within = append(within, msg)
			}
		}
		if r.Status == 429 && r.RetryAfter > 0 {
			if u := r.Time.Add(time.Duration(r.RetryAfter) * time.Second); u.After(blocked[k].until) {
				answered := r.Answered
				if answered.IsZero() {
					answered = r.Time
				}
				blocked[k] = block{r.Time, answered, u}
			}
		}
	}
	return within, across
}
