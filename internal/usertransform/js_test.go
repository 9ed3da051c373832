package usertransform

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/spec"
)

func event() spec.Event {
	return spec.Event{
		Type: spec.TypeTrack, MessageID: "m-1", UserID: "u1", Event: "Order Completed",
		Properties: map[string]any{"total": float64(30), "coupon": "X", "diagnosis": "flu"},
		Timestamp:  time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
		ReceivedAt: time.Date(2026, 3, 4, 5, 6, 8, 0, time.UTC),
	}
}

// typical is the kind of transformation users write: rename, compute,
// drop a key, drop test users.
const typical = `
export function transformEvent(event, metadata) {
	if (event.userId && event.userId.startsWith("test-")) return null;
	const props = event.properties || {};
	props.total_cents = Math.round((props.total || 0) * 100);
	delete props.diagnosis;
	props.destination = metadata(event).destinationName;
	event.properties = props;
	return event;
}`

func compile(t *testing.T, src string, lim Limits) *JS {
	t.Helper()
	j, err := CompileJS(src, lim)
	if err != nil {
		t.Fatalf("CompileJS: %v", err)
	}
	return j
}

func TestTransformResults(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		src    string
		events int
		check  func(t *testing.T, r Result)
	}{
		{"typical", typical, 1, func(t *testing.T, r Result) {
			p := r.Events[0].Properties
			if p["total_cents"] != float64(3000) || p["diagnosis"] != nil || p["destination"] != "klaviyo" {
				t.Errorf("properties = %v", p)
			}
			if !r.Events[0].Timestamp.Equal(event().Timestamp) || r.Events[0].MessageID != "m-1" {
				t.Errorf("event = %+v", r.Events[0])
			}
		}},
		{"null drops", `function transformEvent(e) { return null }`, 0, nil},
		{"undefined drops", `function transformEvent(e) { }`, 0, nil},
		{"array fans out with own ids", `function transformEvent(e) { var b = JSON.parse(JSON.stringify(e)); b.event = "Second"; return [e, null, b] }`, 2, func(t *testing.T, r Result) {
			if r.Events[0].MessageID != "m-1" || r.Events[1].MessageID != "m-1-1" || r.Events[1].Event != "Second" {
				t.Errorf("ids = %s %s", r.Events[0].MessageID, r.Events[1].MessageID)
			}
		}},
		{"empty array drops", `function transformEvent(e) { return [] }`, 0, nil},
		{"logs captured", `function transformEvent(e) { console.log("hi", 1); log("there"); return e }`, 1, func(t *testing.T, r Result) {
			if strings.Join(r.Logs, "|") != "hi 1|there" {
				t.Errorf("logs = %q", r.Logs)
			}
		}},
		{"date is the event time", `function transformEvent(e) { e.properties.now = new Date().toISOString(); e.properties.ms = Date.now(); return e }`, 1, func(t *testing.T, r Result) {
			if r.Events[0].Properties["now"] != "2026-03-04T05:06:07.000Z" {
				t.Errorf("now = %v", r.Events[0].Properties["now"])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := compile(t, tt.src, Limits{})
			in := event()
			r, err := j.Transform(ctx, &in, Metadata{DestinationName: "klaviyo"})
			if err != nil {
				t.Fatalf("Transform: %v", err)
			}
			if len(r.Events) != tt.events {
				t.Fatalf("got %d events, want %d", len(r.Events), tt.events)
			}
			if in.Properties["diagnosis"] != "flu" {
				t.Error("Transform changed its input")
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestTransformErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		src  string
		code string
		line int
		lim  Limits
	}{
		{"throw names the line", "function transformEvent(e) {\n  var x = 1;\n  throw new Error('boom');\n}", "js_error", 3, Limits{}},
		{"type error names the line", "function transformEvent(e) {\n\n  return e.nope.deeper;\n}", "js_error", 3, Limits{}},
		{"endless loop times out", "function transformEvent(e) {\n  while (true) {}\n}", "timeout", 1, Limits{Timeout: 20 * time.Millisecond}},
		{"recursion is bounded", "function f(n) { return f(n + 1) + 1 }\nfunction transformEvent(e) { return f(0) }", "limit", 1, Limits{}},
		{"huge repeat refused", "function transformEvent(e) {\n  e.properties.x = 'ab'.repeat(1e9); return e }", "js_error", 2, Limits{}},
		{"huge array refused", "function transformEvent(e) {\n  var a = new Array(1e9); return e }", "js_error", 2, Limits{}},
		{"number result", "function transformEvent(e) { return 5 }", "bad_result", 0, Limits{}},
		{"function result", "function transformEvent(e) { return function() {} }", "bad_result", 0, Limits{}},
		{"bad type", "function transformEvent(e) { e.type = 'purchase'; return e }", "bad_result", 0, Limits{}},
		{"too many events", "function transformEvent(e) { return [e, e, e] }", "limit", 0, Limits{MaxEvents: 2}},
		{"output too big", "function transformEvent(e) { e.properties.x = 'a'.repeat(5000); return e }", "limit", 0, Limits{MaxOutputBytes: 1000}},
		{"input too big", "function transformEvent(e) { return e }", "limit", 0, Limits{MaxInputBytes: 10}},
		{"no require", "function transformEvent(e) { require('fs'); return e }", "js_error", 1, Limits{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := compile(t, tt.src, tt.lim)
			in := event()
			_, err := j.Transform(ctx, &in, Metadata{})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Code != tt.code || e.Line != tt.line {
				t.Errorf("err = %v (code %s line %d), want code %s line %d", e, e.Code, e.Line, tt.code, tt.line)
			}
			// The VM pool recovers: a good event still transforms.
			ok := compile(t, typical, Limits{})
			if _, err := ok.Transform(ctx, &in, Metadata{}); err != nil {
				t.Errorf("after failure: %v", err)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, src := range []string{"function transformEvent(e) {", "var x = 1;", "throw new Error('at load')"} {
		_, err := CompileJS(src, Limits{})
		var e *Error
		if !errors.As(err, &e) || e.Code != "compile" && e.Code != "js_error" {
			t.Errorf("CompileJS(%q) = %v, want a compile error", src, err)
		}
	}
	_, err := CompileJS("function transformEvent(e) {\n  return e +;\n}", Limits{})
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 {
		t.Errorf("syntax error = %v, want line 2", err)
	}
}

// A timed-out event does not block the others: with two VMs, events keep
// flowing while one VM spins.
func TestTimeoutDoesNotBlockOthers(t *testing.T) {
	j := compile(t, `function transformEvent(e) { if (e.event === "spin") { while (true) {} } return e }`, Limits{Timeout: 50 * time.Millisecond, VMs: 2})
	var wg sync.WaitGroup
	wg.Go(func() {
		spin := event()
		spin.Event = "spin"
		if _, err := j.Transform(context.Background(), &spin, Metadata{}); err == nil {
			t.Error("spin did not time out")
		}
	})
	time.Sleep(20 * time.Millisecond)
	for range 50 {
		in := event()
		if _, err := j.Transform(context.Background(), &in, Metadata{}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

func TestDeterministic(t *testing.T) {
	j := compile(t, `function transformEvent(e) { e.properties.r = Math.random(); return e }`, Limits{VMs: 1})
	in := event()
	a, _ := j.Transform(context.Background(), &in, Metadata{})
	b, _ := j.Transform(context.Background(), &in, Metadata{})
	other := event()
	other.MessageID = "m-2"
	c, _ := j.Transform(context.Background(), &other, Metadata{})
	if a.Events[0].Properties["r"] != b.Events[0].Properties["r"] || a.Events[0].Properties["r"] == c.Events[0].Properties["r"] {
		t.Errorf("Math.random: %v %v %v", a.Events[0].Properties["r"], b.Events[0].Properties["r"], c.Events[0].Properties["r"])
	}
}

func BenchmarkTypicalTransformation(b *testing.B) {
	j, err := CompileJS(typical, Limits{VMs: 1})
	if err != nil {
		b.Fatal(err)
	}
	in := event()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Transform(ctx, &in, Metadata{DestinationName: "klaviyo"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// The heap watchdog interrupts a transformation that keeps allocating
// (a push loop the array and string guards do not see).
func TestHeapGrowthInterrupts(t *testing.T) {
	j := compile(t, "function transformEvent(e) {\n  var a = [];\n  for (;;) { a.push({x: 'y' + a.length}); }\n}",
		Limits{Timeout: 20 * time.Second, MaxHeapGrowth: 32 << 20})
	in := event()
	start := time.Now()
	_, err := j.Transform(context.Background(), &in, Metadata{})
	var e *Error
	if !errors.As(err, &e) || e.Code != "memory" || !strings.Contains(e.Message, "heap") {
		t.Fatalf("err = %v, want a heap limit", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s: the timeout, not the heap check, stopped it", time.Since(start))
	}
}
