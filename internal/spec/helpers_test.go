package spec

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ts parses an RFC 3339 test timestamp or fails the test binary loudly.
func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// obj decodes a JSON object literal the way Parse does (float64 numbers).
func obj(s string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		panic(err)
	}
	return m
}

// roundTrip checks that ev survives JSON encoding unchanged, which is how
// the gateway hands it to the queue.
func roundTrip(t *testing.T, ev Event) {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("marshal event: %v", err)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal event %s: %v", b, err)
	}
	if d := cmp.Diff(ev, back); d != "" {
		t.Fatalf("event changed in a JSON round trip (-before +after):\n%s", d)
	}
}
