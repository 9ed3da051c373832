package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/testutil"
	"github.com/relaycdp/relay/internal/webhook"
)

const hookSecret = "e2e-hook-signing-secret"

// hookReceiver is a webhook endpoint in the test process (it survives the
// relay's kills): it checks every request's signature, counts each
// messageId it accepted, and answers 429 while a storm lasts.
type hookReceiver struct {
	URL string

	mu       sync.Mutex
	seen     map[string]int // messageId → accepted deliveries
	badSig   int
	requests int
	// stormLeft is how many requests still get 429 with Retry-After: 1.
	stormLeft atomic.Int64
	throttled atomic.Int64
}

func startHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{seen: map[string]int{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	h.URL = srv.URL + "/hook"
	return h
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// The sender was killed mid-body: a partial body is no delivery
		// (and its signature cannot match).
		http.Error(w, "incomplete body", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.requests++
	if r.Header.Get("X-Relay-Signature") != webhook.Sign(hookSecret, body) {
		h.badSig++
		h.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	h.mu.Unlock()
	if h.stormLeft.Add(-1) >= 0 {
		h.throttled.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	}
	var doc struct {
		Batch []struct {
			MessageID string `json:"messageId"`
			UserID    string `json:"userId"`
		} `json:"batch"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		http.Error(w, "not JSON", http.StatusBadRequest)
		return
	}
	for _, ev := range doc.Batch {
		if ev.UserID == "refuse-me" {
			http.Error(w, "userId refuse-me is not accepted", http.StatusUnprocessableEntity)
			return
		}
	}
	h.mu.Lock()
	for _, ev := range doc.Batch {
		h.seen[ev.MessageID]++
	}
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// missing counts the acknowledged ids the receiver never accepted.
func (h *hookReceiver) missing(acked map[string]bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for id := range acked {
		if h.seen[id] == 0 {
			n++
		}
	}
	return n
}

func hookConfig(t *testing.T, dir, url string) string {
	return hookConfigWith(t, dir, fmt.Sprintf("{url: %q, mode: batch, maxBatchSize: 50, signingSecret: %q, timeout: 5s}", url, hookSecret))
}

// hookConfigWith writes a relay.yaml with one source and one webhook
// destination whose settings are the YAML (or JSON) object settings.
func hookConfigWith(t *testing.T, dir, settings string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
sources:
  - name: e2e
    writeKeys: [%s]
destinations:
  - name: hook
    type: webhook
    sources: [e2e]
    settings: %s
delivery:
  batchWait: 200ms
log:
  level: warn
`, writeKey, settings)
	path := filepath.Join(dir, "relay.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWebhookZeroLossUnderSIGKILL: a webhook destination from an unchanged
// SDK's wire format, relay killed with SIGKILL during ingest and delivery:
// every acknowledged event reaches the receiver, signed (delivery is at
// least once; receivers deduplicate by messageId or Idempotency-Key).
func TestWebhookZeroLossUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: kills relay processes")
	}
	h := startHookReceiver(t)
	dir := t.TempDir()
	cfg := hookConfig(t, dir, h.URL)
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	var cur atomic.Pointer[relayProc]
	cur.Store(startRelay(t, cfg, data, addr))
	s := newSender("hookloss")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); s.loop(ctx, cur.Load, 5*time.Millisecond) }()
	}
	for i := range 3 {
		time.Sleep(time.Duration(400+150*i) * time.Millisecond) // kill at varied points, not synchronisation
		cur.Load().kill()
		cur.Store(startRelay(t, cfg, data, addr))
	}
	stop()
	wg.Wait()
	acked := s.ackedIDs()
	if len(acked) < 100 {
		t.Fatalf("only %d events acknowledged: the test did not exercise anything", len(acked))
	}
	testutil.EventuallyWhy(t, 60*time.Second, "every acknowledged event at the receiver", func() (bool, string) {
		m := h.missing(acked)
		return m == 0, fmt.Sprintf("%d of %d missing", m, len(acked))
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.badSig > 0 {
		t.Errorf("%d requests with a wrong signature", h.badSig)
	}
	dups := 0
	for _, n := range h.seen {
		if n > 1 {
			dups++
		}
	}
	t.Logf("sent %d, acknowledged %d, %d requests, %d events delivered more than once (kills)", s.sent.Load(), len(acked), h.requests, dups)
}

// TestWebhookRetryAfterStormAndDeadLetter: the receiver answers 429 with
// Retry-After to the first requests; delivery waits and retries until
// everything is accepted exactly once; an event the receiver refuses
// (422) is dead-lettered alone, the rest of its batch delivered.
func TestWebhookRetryAfterStormAndDeadLetter(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	h := startHookReceiver(t)
	const storm = 6
	h.stormLeft.Store(storm)
	dir := t.TempDir()
	r := startRelay(t, hookConfig(t, dir, h.URL), filepath.Join(dir, "data"), freeAddr(t))
	s := newSender("hookstorm")
	s.post(t, r, 400)
	refused := `{"batch":[{"type":"track","messageId":"hook-refused","userId":"refuse-me","event":"E"}]}`
	if status, msg, err := r.post(context.Background(), "/v1/batch", refused); err != nil || status != 200 {
		t.Fatalf("ingest: %d %s %v", status, msg, err)
	}
	acked := s.ackedIDs()
	testutil.EventuallyWhy(t, 60*time.Second, "every event through the storm", func() (bool, string) {
		m := h.missing(acked)
		return m == 0 && h.throttled.Load() >= storm, fmt.Sprintf("%d of %d missing, %d throttled", m, len(acked), h.throttled.Load())
	})
	h.mu.Lock()
	for id, n := range h.seen {
		if n != 1 {
			t.Errorf("%s accepted %d times without a kill", id, n)
		}
	}
	h.mu.Unlock()
	testutil.EventuallyWhy(t, 30*time.Second, "the refused event dead-lettered", func() (bool, string) {
		m := metricsText(t, r)
		return strings.Contains(m, `relay_delivery_events_total{destination="hook",outcome="dead"} 1`),
			"no dead outcome for hook yet"
	})
	m := metricsText(t, r)
	if !strings.Contains(m, `relay_delivery_events_total{destination="hook",outcome="retrying"}`) ||
		!strings.Contains(m, `relay_webhook_requests_total{destination="hook",status_class="429"}`) {
		t.Errorf("metrics lack the storm's retries:\n%s", grepLines(m, "hook"))
	}
}

func metricsText(t *testing.T, r *relayProc) string {
	t.Helper()
	resp, err := http.Get(r.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSDKsToWebhook: unchanged SDKs send to relay; a webhook destination
// in event mode POSTs each event, signed, as Segment-spec JSON: the calls
// arrive with their types, names, properties and traits.
func TestSDKsToWebhook(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs real SDKs against a relay process")
	}
	var mu sync.Mutex
	got := map[string][]map[string]any{} // userId → events
	badSig := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("X-Relay-Signature") != webhook.Sign(hookSecret, body) {
			badSig++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil || r.Header.Get("Idempotency-Key") != ev["messageId"] {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		user, _ := ev["userId"].(string)
		got[user] = append(got[user], ev)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	path := hookConfigWith(t, dir, fmt.Sprintf("{url: %q, signingSecret: %q}", srv.URL, hookSecret))
	r := startRelay(t, path, filepath.Join(dir, "data"), freeAddr(t))
	host := "http://" + r.addr
	for _, sdk := range []struct {
		name string
		send func(t *testing.T, prefix string)
	}{
		{"analytics-node", func(t *testing.T, p string) { runNode(t, "sdk-node.js", "segment", host, writeKey, p, "+14155550123") }},
		{"analytics-go", func(t *testing.T, p string) { sendSegmentGo(t, host, p, "+14155550123") }},
		{"rudder-analytics-go", func(t *testing.T, p string) { sendRudderGo(t, host, p, "+14155550123") }},
	} {
		t.Run(sdk.name, func(t *testing.T) {
			p := "hook" + strings.ReplaceAll(sdk.name, "-", "")
			sdk.send(t, p)
			testutil.EventuallyWhy(t, 30*time.Second, "the SDK's four calls at the webhook", func() (bool, string) {
				mu.Lock()
				defer mu.Unlock()
				calls := map[string]map[string]any{}
				for _, ev := range got[p+"-user"] {
					name, _ := ev["event"].(string)
					calls[ev["type"].(string)+" "+name] = ev
				}
				for _, want := range []string{"identify ", "track Product Viewed", "track Order Completed", "group "} {
					if calls[want] == nil {
						return false, fmt.Sprintf("no %q among %d events", want, len(got[p+"-user"]))
					}
				}
				props, _ := calls["track Order Completed"]["properties"].(map[string]any)
				traits, _ := calls["identify "]["traits"].(map[string]any)
				if props["order_id"] != p+"-o1" || traits["email"] != p+"@example.com" || calls["group "]["groupId"] != "LIST_E2E" {
					return false, fmt.Sprintf("events lost fields: %v / %v", props, traits)
				}
				return true, ""
			})
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if badSig > 0 {
		t.Errorf("%d requests with a wrong signature", badSig)
	}
}
