package presink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/presink"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/usertransform"
)

var update = flag.Bool("update", false, "rewrite the expected output of the golden cases")

// goldenSettings are the modes the same events run under; each writes
// testdata/golden/<name>.out.json.
var goldenSettings = map[string]string{
	"standard": `{"sendPageAsTrack": true, "additionalPageInfo": true}`,
	"hipaa":    `{"sendPageAsTrack": true, "additionalPageInfo": true, "privacyMode": "hipaa"}`,
	"hipaa_allowlist": `{"sendPageAsTrack": true, "privacyMode": "hipaa", "propertyAllowlist": ["clinic", "value"],
		"traitAllowlist": ["firstName"], "identifiers": ["email"]}`,
}

// goldenOutcome is one event's way through the stage and the mapping.
type goldenOutcome struct {
	MessageID string            `json:"messageId"`
	Dropped   []string          `json:"dropped"`
	Skipped   string            `json:"skipped,omitempty"`
	Requests  []klaviyo.Outcome `json:"outcomes"`
}

// TestGolden runs testdata/golden/events.json under each of
// goldenSettings and compares what reaches Klaviyo (requests) and what
// the policy reports dropped with <name>.out.json (-update rewrites).
func TestGolden(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "golden", "events.json"))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := spec.Parse(raw, spec.Options{ReceivedAt: time.Date(2026, 3, 4, 5, 6, 8, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	for name, settings := range goldenSettings {
		t.Run(name, func(t *testing.T) {
			st, err := klaviyo.ParseSettings([]byte(settings))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Validate(); err != nil {
				t.Fatal(err)
			}
			stage := presink.New("klaviyo", "klaviyo", usertransform.Limits{})
			var outs []goldenOutcome
			for i := range batch.Items {
				it := &batch.Items[i]
				if it.Err != nil {
					t.Fatalf("event %d: %v", i, it.Err)
				}
				res, err := stage.Run(context.Background(), st.PreSink(), "web", &it.Event)
				if err != nil {
					t.Fatal(err)
				}
				o := goldenOutcome{MessageID: it.Event.MessageID, Dropped: res.Dropped, Skipped: res.Skipped}
				for _, ev := range res.Events {
					o.Requests = append(o.Requests, klaviyo.TransformEvent(&spec.Item{Event: ev}, st))
				}
				outs = append(outs, o)
			}
			got, err := json.MarshalIndent(outs, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", name+".out.json")
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(got)) {
				t.Errorf("%s differs from the stage's output (run with -update and review the diff):\n%s", path, got)
			}
		})
	}
}
