package presink_test

import (
	"context"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/presink"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/usertransform"
)

func benchEvent() spec.Event {
	return spec.Event{Type: spec.TypeTrack, MessageID: "m-1", UserID: "u-1", Event: "Order Completed",
		Properties: map[string]any{"plan": "pro", "total": 30.5, "note": "free text"},
		Context:    map[string]any{"ip": "203.0.113.9", "traits": map[string]any{"email": "a@example.com"}},
		Timestamp:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// BenchmarkStage measures the stage per event: off (no settings), a hipaa
// policy alone, and a typical transformation with the policy.
func BenchmarkStage(b *testing.B) {
	for _, c := range []struct{ name, settings string }{
		{"off", `{}`},
		{"hipaa", `{"privacyMode": "hipaa", "propertyAllowlist": ["plan"]}`},
		{"transformation+hipaa", `{"privacyMode": "hipaa", "propertyAllowlist": ["plan", "total_cents"],
			"transformation": "function transformEvent(e) { e.properties.total_cents = Math.round(e.properties.total * 100); return e }"}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			st, err := klaviyo.ParseSettings([]byte(c.settings))
			if err != nil {
				b.Fatal(err)
			}
			stage := presink.New("klaviyo", "klaviyo", usertransform.Limits{VMs: 1})
			ev := benchEvent()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := stage.Run(context.Background(), st.PreSink(), "web", &ev); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
