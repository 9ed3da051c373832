package webhook

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
)

// receiver is a local webhook endpoint that answers by script and keeps
// what it received.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	heads  []http.Header
	answer func(body []byte) (status int, header http.Header)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, body)
	rc.heads = append(rc.heads, r.Header.Clone())
	rc.mu.Unlock()
	status, h := http.StatusOK, http.Header(nil)
	if rc.answer != nil {
		status, h = rc.answer(body)
	}
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte("answer " + http.StatusText(status)))
}

func newReceiver(t *testing.T, answer func([]byte) (int, http.Header)) (*receiver, string) {
	rc := &receiver{answer: answer}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

func settings(t *testing.T, doc string) Settings {
	t.Helper()
	s, err := ParseSettings([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jobsOf(ids ...string) []destination.Job {
	out := make([]destination.Job, len(ids))
	for i, id := range ids {
		ev := &spec.Event{Type: "track", MessageID: id, UserID: "u-" + id, Event: "Clicked",
			Properties: map[string]any{"plan": "pro"}, Timestamp: time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)}
		out[i] = destination.Job{Job: queue.Job{ID: int64(i + 1), Message: queue.Message{MessageID: id}}, Event: ev}
	}
	return out
}

func sinkFor(s Settings) *Sink {
	return NewSink(func() Settings { return s }, &http.Client{}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
}

func TestEventModeSignsAndSendsSegmentJSON(t *testing.T) {
	rc, url := newReceiver(t, nil)
	s := settings(t, `{"url":"`+url+`/hook","headers":{"X-Team":"growth"},"signingSecret":"s3cret","authorization":"Bearer tok"}`)
	res := sinkFor(s).Deliver(context.Background(), destination.Batch{Jobs: jobsOf("m1", "m2")})
	for i, r := range res {
		if r.Outcome != destination.Delivered {
			t.Errorf("job %d: %+v", i, r)
		}
	}
	if len(rc.bodies) != 2 {
		t.Fatalf("%d requests, want one per event", len(rc.bodies))
	}
	for i, body := range rc.bodies {
		h := rc.heads[i]
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil || ev["type"] != "track" || ev["event"] != "Clicked" || ev["userId"] == nil {
			t.Errorf("body %s (%v)", body, err)
		}
		if got, want := h.Get("X-Relay-Signature"), Sign("s3cret", body); got != want {
			t.Errorf("signature %q, want %q", got, want)
		}
		if h.Get("X-Team") != "growth" || h.Get("Authorization") != "Bearer tok" || h.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", h)
		}
		if h.Get("Idempotency-Key") != ev["messageId"] {
			t.Errorf("idempotency key %q for %v", h.Get("Idempotency-Key"), ev["messageId"])
		}
	}
}

func TestBatchModeChunksBySize(t *testing.T) {
	rc, url := newReceiver(t, nil)
	s := settings(t, `{"url":"`+url+`","mode":"batch","maxBatchSize":2}`)
	res := sinkFor(s).Deliver(context.Background(), destination.Batch{Jobs: jobsOf("a", "b", "c")})
	if len(rc.bodies) != 2 {
		t.Fatalf("%d requests, want 2 (2 + 1 events)", len(rc.bodies))
	}
	total := 0
	for _, body := range rc.bodies {
		var doc struct {
			Batch []map[string]any `json:"batch"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		total += len(doc.Batch)
	}
	if total != 3 || res[2].Outcome != destination.Delivered {
		t.Errorf("%d events sent, results %+v", total, res)
	}
}

func TestRetryAfterHoldsTheRest(t *testing.T) {
	rc, url := newReceiver(t, func([]byte) (int, http.Header) {
		return 429, http.Header{"Retry-After": {"30"}}
	})
	s := settings(t, `{"url":"`+url+`","concurrency":1}`)
	res := sinkFor(s).Deliver(context.Background(), destination.Batch{Jobs: jobsOf("a", "b", "c")})
	if len(rc.bodies) != 1 {
		t.Errorf("%d requests after a 429 with Retry-After, want 1", len(rc.bodies))
	}
	for i, r := range res {
		if r.Outcome != destination.Retry || r.RetryAfter < 29*time.Second || r.RetryAfter > 30*time.Second {
			t.Errorf("job %d: %+v, want retry after 30 s", i, r)
		}
	}
}

func TestStatusClasses(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   destination.Outcome
	}{
		{200, destination.Delivered}, {204, destination.Delivered}, {500, destination.Retry}, {503, destination.Retry},
		{408, destination.Retry}, {400, destination.Dead}, {422, destination.Dead}, {401, destination.Dead},
	} {
		_, url := newReceiver(t, func([]byte) (int, http.Header) { return tc.status, nil })
		res := sinkFor(settings(t, `{"url":"`+url+`"}`)).Deliver(context.Background(), destination.Batch{Jobs: jobsOf("a")})
		if res[0].Outcome != tc.want || res[0].Status != tc.status {
			t.Errorf("status %d: %+v, want %s", tc.status, res[0], tc.want)
		}
	}
}

// A batch the receiver refuses is halved until the refused event is
// alone; the others are delivered.
func TestRefusedBatchIsolatesTheBadEvent(t *testing.T) {
	_, url := newReceiver(t, func(body []byte) (int, http.Header) {
		if strings.Contains(string(body), `"bad"`) {
			return 422, nil
		}
		return 200, nil
	})
	s := settings(t, `{"url":"`+url+`","mode":"batch","maxBatchSize":10}`)
	res := sinkFor(s).Deliver(context.Background(), destination.Batch{Jobs: jobsOf("a", "b", "bad", "d", "e")})
	for i, r := range res {
		want := destination.Delivered
		if i == 2 {
			want = destination.Dead
		}
		if r.Outcome != want {
			t.Errorf("job %d: %+v, want %s", i, r, want)
		}
	}
}

func TestTimeoutRetries(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	s := settings(t, `{"url":"`+srv.URL+`","timeout":"1s"}`)
	res := sinkFor(s).Deliver(context.Background(), destination.Batch{Jobs: jobsOf("a")})
	if res[0].Outcome != destination.Retry || !strings.Contains(res[0].Detail, "no answer within 1s") {
		t.Errorf("timeout: %+v", res[0])
	}
}

func TestSettingsErrors(t *testing.T) {
	for _, tc := range []struct{ doc, setting string }{
		{`{}`, "url"},
		{`{"url":"ftp://x"}`, "url"},
		{`{"url":"https://x","mode":"stream"}`, "mode"},
		{`{"url":"https://x","maxBatchSize":0}`, "maxBatchSize"},
		{`{"url":"https://x","timeout":"forever"}`, "timeout"},
		{`{"url":"https://x","timeout":10}`, "timeout"},
		{`{"url":"https://x","headers":{"Content-Type":"text/plain"}}`, "headers.Content-Type"},
		{`{"url":"https://x","headers":{"X-A":5}}`, "headers.X-A"},
		{`{"url":"https://x","nope":1}`, "nope"},
		{`{"url":"https://x","webhookUrl":"https://y"}`, "webhookUrl"},
	} {
		_, err := ParseSettings([]byte(tc.doc))
		ses := destination.SettingsErrors(err)
		if len(ses) == 0 || ses[0].Setting != tc.setting {
			t.Errorf("%s: %v; want an error naming %s", tc.doc, err, tc.setting)
		}
	}
	s, err := ParseSettings([]byte("url: https://x.example/h\nmode: batch\ntimeout: 30s\nsharedSecret: abc\n"))
	if err != nil || s.Mode != ModeBatch || s.Timeout != 30*time.Second || s.SigningSecret != "abc" || s.MaxBatchSize != 100 {
		t.Errorf("YAML with an alias: %+v, %v", s, err)
	}
}

// Settings round-trip through their JSON document (what the console's
// form and the store keep), and every field is described.
func TestSettingsRoundTripAndDescribed(t *testing.T) {
	s := settings(t, `{"url":"https://x.example","headers":{"X-A":"1"},"timeout":"2m","signingSecret":"k"}`)
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSettings(raw)
	if err != nil || back.Timeout != 2*time.Minute || back.Headers["X-A"] != "1" || back.SigningSecret != "k" {
		t.Errorf("round trip: %s → %+v, %v", raw, back, err)
	}
	if err := destination.CheckFields(Fields()); err != nil {
		t.Error(err)
	}
	if _, err := destination.NewRegistry(Type()); err != nil {
		t.Error(err)
	}
}

func TestEventTester(t *testing.T) {
	s := settings(t, `{"url":"https://x.example/hook","signingSecret":"k","authorization":"Bearer secret-token"}`)
	res, err := Type().Test([]byte(`[{"type":"track","event":"E","userId":"u","messageId":"t-1"},{"type":"track"}]`), spec.Options{MaxEventBytes: 32 << 10}, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 2 || res.Events[0].Requests[0] != "POST /hook" || res.Events[1].Error == "" {
		t.Errorf("outcomes %+v", res.Events)
	}
	if strings.Contains(string(res.Output), "secret-token") || !strings.Contains(string(res.Output), "X-Relay-Signature") {
		t.Errorf("output %s", res.Output)
	}
}

func FuzzParseSettings(f *testing.F) {
	f.Add([]byte(`{"url":"https://x","mode":"batch","headers":{"A":"b"},"timeout":"5s"}`))
	f.Add([]byte("url: http://x\nmaxBatchSize: 5\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := ParseSettings(doc)
		if err != nil {
			if len(destination.SettingsErrors(err)) == 0 {
				t.Fatalf("error without a setting error: %v", err)
			}
			return
		}
		if s.Validate() != nil {
			t.Fatal("parsed settings do not validate")
		}
	})
}
