package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/relaycdp/relay/internal/klaviyo/openapi"
	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// scaleOut points every relay process the test starts (through the
// environment they inherit) at NATS JetStream and PostgreSQL: a schema and
// a stream prefix of its own, removed when the test ends. ackWait is how
// long a killed node's jobs wait before another node gets them. Without the
// services the test is skipped.
func scaleOut(t *testing.T, ackWait time.Duration) {
	t.Helper()
	natsURL := os.Getenv("RELAY_TEST_NATS_URL")
	if natsURL == "" {
		natsURL = nats.DefaultURL
	}
	pgDSN := os.Getenv("RELAY_TEST_POSTGRES_DSN")
	if pgDSN == "" {
		pgDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx := context.Background()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		skipUnlessRequired(t, "NATS not reachable at %s (.ci/run starts it): %v", natsURL, err)
	}
	conn, err := pgx.Connect(ctx, pgDSN)
	if err != nil {
		nc.Close()
		skipUnlessRequired(t, "PostgreSQL not reachable (.ci/run starts it): %v", err)
	}
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	schema, prefix := "relay_e2e_"+id, "E2E"+strings.ToUpper(id)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		if c, err := pgx.Connect(ctx, pgDSN); err == nil {
			_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		var del []string
		names := js.StreamNames(ctx)
		for n := range names.Name() {
			if strings.HasPrefix(n, prefix+"_") || strings.HasPrefix(n, "KV_"+prefix+"_") {
				del = append(del, n)
			}
		}
		for _, n := range del {
			_ = js.DeleteStream(ctx, n)
		}
	})
	u, err := url.Parse(pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	t.Setenv("RELAY_QUEUE", "jetstream")
	t.Setenv("RELAY_STORE", "postgres")
	t.Setenv("RELAY_NATS_URL", natsURL)
	t.Setenv("RELAY_NATS_PREFIX", prefix)
	t.Setenv("RELAY_NATS_ACK_WAIT", ackWait.String())
	t.Setenv("RELAY_POSTGRES_DSN", u.String())
}

// TestScaleOutBackends runs the embedded backend's end-to-end suite (zero
// loss under SIGKILL, throttling and 5xx, dead letters and relay replay,
// user deletion and suppression)
// against queue: jetstream and store: postgres.
func TestScaleOutBackends(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"ZeroLossUnderSIGKILL", TestZeroLossUnderSIGKILL},
		{"DeliveryUnderThrottlingAndErrors", TestDeliveryUnderThrottlingAndErrors},
		{"DeadLetterAndReplay", TestDeadLetterAndReplay},
		{"UserDeletion", TestUserDeletion},
		{"UserSuppression", TestUserSuppression},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scaleOut(t, 3*time.Second)
			tc.run(t)
		})
	}
}

// TestThreeNodesSIGKILL: three relay serve processes share NATS,
// PostgreSQL and one rate-limited simulator; a sender streams events to
// them in turn and one node is killed with SIGKILL mid-stream. Every
// acknowledged event reaches Klaviyo exactly once, no request arrives
// during a Retry-After, and the three nodes together never exceed a
// Klaviyo limit in any fixed 1-second or 60-second window.
func TestThreeNodesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: kills relay processes")
	}
	scaleOut(t, 3*time.Second)
	ks := startSim(t, sim.Faults{})
	dir := t.TempDir()
	cfg := relayConfig(t, dir, ks.URL, "")
	// Many workers that do not wait to fill bulk requests: each node alone
	// would send far more than the bulk endpoint's 10 requests a second,
	// so only a shared budget keeps the three within the limits.
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eager := strings.Replace(string(raw), "batchWait: 200ms", "batchWait: 1ms\n  workers: 4", 1)
	if err := os.WriteFile(cfg, []byte(eager), 0o600); err != nil {
		t.Fatal(err)
	}
	var nodes []*relayProc
	for i := range 3 {
		nodes = append(nodes, startRelay(t, cfg, filepath.Join(dir, fmt.Sprintf("data%d", i)), freeAddr(t)))
	}
	var dead atomic.Int32
	dead.Store(-1)
	var turn atomic.Int64
	next := func() *relayProc {
		for {
			i := int(turn.Add(1) % 3)
			if int32(i) != dead.Load() {
				return nodes[i]
			}
		}
	}
	s := newSender("three")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() { pacedLoop(ctx, s, next) })
	}
	// Kill node 0 once all three took traffic for a while, then let the
	// survivors take as much again.
	const phase = 2000
	testutil.EventuallyWhy(t, 30*time.Second, "traffic before the kill", func() (bool, string) {
		n := len(s.ackedIDs())
		return n >= phase, fmt.Sprintf("%d of %d acknowledged", n, phase)
	})
	dead.Store(0)
	nodes[0].kill()
	before := len(s.ackedIDs())
	t.Logf("node 0 killed: %d sent, %d acknowledged so far", s.sent.Load(), before)
	testutil.EventuallyWhy(t, 30*time.Second, "traffic after the kill", func() (bool, string) {
		n := len(s.ackedIDs()) - before
		return n >= phase, fmt.Sprintf("%d of %d acknowledged since the kill", n, phase)
	})
	stop()
	wg.Wait()

	acked := s.ackedIDs()
	if len(acked) < 300 {
		t.Fatalf("only %d events acknowledged: the test did not exercise anything", len(acked))
	}
	checkAckedOnce(t, ks, "three-", acked, 75*time.Second)

	recs := ks.Requests()
	if v := sim.RetryAfterViolations(recs); len(v) > 0 {
		t.Fatalf("%d requests arrived before an earlier 429's Retry-After ended, first: %s", len(v), v[0])
	}
	limits, err := openapi.RateLimits()
	if err != nil {
		t.Fatal(err)
	}
	over, busiest := windowOverruns(recs, limits)
	for _, o := range over {
		t.Error(o)
	}
	throttled := 0
	for _, r := range recs {
		if r.Status == 429 {
			throttled++
		}
	}
	if throttled > 0 {
		t.Errorf("the simulator throttled %d requests: the nodes together went over a limit", throttled)
	}
	t.Logf("sent %d, acknowledged %d, %d Klaviyo requests; busiest 1-second windows: %s",
		s.sent.Load(), len(acked), len(recs), strings.Join(busiest, ", "))
	for i, n := range nodes {
		if strings.Contains(n.Logs(), simKey) {
			t.Errorf("node %d logged the Klaviyo API key", i)
		}
	}
}

// windowOverruns counts the requests that reached the simulator per (API
// key, endpoint) in each fixed, clock-aligned 1-second and 60-second
// window (Klaviyo's and the simulator's windows) and reports every window
// over its limit, plus the busiest 1-second window of each endpoint.
func windowOverruns(recs []sim.RequestRecord, limits map[string]openapi.Limit) (over, busiest []string) {
	type win struct {
		endpoint, key string
		len           time.Duration
		start         int64
	}
	counts := map[win]int{}
	for _, r := range recs {
		if r.Status == 0 {
			continue // never answered: not counted by the server either
		}
		for _, d := range []time.Duration{time.Second, time.Minute} {
			counts[win{r.Endpoint, r.Key, d, r.Time.UnixNano() / int64(d)}]++
		}
	}
	top := map[string]int{}
	for w, n := range counts {
		l, ok := limits[w.endpoint]
		if !ok {
			continue
		}
		limit := l.BurstPerSecond
		if w.len == time.Minute {
			limit = l.SteadyPerMin
		} else if n > top[w.endpoint] {
			top[w.endpoint] = n
		}
		if n > limit {
			over = append(over, fmt.Sprintf("%s: %d requests in the %v window starting %s, limit %d",
				w.endpoint, n, w.len, time.Unix(0, w.start*int64(w.len)).UTC().Format(time.RFC3339), limit))
		}
	}
	for ep, n := range top {
		busiest = append(busiest, fmt.Sprintf("%s %d/%d", ep, n, limits[ep].BurstPerSecond))
	}
	sort.Strings(busiest)
	return over, busiest
}

// pacedLoop is sender.loop with small batches and a pause between them, so
// events trickle in and delivery sends many small bulk requests (the
// pressure on the rate limits) rather than a few full ones.
func pacedLoop(ctx context.Context, s *sender, r func() *relayProc) {
	for ctx.Err() == nil {
		body, ids := s.batch(5)
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
		}
		time.Sleep(15 * time.Millisecond)
	}
}

// skipUnlessRequired skips a test whose service (or browser) is missing,
// except under `make test` and CI (RELAY_REQUIRE_SERVICES=1), where every
// machine has them and a skip would hide a broken setup.
func skipUnlessRequired(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("RELAY_REQUIRE_SERVICES") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
