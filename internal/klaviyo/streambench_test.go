package klaviyo

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/relaycdp/relay/bench/corpus"
	"github.com/relaycdp/relay/internal/spec"
)

const benchCorpusEvents = 10000

// benchCorpus is the first events of the bench harness's corpus as one
// JSON array (30% identify, 60% track, 10% orders).
func benchCorpus() []byte { return corpus.Array(benchCorpusEvents) }

// BenchmarkTransformStream is `relay transform` without the process: read,
// parse, map, render and write 10,000 corpus events per op, what
// relaybench's whole-process transform figure measures. events/cpu-s is
// the figure to compare on a shared machine.
func BenchmarkTransformStream(b *testing.B) {
	in := benchCorpus()
	opts := StreamOptions{Now: func() time.Time { return time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC) }}
	s := DefaultSettings()
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	cpu0 := cpuTime(b)
	for b.Loop() {
		st, _, err := TransformStream(bytes.NewReader(in), io.Discard, opts, s)
		if err != nil || st.Events != benchCorpusEvents {
			b.Fatalf("stream: %v, %d events", err, st.Events)
		}
	}
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(b.N*benchCorpusEvents)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchCorpusEvents), "ns/event")
}

// BenchmarkAppendOutcome renders the corpus's outcomes (compact) with
// encoding/json and with the hand-written appender; one op is one outcome.
func BenchmarkAppendOutcome(b *testing.B) {
	outs, err := Transform(benchCorpus(), spec.Options{}, DefaultSettings())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			buf.Reset()
			if err := enc.Encode(&outs[i%len(outs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("appender", func(b *testing.B) {
		var a outcomeAppender
		var buf []byte
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if buf, err = a.appendOutcome(buf[:0], &outs[i%len(outs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
