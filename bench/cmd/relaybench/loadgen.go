package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaycdp/relay/bench/corpus"
)

// batchBody wraps corpus events in a /v1/batch body as an SDK sends it.
func batchBody(evs [][]byte, sentAt time.Time) []byte {
	n := 64
	for _, e := range evs {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"batch":[`...)
	for i, e := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	b = append(b, `],"sentAt":"`...)
	b = sentAt.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, `"}`...)
}

// body is one request body and how many events it carries.
type body struct {
	b      []byte
	events int
}

// prebuilt returns the first n corpus events as batches of size batch.
func prebuilt(n, batch int) []body {
	g := corpus.New()
	now := time.Now()
	var out []body
	for sent := 0; sent < n; sent += batch {
		k := min(batch, n-sent)
		evs := make([][]byte, k)
		for i := range evs {
			evs[i], _ = g.Next(nil)
		}
		out = append(out, body{batchBody(evs, now), k})
	}
	return out
}

// stream hands out the corpus as batches, generated on demand, up to n
// events; it is safe for concurrent use.
type stream struct {
	mu    sync.Mutex
	g     *corpus.Generator
	left  int
	batch int
	buf   [][]byte
}

func newStream(n, batch int) *stream { return &stream{g: corpus.New(), left: n, batch: batch} }

func (s *stream) next() (body, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.left == 0 {
		return body{}, false
	}
	k := min(s.batch, s.left)
	s.left -= k
	s.buf = s.buf[:0]
	for range k {
		e, _ := s.g.Next(nil)
		s.buf = append(s.buf, e)
	}
	return body{batchBody(s.buf, time.Now()), k}, true
}

// client is the load generator's HTTP client: keep-alive connections to
// relay, one per concurrent sender.
func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: 60 * time.Second,
	}
}

// post sends one batch with the write key and reports the status.
func post(ctx context.Context, c *http.Client, url string, b []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(benchWriteKey, "")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// loadResult is what one load phase saw.
type loadResult struct {
	Requests  int64
	Accepted  int64 // events in requests answered 200
	Failed    int64 // requests not answered 200 (or not answered)
	Elapsed   time.Duration
	Latencies []time.Duration
	Statuses  map[string]int64
}

func (r *loadResult) add(o loadResult) {
	r.Requests += o.Requests
	r.Accepted += o.Accepted
	r.Failed += o.Failed
	r.Latencies = append(r.Latencies, o.Latencies...)
	for k, v := range o.Statuses {
		if r.Statuses == nil {
			r.Statuses = map[string]int64{}
		}
		r.Statuses[k] += v
	}
}

func (r *loadResult) record(ctx context.Context, status int, err error, events int, lat time.Duration) {
	if err != nil && ctx.Err() != nil {
		return // the phase ended while the request was in flight
	}
	r.Requests++
	r.Latencies = append(r.Latencies, lat)
	if r.Statuses == nil {
		r.Statuses = map[string]int64{}
	}
	switch {
	case err != nil:
		r.Failed++
		r.Statuses["error"]++
	case status == 200:
		r.Accepted += int64(events)
		r.Statuses["200"]++
	default:
		r.Failed++
		r.Statuses[fmt.Sprint(status)]++
	}
}

// closedLoop runs conc senders, each posting its next body as soon as the
// previous one is answered, until next runs out or ctx ends. It measures
// the most relay accepts.
func closedLoop(ctx context.Context, c *http.Client, url string, conc int, next func() (body, bool)) loadResult {
	var (
		mu  sync.Mutex
		all loadResult
		wg  sync.WaitGroup
	)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine loadResult
			for ctx.Err() == nil {
				b, ok := next()
				if !ok {
					break
				}
				t0 := time.Now()
				status, err := post(ctx, c, url, b.b)
				mine.record(ctx, status, err, b.events, time.Since(t0))
			}
			mu.Lock()
			all.add(mine)
			mu.Unlock()
		}()
	}
	wg.Wait()
	all.Elapsed = time.Since(start)
	return all
}

// openLoop sends bodies at a fixed rate (requests/s) for warmup + dur,
// whatever relay's answers do, so a slow answer cannot hold the next
// request back (no coordinated omission): each latency runs from the
// request's scheduled time, so time spent waiting for a free sender
// counts. Only requests scheduled after the warm-up are recorded.
func openLoop(ctx context.Context, c *http.Client, url string, rate float64, warmup, dur time.Duration, senders int, bodies []body) loadResult {
	type job struct {
		at     time.Time
		b      body
		warmup bool // sent, not recorded
	}
	jobs := make(chan job, 1<<16)
	var (
		mu  sync.Mutex
		all loadResult
		wg  sync.WaitGroup
	)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine loadResult
			for j := range jobs {
				status, err := post(ctx, c, url, j.b.b)
				if !j.warmup {
					mine.record(ctx, status, err, j.b.events, time.Since(j.at))
				}
			}
			mu.Lock()
			all.add(mine)
			mu.Unlock()
		}()
	}
	start := time.Now()
	measured := start.Add(warmup)
	interval := time.Duration(float64(time.Second) / rate)
	var n atomic.Int64
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(measured) >= dur || ctx.Err() != nil {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		jobs <- job{at, bodies[i%len(bodies)], at.Before(measured)}
		n.Add(1)
	}
	close(jobs)
	wg.Wait()
	all.Elapsed = time.Since(measured)
	return all
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func sortedLatencies(r loadResult) []time.Duration {
	s := slices.Clone(r.Latencies)
	slices.Sort(s)
	return s
}
