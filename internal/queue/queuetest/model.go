package queuetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/queue"
)

// modelJob is the suite's own idea of one job. The suite knows jobs by
// enqueue sequence (it enqueues from one goroutine, so ids follow that
// order) and learns their ids from claims.
type modelJob struct {
	key      string
	state    string // pending, executing, due (failed, retry passed), later (failed, retry ahead), done
	attempts int
	lastErr  string
	id       int64
}

// expectClaim is the specification of Claim written against the model:
// oldest first, due jobs only, and nothing behind an unfinished earlier
// job of the same key unless that job is returned by this claim too.
func expectClaim(jobs []*modelJob, limit int) []int {
	blocked := map[string]bool{}
	var out []int
	for seq, j := range jobs {
		if len(out) == limit {
			break
		}
		if j.state == "done" || (j.key != "" && blocked[j.key]) {
			continue
		}
		if j.state == "pending" || j.state == "due" {
			out = append(out, seq)
		} else if j.key != "" {
			blocked[j.key] = true
		}
	}
	return out
}

// testOrderingModel drives the queue with a seeded random mix of enqueues,
// claims and finishes, and checks every claim against expectClaim.
func testOrderingModel(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"a", "b", "c", ""}
	var model []*modelJob
	bySeq := map[string]int{} // message id → seq
	executing := func() []int {
		var out []int
		for seq, j := range model {
			if j.state == "executing" {
				out = append(out, seq)
			}
		}
		return out
	}
	for step := range 250 {
		switch r := rng.IntN(10); {
		case r < 3:
			var msgs []queue.Message
			for range 1 + rng.IntN(3) {
				seq := len(model)
				m := Msg("d", keys[rng.IntN(len(keys))], seq)
				model = append(model, &modelJob{key: m.Key, state: "pending"})
				bySeq[m.MessageID] = seq
				msgs = append(msgs, m)
			}
			enqueue(t, q, msgs...)
		case r < 6:
			limit := 1 + rng.IntN(5)
			want := expectClaim(model, limit)
			jobs := claim(t, q, "d", limit, hour)
			var got []int
			for _, j := range jobs {
				seq, ok := bySeq[j.MessageID]
				if !ok {
					t.Fatalf("step %d: claimed unknown message %q", step, j.MessageID)
				}
				got = append(got, seq)
				m := model[seq]
				if j.Attempts != m.attempts || j.LastError != m.lastErr {
					t.Errorf("step %d: job seq %d attempts %d last error %q; want %d, %q",
						step, seq, j.Attempts, j.LastError, m.attempts, m.lastErr)
				}
				m.state, m.id = "executing", j.ID
			}
			if !slices.Equal(want, got) {
				t.Fatalf("step %d: claim(limit %d) returned seqs %v; want %v", step, limit, got, want)
			}
		default:
			ex := executing()
			if len(ex) == 0 {
				continue
			}
			seq := ex[rng.IntN(len(ex))]
			m := model[seq]
			reason := fmt.Sprintf("err at step %d", step)
			var err error
			switch rng.IntN(4) {
			case 0:
				err = q.Succeed(ctx, []int64{m.id})
				m.state = "done"
			case 1:
				err = q.Retry(ctx, []int64{m.id}, time.Now().Add(-time.Second), reason)
				m.state, m.attempts, m.lastErr = "due", m.attempts+1, reason
			case 2:
				err = q.Retry(ctx, []int64{m.id}, time.Now().Add(hour), reason)
				m.state, m.attempts, m.lastErr = "later", m.attempts+1, reason
			case 3:
				err = q.Abort(ctx, []int64{m.id}, reason)
				m.state = "done"
			}
			if err != nil {
				t.Fatalf("step %d: finish: %v", step, err)
			}
		}
	}
}

func testConcurrentEnqueue(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	const producers, calls, per = 16, 20, 5
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := range producers {
		wg.Go(func() {
			for c := range calls {
				msgs := make([]queue.Message, per)
				for i := range msgs {
					msgs[i] = Msg("a", fmt.Sprintf("p%d", p), 0)
					msgs[i].MessageID = fmt.Sprintf("p%d-%03d-%d", p, c, i)
					msgs[i].Payload = fmt.Appendf(nil, `{"id":%q}`, msgs[i].MessageID)
				}
				if err := q.Enqueue(context.Background(), msgs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("enqueue: %v", err)
	}
	if st := stats(t, q); st.Depth != producers*calls*per {
		t.Errorf("depth %d, want %d", st.Depth, producers*calls*per)
	}
	seen := map[string]bool{}
	last := map[string]string{} // key → last message id, which sorts in enqueue order
	for {
		jobs := claim(t, q, "a", 300, hour)
		if len(jobs) == 0 {
			break
		}
		for _, j := range jobs {
			if seen[j.MessageID] {
				t.Fatalf("message %s claimed twice", j.MessageID)
			}
			seen[j.MessageID] = true
			// Concurrent calls share the writer's transactions and, in
			// SQLite, reused encoding buffers: each payload must still be
			// its own message's.
			if want := fmt.Sprintf(`{"id":%q}`, j.MessageID); string(j.Payload) != want {
				t.Fatalf("message %s has payload %s, want %s", j.MessageID, j.Payload, want)
			}
			if j.MessageID <= last[j.Key] {
				t.Fatalf("key %s: %s after %s", j.Key, j.MessageID, last[j.Key])
			}
			last[j.Key] = j.MessageID
		}
		if err := q.Succeed(context.Background(), ids(jobs)); err != nil {
			t.Fatalf("succeed: %v", err)
		}
	}
	if len(seen) != producers*calls*per {
		t.Fatalf("claimed %d distinct messages, want %d", len(seen), producers*calls*per)
	}
}

// testConcurrentClaimers runs several workers claiming and succeeding at
// once: every job is delivered once, and a key's jobs in enqueue order.
func testConcurrentClaimers(t *testing.T, open Open) {
	q := openQ(t, open, t.TempDir())
	const n, nkeys, workers = 600, 7, 4
	var msgs []queue.Message
	for i := range n {
		m := Msg("a", fmt.Sprintf("k%d", i%nkeys), i)
		if i%5 == 0 {
			m.Key = ""
		}
		msgs = append(msgs, m)
	}
	enqueue(t, q, msgs...)
	seq := map[string]int{}
	for i, m := range msgs {
		seq[m.MessageID] = i
	}
	var mu sync.Mutex
	next := map[string]int{} // key → lowest seq not yet claimed
	claimed := 0
	fail := make(chan string, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				jobs, err := q.Claim(context.Background(), "a", 7, hour)
				if err != nil {
					fail <- err.Error()
					return
				}
				mu.Lock()
				if len(jobs) == 0 && claimed == n {
					mu.Unlock()
					return
				}
				for _, j := range jobs {
					s := seq[j.MessageID]
					if j.Key != "" {
						// Every earlier job of the key was claimed (and
						// finished) before this one.
						want := next[j.Key]
						for want < n && msgs[want].Key != j.Key {
							want++
						}
						if s != want {
							mu.Unlock()
							fail <- fmt.Sprintf("key %s: claimed seq %d, next in order is %d", j.Key, s, want)
							return
						}
						next[j.Key] = s + 1
					}
					claimed++
				}
				mu.Unlock()
				if err := q.Succeed(context.Background(), ids(jobs)); err != nil {
					fail <- err.Error()
					return
				}
			}
		})
	}
	wg.Wait()
	close(fail)
	for msg := range fail {
		t.Fatal(msg)
	}
	if st := stats(t, q); st.Depth != 0 {
		t.Errorf("depth %d after draining, want 0", st.Depth)
	}
}
