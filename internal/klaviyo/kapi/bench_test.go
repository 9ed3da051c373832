package kapi

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo"
)

// BenchmarkDo measures one successful call against a local server (limits
// out of the way): the client's overhead plus loopback HTTP.
func BenchmarkDo(b *testing.B) {
	env := newEnv(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 202, `{"data":{"type":"event-bulk-create-job","id":"J1"}}`)
	}), unlimited)
	body := json.RawMessage(`{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[]}}}}`)
	req := klaviyo.Request{Method: "POST", Path: "/api/event-bulk-create-jobs", Body: body}
	ctx := b.Context()
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		if _, err := env.c.Do(ctx, testKey, req); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkDoParallel is the same with concurrent callers sharing a bucket.
func BenchmarkDoParallel(b *testing.B) {
	env := newEnv(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 202, "")
	}), unlimited)
	req := klaviyo.Request{Method: "POST", Path: "/api/events", Body: json.RawMessage(`{"data":{}}`)}
	ctx := b.Context()
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := env.c.Do(ctx, testKey, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// unlimited lifts the limits far above what loopback can do, so the
// benchmarks measure the client rather than the limiter.
func unlimited(c *Config) {
	c.Limits = fastLimits()
	for k, l := range c.Limits {
		l.BurstPerSecond, l.SteadyPerMin = 10_000_000, 600_000_000
		c.Limits[k] = l
	}
}
