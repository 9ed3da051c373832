package presink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/presink"

	"github.com/relaycdp/relay/internal/delivery"
	"github.com/relaycdp/relay/internal/delivery/deliverytest"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
	"github.com/relaycdp/relay/internal/klaviyo/kdest"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
	"github.com/relaycdp/relay/internal/usertransform"
)

const simKey = "pk_presink_test"

// Values of keys that no policy below allows. None may appear in any
// request body the simulator receives.
var secrets = []string{"influenza", "Springfield", "1 Main St", "SECRET-UA", "203.0.113.9", "condition=cancer",
	"cancer+clinic", "patient reports pain", "Doe", "test=hiv", "next=results", "Your HIV test", "anon-1"}

// TestNoDisallowedValueReachesKlaviyo delivers the golden events through
// the real delivery worker, stage and client into the simulator and scans
// every request body it received. Standard mode is the control: there
// the same values do arrive, so the scan can fail.
func TestNoDisallowedValueReachesKlaviyo(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings string
		leaks    bool
		present  []string // allowlisted values that must arrive
	}{
		{"standard", goldenSettings["standard"], true, nil},
		{"hipaa", goldenSettings["hipaa"], false, []string{"pat@example.com"}},
		{"hipaa_allowlist", `{"sendPageAsTrack": true, "privacyMode": "hipaa", "propertyAllowlist": ["clinic"], "traitAllowlist": ["firstName"]}`, false, []string{"Oncology West", "Pat"}},
		{"transformation then hipaa", `{"sendPageAsTrack": true, "privacyMode": "hipaa", "propertyAllowlist": ["summary"],
			"transformation": "function transformEvent(e) { if (e.properties) { e.properties.summary = 'booked'; e.properties.copy = e.properties.note } return e }"}`,
			false, []string{"booked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bodies := deliver(t, tc.settings)
			all := strings.Join(bodies, "\n")
			leaked := []string{}
			for _, s := range secrets {
				if strings.Contains(all, s) {
					leaked = append(leaked, s)
				}
			}
			if tc.leaks && len(leaked) == 0 {
				t.Fatalf("control: no secret reached the simulator in standard mode (%d bodies); the scan cannot fail", len(bodies))
			}
			if !tc.leaks && len(leaked) > 0 {
				t.Errorf("values of non-allowlisted keys reached Klaviyo: %q", leaked)
			}
			for _, p := range tc.present {
				if !strings.Contains(all, p) {
					t.Errorf("allowlisted value %q did not arrive", p)
				}
			}
		})
	}
}

// deliver runs the golden events through one delivery batch with settings
// and returns every request body the simulator received.
func deliver(t *testing.T, settings string) []string {
	t.Helper()
	bodies, log := deliverLog(t, settings)
	for _, e := range log.Records {
		if e.Status != store.StatusDelivered {
			t.Errorf("%s: %s %s", e.MessageID, e.Status, e.Detail)
		}
	}
	return bodies
}

func deliverLog(t *testing.T, settings string) ([]string, *deliverytest.FakeLog) {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := sim.New(sim.Config{Keys: []string{simKey}, JobDelay: -1}, discard)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		bodies []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.URL.String()+" "+string(b))
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		s.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); s.Close() })
	client, err := kapi.New(kapi.Config{BaseURL: srv.URL, MaxAttempts: 1, Timeout: 5 * time.Second}, discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := klaviyo.ParseSettings([]byte(settings))
	if err != nil {
		t.Fatal(err)
	}
	st.PrivateAPIKey = simKey
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	stage := presink.New("klaviyo", "klaviyo", usertransform.Limits{})
	q := &deliverytest.FakeQueue{Jobs: goldenJobs(t)}
	log := &deliverytest.FakeLog{}
	var audit []store.AuditEntry
	sink := kdest.NewSink(kdest.Config{Settings: func() klaviyo.Settings { return st }, ImportJobTimeout: 5 * time.Second}, client, discard, nil)
	w := delivery.New(delivery.Config{
		Dest: "klaviyo", Title: "Klaviyo", Sink: sink,
		PreSink: func(ctx context.Context, source string, ev *spec.Event) (delivery.PreSinkResult, error) {
			res, err := stage.Run(ctx, st.PreSink(), source, ev)
			return delivery.PreSinkResult{Events: res.Events, Skipped: res.Skipped, Sent: res.Sent, Dropped: res.Dropped, Audit: res.Active}, err
		},
		Audit: func(_ context.Context, es []store.AuditEntry) error { audit = append(audit, es...); return nil },
	}, q, log, discard, nil)
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The audit log and the delivery log name keys, never values.
	auditJSON, _ := json.Marshal(audit)
	logJSON, _ := json.Marshal(log.Records)
	for _, sec := range secrets {
		if strings.Contains(string(auditJSON), sec) || strings.Contains(string(logJSON), sec) {
			t.Errorf("the audit or delivery log holds the value %q", sec)
		}
	}
	// Bulk jobs are applied after the batch; their bodies were already sent.
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), bodies...), log
}

// A transformation that throws dead-letters that event with the error and
// the line; the filter skips; the other events are delivered.
func TestTransformationFailureDeadLetters(t *testing.T) {
	settings := `{"sendPageAsTrack": true, "filter": {"drop": "type == \"page\""},
		"transformation": "function transformEvent(e) {\n  if (e.type === 'identify') {\n    throw new Error('no identifies here');\n  }\n  return e;\n}"}`
	_, log := deliverLog(t, settings)
	status := map[string]store.LogEntry{}
	for _, e := range log.Records {
		status[e.MessageID] = e
	}
	if e := status["g-identify"]; e.Status != store.StatusDead || !strings.Contains(e.Detail, "line 3") || !strings.Contains(e.Detail, "no identifies here") {
		t.Errorf("identify: %s %q", e.Status, e.Detail)
	}
	if len(log.DeadLetters) != 1 || log.DeadLetters[0].Code != "transformation_js_error" {
		t.Errorf("dead letters = %+v", log.DeadLetters)
	}
	if e := status["g-page"]; e.Status != store.StatusSkipped || !strings.Contains(e.Detail, "filter") {
		t.Errorf("page: %s %q", e.Status, e.Detail)
	}
	if e := status["g-track"]; e.Status != store.StatusDelivered {
		t.Errorf("track: %s %q", e.Status, e.Detail)
	}
}

// The delivery log says which keys the policy dropped.
func TestDeliveryLogNamesDroppedKeys(t *testing.T) {
	_, log := deliverLog(t, goldenSettings["hipaa"])
	for _, e := range log.Records {
		if e.MessageID == "g-track" && !strings.Contains(e.Detail, "privacy policy dropped") || !strings.Contains(e.Detail, "context.ip") {
			t.Errorf("%s detail = %q", e.MessageID, e.Detail)
		}
	}
}

func goldenJobs(t *testing.T) []queue.Job {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "golden", "events.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := spec.Parse(raw, spec.Options{ReceivedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var out []queue.Job
	for i, it := range b.Items {
		payload, _ := json.Marshal(it.Event)
		out = append(out, queue.Job{ID: int64(i + 1), Message: queue.Message{
			Source: "web", Dest: "klaviyo", Key: it.Event.Key(), MessageID: it.Event.MessageID,
			Payload: payload, ReceivedAt: time.Now(),
		}})
	}
	return out
}
