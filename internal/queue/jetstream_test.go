package queue_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/queue/queuetest"
	"github.com/relaycdp/relay/internal/testutil"
)

// natsURL is the NATS server with JetStream every machine here runs;
// RELAY_TEST_NATS_URL points elsewhere.
func natsURL() string {
	if u := os.Getenv("RELAY_TEST_NATS_URL"); u != "" {
		return u
	}
	return nats.DefaultURL
}

// jsPrefix derives a queue prefix from dir, so reopening with the same dir
// finds the same streams, and registers the removal of everything under it
// when the test ends. Without a reachable server the test is skipped.
func jsPrefix(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.Sum256([]byte(dir))
	prefix := "RT" + strings.ToUpper(hex.EncodeToString(h[:6]))
	nc, err := nats.Connect(natsURL())
	if err != nil {
		skipUnlessRequired(t, "NATS not reachable at %s (set RELAY_TEST_NATS_URL; .ci/run starts it): %v", natsURL(), err)
	}
	nc.Close()
	t.Cleanup(func() { deleteJetStream(t, prefix) })
	return prefix
}

func deleteJetStream(t *testing.T, prefix string) {
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Errorf("clean up %s: %v", prefix, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("clean up %s: %v", prefix, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var del []string
	for n := range names.Name() {
		if strings.HasPrefix(n, prefix+"_") || strings.HasPrefix(n, "KV_"+prefix+"_") {
			del = append(del, n)
		}
	}
	for _, n := range del {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Errorf("delete stream %s: %v", n, err)
		}
	}
}

func openJetStream(t *testing.T, dir string, opts queue.JetStreamOptions) *queue.JetStream {
	t.Helper()
	opts.Prefix = jsPrefix(t, dir)
	q, err := queue.OpenJetStream(context.Background(), natsURL(), opts, discard())
	if err != nil {
		t.Fatalf("open jetstream queue: %v", err)
	}
	return q
}

func TestJetStreamConformance(t *testing.T) {
	queuetest.RunConformance(t, func(t *testing.T, dir string) queue.Queue {
		return openJetStream(t, dir, queue.JetStreamOptions{})
	})
}

// Two nodes share one queue: each job goes to one of them; when one dies
// holding jobs, JetStream hands them to the other after AckWait, with the
// attempts and error of a retry the dead node recorded.
func TestJetStreamNodeFailure(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	opts := queue.JetStreamOptions{AckWait: time.Second}
	a := openJetStream(t, dir, opts)
	b := openJetStream(t, dir, opts)
	defer b.Close()
	var msgs []queue.Message
	for i := range 100 {
		msgs = append(msgs, queuetest.Msg("d", "", i))
	}
	if err := a.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	held, err := a.Claim(ctx, "d", 30, time.Hour)
	if err != nil || len(held) != 30 {
		t.Fatalf("node a claimed %d, %v; want 30", len(held), err)
	}
	if err := a.Retry(ctx, []int64{held[0].ID}, time.Now().Add(-time.Second), "boom"); err != nil {
		t.Fatal(err)
	}
	a.Crash()

	seen := map[string]queue.Job{}
	testutil.Eventually(t, 20*time.Second, "node b to get every job", func() bool {
		jobs, err := b.Claim(ctx, "d", 200, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if _, dup := seen[j.MessageID]; dup {
				t.Fatalf("job %s claimed twice by node b", j.MessageID)
			}
			seen[j.MessageID] = j
		}
		return len(seen) == len(msgs)
	})
	if j := seen[held[0].MessageID]; j.Attempts != 1 || j.LastError != "boom" {
		t.Errorf("retried job after node failure: attempts %d, last error %q; want 1, boom", j.Attempts, j.LastError)
	}
	st, err := b.Stats(ctx)
	if err != nil || st.Depth != 100 || st.Executing != 100 {
		t.Errorf("stats on node b: %+v, %v; want depth and executing 100", st, err)
	}
}

// Two live nodes claiming at once never get the same job.
func TestJetStreamSharedClaims(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a := openJetStream(t, dir, queue.JetStreamOptions{})
	b := openJetStream(t, dir, queue.JetStreamOptions{})
	defer a.Close()
	defer b.Close()
	var msgs []queue.Message
	for i := range 500 {
		msgs = append(msgs, queuetest.Msg("d", "", i))
	}
	if err := a.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	perNode := [2]int{}
	for round := 0; len(got) < len(msgs) && round < 1000; round++ {
		for i, q := range []*queue.JetStream{a, b} {
			jobs, err := q.Claim(ctx, "d", 25, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			perNode[i] += len(jobs)
			ids := make([]int64, len(jobs))
			for k, j := range jobs {
				got[j.MessageID]++
				ids[k] = j.ID
			}
			if err := q.Succeed(ctx, ids); err != nil {
				t.Fatal(err)
			}
		}
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("job %s claimed %d times", id, n)
		}
	}
	if len(got) != len(msgs) || perNode[0] == 0 || perNode[1] == 0 {
		t.Fatalf("claimed %d of %d jobs, per node %v; want all, shared", len(got), len(msgs), perNode)
	}
	if d, err := a.Depth(ctx); err != nil || d != 0 {
		t.Errorf("depth after draining: %d, %v", d, err)
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

// A claim right after Enqueue returned sees the message: the server
// acknowledges a publish before it tells the consumer, so a pull that does
// not wait could miss it (the cause of OrderingModel's rare "claim
// returned []" under load).
func TestJetStreamClaimSeesOwnEnqueue(t *testing.T) {
	q := openJetStream(t, t.TempDir(), queue.JetStreamOptions{})
	defer q.Close()
	ctx := context.Background()
	for i := range 500 {
		if err := q.Enqueue(ctx, []queue.Message{queuetest.Msg("d", "", i)}); err != nil {
			t.Fatal(err)
		}
		jobs, err := q.Claim(ctx, "d", 1, time.Hour)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claim %d right after its enqueue: %d jobs, %v", i, len(jobs), err)
		}
		if err := q.Succeed(ctx, []int64{jobs[0].ID}); err != nil {
			t.Fatal(err)
		}
	}
}
