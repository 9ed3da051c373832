package spec

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// trackBatch is an analytics-node style batch of n track events
// (about 600 bytes each).
func trackBatch(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"batch":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"timestamp":"2026-11-23T00:00:29.%03dZ","integrations":{},"event":"Product Viewed","type":"track",`+
			`"properties":{"product_id":"p-%d","sku":"SKU-%d","name":"Mug","price":12.5,"quantity":2,"currency":"USD","url":"https://shop.example.com/p/%d"},`+
			`"context":{"library":{"name":"@segment/analytics-node","version":"3.1.0"},"ip":"203.0.113.7","traits":{"email":"user%d@example.com"}},`+
			`"userId":"user-%d","anonymousId":"6f1c2b7e-2d7a-4a51-9a8e-%012d","messageId":"node-next-1795392029319-89ea1415-fc2f-4163-964d-%012d",`+
			`"_metadata":{"nodeVersion":"v20.20.2","jsRuntime":"node"}}`, i%1000, i, i, i, i, i, i, i)
	}
	sb.WriteString(`],"writeKey":"WK_test123","sentAt":"2026-11-23T00:00:29.999Z"}`)
	return []byte(sb.String())
}

// BenchmarkParse parses a 100-event batch of track events, the ingest hot
// path, and reports events per second alongside allocations.
func BenchmarkParse(b *testing.B) {
	const n = 100
	body := trackBatch(n)
	opts := Options{ReceivedAt: time.Date(2026, 11, 23, 0, 0, 30, 0, time.UTC), MaxEventBytes: 32 << 10}
	if batch, err := Parse(body, opts); err != nil || len(batch.Items) != n || batch.Items[n-1].Err != nil {
		b.Fatalf("bad benchmark input: %v", err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParseParallel runs Parse on every core (GOMAXPROCS), as the
// gateway does for concurrent requests: events/s is the whole machine's.
func BenchmarkParseParallel(b *testing.B) {
	const n = 100
	body := trackBatch(n)
	opts := Options{ReceivedAt: time.Date(2026, 11, 23, 0, 0, 30, 0, time.UTC), MaxEventBytes: 32 << 10}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := Parse(body, opts); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParseElement parses one event as an element of a streamed
// array: ParseElement, and Parse of the event wrapped in brackets (what
// `relay transform` did before).
func BenchmarkParseElement(b *testing.B) {
	body := trackBatch(1)
	raw := body[len(`{"batch":[`):bytes.LastIndexByte(body, ']')]
	opts := Options{ReceivedAt: time.Date(2026, 11, 23, 0, 0, 30, 0, time.UTC)}
	b.Run("ParseElement", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseElement(raw, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parse-wrapped", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = append(append(append(buf[:0], '['), raw...), ']')
			if _, err := Parse(buf, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}
