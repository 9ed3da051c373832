package spec

import (
	"testing"
	"time"
)

// FuzzParseUTC: whatever parseUTC reads, time.Parse with RFC3339Nano
// reads to the same time.
func FuzzParseUTC(f *testing.F) {
	for _, s := range []string{"2024-05-01T00:00:00.010Z", "2024-02-29T23:59:59Z", "2023-02-29T00:00:00Z", "0000-01-01T00:00:00.123456789Z",
		"2024-05-01T24:00:00Z", "2024-05-01T00:00:60Z", "2024-05-01t00:00:00z", "2024-05-01T00:00:00.Z", "2024-05-01T00:00:00.1234567890Z",
		"2024-13-01T00:00:00Z", "2024-05-01T00:00:00+00:00", "+024-05-01T00:00:00Z", "2024-05-01T00:00:00.-1Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseUTC(s)
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("parseUTC(%q) = %v; time.Parse: %v", s, got, err)
		}
		if !got.Equal(want) || got.Location() != want.Location() {
			t.Fatalf("parseUTC(%q) = %v; time.Parse: %v", s, got, want)
		}
	})
}
