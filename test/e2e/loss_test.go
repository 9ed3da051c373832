package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
)

// sender posts batches of uniquely numbered track events and remembers
// which ones relay acknowledged with 200.
type sender struct {
	mu    sync.Mutex
	acked map[string]bool // messageId → acknowledged
	sent  atomic.Int64
	next  atomic.Int64
	run   string
}

func newSender(run string) *sender { return &sender{acked: map[string]bool{}, run: run} }

func (s *sender) batch(n int) (string, []string) {
	ids := make([]string, n)
	var b strings.Builder
	b.WriteString(`{"batch":[`)
	for i := range n {
		seq := s.next.Add(1)
		ids[i] = fmt.Sprintf("%s-%d", s.run, seq)
		if i > 0 {
			b.WriteByte(',')
		}
		// A few users, so per-profile ordering and batching both matter.
		fmt.Fprintf(&b, `{"type":"track","messageId":%q,"userId":"u%d","event":"Loss Test","properties":{"seq":%d},"context":{"traits":{"email":"u%d@example.com"}}}`,
			ids[i], seq%7, seq, seq%7)
	}
	b.WriteString(`]}`)
	return b.String(), ids
}

// loop sends until ctx ends, pausing between batches; connection errors
// (relay killed) are expected and the batch is simply not acknowledged.
// The pause keeps the backlog one Klaviyo's rate limits drain within the
// tests' time bounds: unpaced, four loops ingest 50,000 events/s.
func (s *sender) loop(ctx context.Context, r func() *relayProc, pause time.Duration) {
	for ctx.Err() == nil {
		time.Sleep(pause)
		body, ids := s.batch(20)
		s.sent.Add(int64(len(ids)))
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		status, _, err := r().post(rctx, "/v1/batch", body)
		cancel()
		if err == nil && status == 200 {
			s.mu.Lock()
			for _, id := range ids {
				s.acked[id] = true
			}
			s.mu.Unlock()
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// post sends events in batches of 100 to r, failing the test on any
// answer but 200.
func (s *sender) post(t *testing.T, r *relayProc, events int) {
	t.Helper()
	for sent := 0; sent < events; sent += 100 {
		body, _ := s.batch(100)
		status, msg, err := r.post(context.Background(), "/v1/batch", body)
		if err != nil || status != 200 {
			t.Fatalf("ingest: %d %s %v", status, msg, err)
		}
	}
}

func (s *sender) ackedIDs() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.acked))
	for k := range s.acked {
		out[k] = true
	}
	return out
}

// TestZeroLossUnderSIGKILL sends a stream of events while relay is killed
// with SIGKILL several times, during ingest and during delivery, and checks
// that every event relay acknowledged reaches Klaviyo exactly once.
func TestZeroLossUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: kills relay processes")
	}
	ks := startSim(t, sim.Faults{})
	dir := t.TempDir()
	cfg := relayConfig(t, dir, ks.URL, "")
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)

	var cur atomic.Pointer[relayProc]
	cur.Store(startRelay(t, cfg, data, addr))
	s := newSender("loss")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); s.loop(ctx, cur.Load, 5*time.Millisecond) }()
	}
	const kills = 4
	for i := range kills {
		time.Sleep(time.Duration(400+150*i) * time.Millisecond)
		cur.Load().kill()
		t.Logf("kill %d: %d sent, %d acknowledged so far", i+1, s.sent.Load(), len(s.ackedIDs()))
		cur.Store(startRelay(t, cfg, data, addr))
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()

	acked := s.ackedIDs()
	if len(acked) < 100 {
		t.Fatalf("only %d events acknowledged: the test did not exercise anything", len(acked))
	}
	checkAckedOnce(t, ks, "loss-", acked, 60*time.Second)
	st := ks.State()
	t.Logf("sent %d, acknowledged %d, Klaviyo holds %d loss-test events, requests %v",
		s.sent.Load(), len(acked), countPrefix(st.Events, "loss-"), st.Requests)
}

func countPrefix(evs []sim.EventState, p string) int {
	n := 0
	for _, e := range evs {
		if strings.HasPrefix(e.UniqueID, p) {
			n++
		}
	}
	return n
}
