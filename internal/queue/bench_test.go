package queue_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/queue"
)

var bigQueue = flag.Int("queue.big", 200_000, "jobs queued for BenchmarkStats and BenchmarkClaimDeep (1000000 for the RSS target)")

// payload is a ~500-byte Segment track event, like STYLE.md's measurements.
var payload = []byte(`{"type":"track","event":"Order Completed","userId":"user-000123","anonymousId":"0f8b7c1e-7a0b-4f4e-9f6c-0d1e2f3a4b5c","messageId":"msg-0001","timestamp":"2026-03-01T12:00:00.000Z","context":{"library":{"name":"analytics.js","version":"4.1.0"},"ip":"203.0.113.9","userAgent":"Mozilla/5.0 (X11; Linux x86_64)","page":{"path":"/checkout","url":"https://shop.example/checkout"}},"properties":{"order_id":"o-99812","total":129.95,"currency":"USD","products":[{"sku":"sku-1","price":59.95,"quantity":1},{"sku":"sku-2","price":70,"quantity":1}]}}`)

func benchMsgs(prefix string, n, keys int) []queue.Message {
	msgs := make([]queue.Message, n)
	now := time.Now()
	for i := range msgs {
		msgs[i] = queue.Message{Source: "web", Dest: "klaviyo", Key: "user-" + strconv.Itoa(i%keys),
			MessageID: prefix + strconv.Itoa(i), Payload: payload, ReceivedAt: now}
	}
	return msgs
}

// fill enqueues n jobs over keys keys from 8 producers.
func fill(b *testing.B, q queue.Queue, n, keys int) {
	b.Helper()
	const batch = 1000
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for start := range work {
				if err := q.Enqueue(context.Background(), benchMsgs(fmt.Sprint("f", start, "-"), min(batch, n-start), keys)); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for start := 0; start < n; start += batch {
		work <- start
	}
	close(work)
	wg.Wait()
}

// cpuTime is the process's user+system CPU time so far. Benchmarks report
// CPU per event besides wall-clock throughput, because on a shared machine
// the wall clock mostly measures the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssMiB() float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkEnqueue: 64 concurrent producers, each enqueueing one batch of
// 100 ~500-byte events per round, every call waiting for its fsync'd
// group commit.
func BenchmarkEnqueue(b *testing.B) {
	const producers, per = 64, 100
	q := openSQLite(b, b.TempDir(), queue.SQLiteOptions{})
	defer closeQ(b, q)
	batches := make([][]queue.Message, producers)
	for p := range batches {
		batches[p] = benchMsgs(fmt.Sprint("p", p, "-"), per, 1000)
	}
	c0, r0 := q.CommitStats()
	cpu0 := cpuTime()
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				if err := q.Enqueue(context.Background(), batches[p]); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	c1, r1 := q.CommitStats()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*producers*per), "cpu-ns/event")
	b.ReportMetric(float64(b.N*producers*per)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(r1-r0)/float64(max(c1-c0, 1)), "rows/commit")
}

// BenchmarkClaimSucceed: one worker claiming 500 jobs and acking them, from
// a queue of 100k jobs over 1,000 keys.
func BenchmarkClaimSucceed(b *testing.B) {
	const limit = 500
	q := openSQLite(b, b.TempDir(), queue.SQLiteOptions{})
	defer closeQ(b, q)
	fill(b, q, 100_000, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	jobs := 0
	var cpu time.Duration
	cpu0 := cpuTime()
	for b.Loop() {
		got, err := q.Claim(ctx, "klaviyo", limit, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Succeed(ctx, ids(got)); err != nil {
			b.Fatal(err)
		}
		jobs += len(got)
		if len(got) < limit {
			b.StopTimer()
			cpu += cpuTime() - cpu0
			fill(b, q, 100_000, 1000)
			cpu0 = cpuTime()
			b.StartTimer()
		}
	}
	cpu += cpuTime() - cpu0
	b.ReportMetric(float64(jobs)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(jobs), "cpu-ns/job")
}

// BenchmarkClaimBehindBlockedKey: the head of a hot key is executing and
// 20k of its jobs wait behind it, ahead of everything else; each claim must
// step over them.
func BenchmarkClaimBehindBlockedKey(b *testing.B) {
	const limit = 100
	q := openSQLite(b, b.TempDir(), queue.SQLiteOptions{})
	defer closeQ(b, q)
	ctx := context.Background()
	hot := benchMsgs("hot", 20_001, 1) // all key user-0
	if err := q.Enqueue(ctx, hot[:1]); err != nil {
		b.Fatal(err)
	}
	if _, err := q.Claim(ctx, "klaviyo", 1, time.Hour); err != nil {
		b.Fatal(err)
	}
	if err := q.Enqueue(ctx, hot[1:]); err != nil {
		b.Fatal(err)
	}
	others := func() {
		msgs := benchMsgs("o", 50_000, 1000)
		for i := range msgs {
			msgs[i].Key = "other-" + msgs[i].Key
		}
		if err := q.Enqueue(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	others()
	b.ReportAllocs()
	for b.Loop() {
		got, err := q.Claim(ctx, "klaviyo", limit, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) < limit {
			b.Fatalf("claimed %d behind the blocked key, want %d", len(got), limit)
		}
		if err := q.Succeed(ctx, ids(got)); err != nil {
			b.Fatal(err)
		}
		if st, _ := q.Stats(ctx); st.Pending < 20_000+limit {
			b.StopTimer()
			others()
			b.StartTimer()
		}
	}
}

// BenchmarkStats: Stats on a queue of -queue.big jobs over 3 destinations;
// also reports the process RSS with that queue.
func BenchmarkStats(b *testing.B) {
	q := openSQLite(b, b.TempDir(), queue.SQLiteOptions{})
	defer closeQ(b, q)
	fill(b, q, *bigQueue, 10_000)
	ctx := context.Background()
	for _, d := range []string{"a", "b"} {
		m := benchMsgs(d, 10, 5)
		for i := range m {
			m[i].Dest = d
		}
		if err := q.Enqueue(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		st, err := q.Stats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if st.Depth != int64(*bigQueue)+20 {
			b.Fatalf("depth %d", st.Depth)
		}
	}
	b.ReportMetric(rssMiB(), "rss-MiB")
}

// BenchmarkClaimDeep: claim+succeed from the front of a -queue.big backlog
// (RSS reported), after reopening it as the server would after a restart.
func BenchmarkClaimDeep(b *testing.B) {
	dir := b.TempDir()
	q := openSQLite(b, dir, queue.SQLiteOptions{})
	fill(b, q, *bigQueue, 10_000)
	closeQ(b, q)
	start := time.Now()
	q = openSQLite(b, dir, queue.SQLiteOptions{})
	defer closeQ(b, q)
	openMs := float64(time.Since(start).Milliseconds())
	ctx := context.Background()
	jobs := 0
	b.ReportAllocs()
	for b.Loop() {
		got, err := q.Claim(ctx, "klaviyo", 500, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			b.Fatal("backlog drained; raise -queue.big")
		}
		if err := q.Succeed(ctx, ids(got)); err != nil {
			b.Fatal(err)
		}
		jobs += len(got)
	}
	b.ReportMetric(float64(jobs)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(rssMiB(), "rss-MiB")
	b.ReportMetric(openMs, "open-ms")
}

func ids(jobs []queue.Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}
