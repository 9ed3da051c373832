package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// TestPrivacyAndTransformation runs relay serve with a hipaa destination,
// a JavaScript transformation and a filter into the simulator: allowed
// data arrives, no value of a non-allowlisted key is in any request body
// Klaviyo receives, a throwing transformation leaves its event undelivered
// (dead-lettered) while the rest go through, and the audit log export
// names the dropped keys.
func TestPrivacyAndTransformation(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	s, err := sim.New(sim.Config{Keys: []string{simKey}, JobDelay: 20 * time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		bodies bytes.Buffer
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies.WriteString(r.URL.String() + " " + string(b) + "\n")
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		s.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); s.Close() })

	dir := t.TempDir()
	const token = "e2e-admin-token-privacy"
	settings := `{"privacyMode": "hipaa", "propertyAllowlist": ["plan", "total_cents"],
      "transformation": "function transformEvent(e) {\n  if (e.event === 'Explode') {\n    throw new Error('cannot handle ' + e.event);\n  }\n  if (e.properties) { e.properties.total_cents = Math.round((e.properties.total || 0) * 100) }\n  return e;\n}",
      "filter": {"drop": "event == \"Debug\""}}`
	cfgPath := relayConfig(t, dir, srv.URL, settings)
	appendFile(t, cfgPath, fmt.Sprintf("admin: {token: %s}\n", token))
	r := startRelay(t, cfgPath, filepath.Join(dir, "data"), freeAddr(t))

	events := []string{
		`{"type":"track","messageId":"p-ok","userId":"pat","event":"Checkout","properties":{"plan":"gold","total":12.5,"diagnosis":"influenza"},
		  "context":{"ip":"203.0.113.9","userAgent":"SECRET-UA","traits":{"email":"pat@example.com","lastName":"Doe"},
		  "page":{"url":"https://clinic.example/pay?condition=cancer","referrer":"https://search.example/?q=oncology"}}}`,
		`{"type":"identify","messageId":"p-id","userId":"pat","traits":{"email":"pat@example.com","firstName":"Pat","diagnosis":"influenza"},"context":{"ip":"203.0.113.9"}}`,
		`{"type":"track","messageId":"p-debug","userId":"pat","event":"Debug","properties":{"plan":"gold"},"context":{"traits":{"email":"pat@example.com"}}}`,
		`{"type":"track","messageId":"p-boom","userId":"pat","event":"Explode","context":{"traits":{"email":"pat@example.com"}}}`,
	}
	status, msg, err := r.post(context.Background(), "/v1/batch", `{"batch":[`+strings.Join(events, ",")+`]}`)
	if err != nil || status != 200 {
		t.Fatalf("ingest: %d %s %v", status, msg, err)
	}
	testutil.EventuallyWhy(t, 30*time.Second, "allowed event delivered", func() (bool, string) {
		for _, e := range s.State().Events {
			if e.UniqueID == "p-ok" {
				return true, ""
			}
		}
		return false, "p-ok not in Klaviyo"
	})
	var export string
	testutil.EventuallyWhy(t, 20*time.Second, "audit entries", func() (bool, string) {
		req, _ := http.NewRequest("GET", r.url("/admin/audit/export?user=pat"), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		export = string(b)
		return strings.Count(export, "\n") >= 2, fmt.Sprintf("%d %q", resp.StatusCode, export)
	})
	for _, e := range s.State().Events {
		switch e.UniqueID {
		case "p-ok":
			if e.Properties["plan"] != "gold" || fmt.Sprint(e.Properties["total_cents"]) != "1250" || e.Properties["diagnosis"] != nil {
				t.Errorf("delivered properties = %v", e.Properties)
			}
		case "p-debug", "p-boom":
			t.Errorf("%s reached Klaviyo", e.UniqueID)
		}
	}
	mu.Lock()
	all := bodies.String()
	mu.Unlock()
	for _, secret := range []string{"influenza", "203.0.113.9", "SECRET-UA", "Doe", "condition=cancer", "oncology", `"Pat"`} {
		if strings.Contains(all, secret) {
			t.Errorf("the value %q of a non-allowlisted key reached Klaviyo", secret)
		}
	}
	for _, want := range []string{`"messageId":"p-ok"`, "properties.diagnosis", "context.ip"} {
		if !strings.Contains(export, want) {
			t.Errorf("audit export lacks %s: %s", want, export)
		}
	}
	if strings.Contains(export, "influenza") || strings.Contains(export, "p-boom") || strings.Contains(export, "p-debug") {
		t.Errorf("audit export holds a value or an undelivered event: %s", export)
	}
	// The throwing event is dead-lettered with the error and its line.
	testutil.EventuallyWhy(t, 10*time.Second, "dead letter of p-boom", func() (bool, string) {
		req, _ := http.NewRequest("GET", r.url("/admin/log?q=p-boom"), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		page := string(b)
		return strings.Contains(page, "dead") && strings.Contains(page, "line 3") && strings.Contains(page, "cannot handle Explode"), "not yet"
	})
}
