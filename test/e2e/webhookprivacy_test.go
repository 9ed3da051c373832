package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/testutil"
)

// TestWebhookPrivacyAndTransformation: a Webhook destination with hipaa
// mode and a transformation, through relay serve: the receiver gets the
// transformed event without the IP, the transformation's null drops an
// event, and no value of a dropped key reaches the receiver.
func TestWebhookPrivacyAndTransformation(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	const transformation = `export function transformEvent(event, metadata) {
  if (event.event === "Internal") return null;
  event.properties.plan_upper = String(event.properties.plan).toUpperCase();
  return event;
}`
	path := hookConfigWith(t, dir, fmt.Sprintf(`{url: %q, privacyMode: hipaa, propertyAllowlist: [plan, plan_upper], transformation: %q}`,
		srv.URL, transformation))
	r := startRelay(t, path, filepath.Join(dir, "data"), freeAddr(t))
	for _, ev := range []string{
		`{"messageId":"wp-1","userId":"u-wp","event":"Upgraded","properties":{"plan":"pro","diagnosis":"secret-diagnosis"},"context":{"ip":"203.0.113.77"}}`,
		`{"messageId":"wp-2","userId":"u-wp","event":"Internal"}`,
	} {
		if status, msg, err := r.post(context.Background(), "/v1/track", ev); err != nil || status != 200 {
			t.Fatalf("ingest: %d %s %v", status, msg, err)
		}
	}
	testutil.EventuallyWhy(t, 30*time.Second, "wp-1 delivered and wp-2 skipped", func() (bool, string) {
		m := metricsText(t, r)
		done := strings.Contains(m, `relay_delivery_events_total{destination="hook",outcome="delivered"} 1`) &&
			strings.Contains(m, `relay_delivery_events_total{destination="hook",outcome="skipped"} 1`)
		return done, grepLines(m, "relay_delivery_events_total")
	})
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 {
		t.Fatalf("%d requests, want 1: %q", len(bodies), bodies)
	}
	var ev struct {
		MessageID  string         `json:"messageId"`
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.MessageID != "wp-1" || ev.Properties["plan_upper"] != "PRO" || ev.Properties["diagnosis"] != nil {
		t.Errorf("received %s", bodies[0])
	}
	for _, b := range bodies {
		if strings.Contains(b, "203.0.113.77") || strings.Contains(b, "secret-diagnosis") || strings.Contains(b, "wp-2") {
			t.Errorf("a dropped value or event reached the receiver: %s", b)
		}
	}
}
