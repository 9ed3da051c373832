package klaviyo

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/spec"
)

// The benchmarks measure, per event, what the delivery path does after
// the queue: Map (event → ops), Op.Request for every op, and
// json.Marshal of every request body. Parsing (spec.Parse) is done once,
// outside the timed loop. events/s counts input events.

const benchTrack = `{"type":"track","messageId":"4f5c0d3e-6d0b-4a57-9d4e-2b9f8a1c7e55","userId":"user-42",
"event":"Video Played","timestamp":"2026-11-23T00:00:29.319Z",
"properties":{"video_id":"v-123","title":"Intro to Relay","position":42,"quality":"hd","autoplay":false},
"context":{"library":{"name":"analytics-node","version":"3.0.13"},"traits":{"email":"jane@example.com"}}}`

const benchIdentify = `{"type":"identify","messageId":"0a0f6c2e-1b7f-4e0a-9a55-6f0b7c4d2e11","userId":"user-42",
"timestamp":"2026-11-23T00:00:29.319Z",
"traits":{"email":"jane@example.com","firstName":"Jane","lastName":"Doe","phone":"+14155552671","city":"San Francisco",
"country":"US","plan":"pro","logins":17},"context":{"ip":"203.0.113.7"}}`

func benchOrder(products int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"type":"track","messageId":"9d1e","userId":"user-42","event":"Order Completed","timestamp":"2026-11-23T00:00:29.319Z",`+
		`"context":{"traits":{"email":"jane@example.com"}},"properties":{"order_id":"o-1001","revenue":125.5,"currency":"USD","coupon":"SPRING","products":[`)
	for i := range products {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"product_id":"p-%d","sku":"SKU-%d","name":"Product %d","price":12.55,"quantity":1,"category":"Games","url":"https://shop.example/p/%d"}`, i, i, i, i)
	}
	b.WriteString(`]}}`)
	return b.String()
}

func benchEvent(b *testing.B, body string) *spec.Event {
	b.Helper()
	batch, err := spec.Parse([]byte(body), spec.Options{})
	if err != nil || len(batch.Items) != 1 || batch.Items[0].Err != nil {
		b.Fatalf("parse: %v %+v", err, batch)
	}
	return &batch.Items[0].Event
}

// cpuTime is the process's user+system CPU time: on a shared machine
// wall-clock ns/op also counts time other processes held the cores, so
// events per CPU-second is reported beside events/s.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchMap(b *testing.B, ev *spec.Event, s Settings, wantOps int) {
	b.ReportAllocs()
	bytes := 0
	cpu0 := cpuTime(b)
	for b.Loop() {
		res, err := Map(ev, s)
		if err != nil || len(res.Ops) != wantOps {
			b.Fatalf("Map: %v, %d ops", err, len(res.Ops))
		}
		for _, op := range res.Ops {
			body, err := json.Marshal(op.Request(s).Body)
			if err != nil {
				b.Fatal(err)
			}
			bytes += len(body)
		}
	}
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(bytes)/float64(b.N), "bodyB/event")
}

func BenchmarkMapTrack(b *testing.B) {
	benchMap(b, benchEvent(b, benchTrack), DefaultSettings(), 1)
}

func BenchmarkMapIdentify(b *testing.B) {
	s := DefaultSettings()
	s.ListID = "L1" // profile import + subscription job
	benchMap(b, benchEvent(b, benchIdentify), s, 2)
}

func BenchmarkMapOrderCompleted10(b *testing.B) {
	benchMap(b, benchEvent(b, benchOrder(10)), DefaultSettings(), 11)
}

// BenchmarkNormalizePhone is one phone number through phonenumbers, and
// the same through a stream's phoneCache once the number was seen.
func BenchmarkNormalizePhone(b *testing.B) {
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := normalizePhone("+14155552671", "US"); !ok {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		var c phoneCache
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := c.normalize("+14155552671", "US"); !ok {
				b.Fatal("invalid")
			}
		}
	})
}
