package gateway

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/queue"
)

// discardQueue counts messages without keeping them.
type discardQueue struct{ n atomic.Int64 }

func (q *discardQueue) Enqueue(_ context.Context, msgs []queue.Message) error {
	q.n.Add(int64(len(msgs)))
	return nil
}

// batchBody is a batch of n realistic track events (about 500 bytes each).
func batchBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"sentAt":"2026-11-23T00:00:29.326Z","batch":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"track","event":"Order Completed","userId":"user-%d","messageId":"msg-%d",`+
			`"timestamp":"2026-11-23T00:00:29.319Z","properties":{"order_id":"o-%d","revenue":25,"currency":"USD",`+
			`"products":[{"product_id":"p-1","sku":"SKU-1","name":"Mug","price":12.5,"quantity":2}]},`+
			`"context":{"library":{"name":"@segment/analytics-node","version":"3.1.0"},"ip":"203.0.113.7"},"integrations":{}}`, i, i, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkIngestBatch measures 100-event batches through the whole handler
// (auth, body read, spec.Parse, fan-out to one destination, marshal,
// Enqueue into a discarding fake).
func BenchmarkIngestBatch(b *testing.B) {
	for _, gz := range []bool{false, true} {
		name := "plain"
		if gz {
			name = "gzip"
		}
		b.Run(name, func(b *testing.B) {
			const events = 100
			q := &discardQueue{}
			gw, err := New(Config{}, Deps{Queue: q, Sources: fakeSources{}, Routes: fakeRoutes{"web": {"klaviyo"}}},
				slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			h := gw.Handler()
			body := batchBody(events)
			if gz {
				body = gzipBytes(body)
			}
			auth := basic(testKey + ":")
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/v1/batch", bytes.NewReader(body))
				r.Header.Set("Authorization", auth)
				if gz {
					r.Header.Set("Content-Encoding", "gzip")
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(q.n.Load())/b.Elapsed().Seconds(), "events/s")
		})
	}
}
