package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/testutil"
)

// oneEvent has every type's required fields, so it is valid on any
// single-event path; its type comes from the path.
const oneEvent = `{"userId":"u1","event":"Clicked","name":"Home","groupId":"g1","previousId":"p1","messageId":"m-1"}`

func TestRoutes(t *testing.T) {
	tests := []struct {
		path     string
		body     string
		wantType string
	}{
		{"/v1/identify", oneEvent, "identify"},
		{"/v1/track", oneEvent, "track"},
		{"/v1/page", oneEvent, "page"},
		{"/v1/screen", oneEvent, "screen"},
		{"/v1/group", oneEvent, "group"},
		{"/v1/alias", oneEvent, "alias"},
		{"/v1/i", oneEvent, "identify"},
		{"/v1/t", oneEvent, "track"},
		{"/v1/p", oneEvent, "page"},
		{"/v1/s", oneEvent, "screen"},
		{"/v1/g", oneEvent, "group"},
		{"/v1/a", oneEvent, "alias"},
		{"/v1/batch", `{"batch":[{"type":"track","event":"E","userId":"u1","messageId":"m-1"}]}`, "track"},
		{"/v1/import", `{"batch":[{"type":"screen","name":"S","userId":"u1","messageId":"m-1"}]}`, "screen"},
		{"/v1/b", `{"batch":[{"type":"page","userId":"u1","messageId":"m-1"}]}`, "page"},
		{"/beacon/v1/batch", `{"batch":[{"type":"group","groupId":"g","userId":"u1","messageId":"m-1"}]}`, "group"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			e := newEnv(t)
			rec := e.do(req{path: tc.path, body: []byte(tc.body), key: testKey})
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, body %s", rec.Code, rec.Body)
			}
			if got := rec.Body.String(); got != `{"success":true}` {
				t.Errorf("body %q", got)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if o := rec.Header().Get("Access-Control-Allow-Origin"); o != "*" {
				t.Errorf("Access-Control-Allow-Origin %q", o)
			}
			msgs := e.q.messages()
			var dests []string
			for _, m := range msgs {
				dests = append(dests, m.Dest)
				var ev spec.Event
				if err := json.Unmarshal(m.Payload, &ev); err != nil {
					t.Fatalf("payload: %v", err)
				}
				if ev.Type != tc.wantType {
					t.Errorf("type %q, want %q", ev.Type, tc.wantType)
				}
				if m.Source != "web" || m.MessageID != "m-1" || m.Key != "u1" || !m.ReceivedAt.Equal(testNow) {
					t.Errorf("message %+v", m)
				}
			}
			if diff := cmp.Diff([]string{"klaviyo", "klaviyo-eu"}, dests); diff != "" {
				t.Errorf("destinations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		rec := e.do(req{method: m, path: "/v1/track", body: []byte(oneEvent), key: testKey})
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", m, rec.Code)
		}
	}
	if rec := e.do(req{path: "/v2/track", body: []byte(oneEvent), key: testKey}); rec.Code != http.StatusNotFound {
		t.Errorf("unknown path: status %d, want 404", rec.Code)
	}
	if n := len(e.q.messages()); n != 0 {
		t.Errorf("%d messages enqueued", n)
	}
}

func TestMetricsNoop(t *testing.T) {
	e := newEnv(t)
	// No key, a body that is not even JSON: /v1/m is analytics.js telemetry.
	rec := e.do(req{path: "/v1/m", body: []byte("not json"), headers: map[string]string{"Origin": "http://shop.example"}})
	if rec.Code != http.StatusOK || rec.Body.String() != `{"success":true}` {
		t.Fatalf("status %d body %q", rec.Code, rec.Body)
	}
	if o := rec.Header().Get("Access-Control-Allow-Origin"); o != "http://shop.example" {
		t.Errorf("Access-Control-Allow-Origin %q", o)
	}
	if e.q.calls != 0 {
		t.Errorf("Enqueue called %d times", e.q.calls)
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/health", "/v1/health"} {
		rec := e.do(req{method: http.MethodGet, path: p})
		if rec.Code != http.StatusOK || rec.Body.String() != "{\"ok\":true}\n" {
			t.Errorf("%s: status %d body %q", p, rec.Code, rec.Body)
		}
	}
}

func TestCORSPreflight(t *testing.T) {
	e := newEnv(t)
	for _, rt := range ingestRoutes() {
		for _, origin := range []string{"http://127.0.0.1:18085", ""} {
			t.Run(rt.path+"/"+origin, func(t *testing.T) {
				r := req{method: http.MethodOptions, path: rt.path, headers: map[string]string{
					"Access-Control-Request-Method":  "POST",
					"Access-Control-Request-Headers": "authorization",
				}}
				wantOrigin := "*"
				if origin != "" {
					r.headers["Origin"] = origin
					wantOrigin = origin
				}
				rec := e.do(r)
				if rec.Code != http.StatusNoContent {
					t.Fatalf("status %d", rec.Code)
				}
				want := map[string]string{
					"Access-Control-Allow-Origin":  wantOrigin,
					"Access-Control-Allow-Methods": "POST",
					"Access-Control-Allow-Headers": "Authorization, Content-Type, X-Retry-Count, AnonymousId, Rsa-Retry-Attempt, Rsa-Since-First-Attempt, Rsa-Since-Last-Attempt",
					"Access-Control-Max-Age":       "86400",
				}
				got := map[string]string{}
				for k := range want {
					got[k] = rec.Header().Get(k)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("headers (-want +got):\n%s", diff)
				}
				if origin != "" && rec.Header().Get("Vary") != "Origin" {
					t.Errorf("Vary %q, want Origin", rec.Header().Get("Vary"))
				}
			})
		}
	}
	// Error answers carry CORS too, or the browser hides the status.
	rec := e.do(req{path: "/v1/t", body: []byte(oneEvent), headers: map[string]string{"Origin": "http://a.example"}})
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("Access-Control-Allow-Origin") != "http://a.example" {
		t.Errorf("401 without CORS: status %d headers %v", rec.Code, rec.Header())
	}
}

func TestAuth(t *testing.T) {
	withBodyKey := func(key string) []byte {
		return []byte(`{"writeKey":"` + key + `","batch":[{"type":"track","event":"E","userId":"u1","messageId":"m-1"}]}`)
	}
	noBodyKey := []byte(`{"batch":[{"type":"track","event":"E","userId":"u1","messageId":"m-1"}]}`)
	tests := []struct {
		name       string
		path       string
		body       []byte
		auth       string // Authorization header
		wantStatus int
		wantSource string
		wantMsg    string
	}{
		{name: "basic with colon", body: noBodyKey, auth: basic(testKey + ":"), wantStatus: 200, wantSource: "web"},
		{name: "basic without colon", body: noBodyKey, auth: basic(testKey), wantStatus: 200, wantSource: "web"},
		{name: "basic password ignored", body: noBodyKey, auth: basic(testKey + ":whatever"), wantStatus: 200, wantSource: "web"},
		{name: "basic lower-case scheme", body: noBodyKey, auth: "basic " + basic(testKey + ":")[6:], wantStatus: 200, wantSource: "web"},
		{name: "body only", path: "/v1/b", body: withBodyKey(testKey), wantStatus: 200, wantSource: "web"},
		{name: "body only, not an analytics.js route", body: withBodyKey(testKey), wantStatus: 401, wantMsg: "missing write key"},
		{name: "basic wins over body", body: withBodyKey(testKey), auth: basic(otherKey + ":"), wantStatus: 200, wantSource: "mobile"},
		{name: "unknown basic, valid body", body: withBodyKey(testKey), auth: basic(revokedKey + ":"), wantStatus: 401, wantMsg: "invalid write key"},
		{name: "bearer falls back to body", path: "/v1/b", body: withBodyKey(testKey), auth: "Bearer some.oauth.token", wantStatus: 200, wantSource: "web"},
		{name: "empty basic user falls back to body", path: "/v1/b", body: withBodyKey(otherKey), auth: basic(":pw"), wantStatus: 200, wantSource: "mobile"},
		{name: "missing", body: noBodyKey, wantStatus: 401, wantMsg: "missing write key"},
		{name: "garbage basic", body: noBodyKey, auth: "Basic !!!", wantStatus: 401, wantMsg: "missing write key"},
		{name: "unknown basic", body: noBodyKey, auth: basic(revokedKey + ":"), wantStatus: 401, wantMsg: "invalid write key"},
		{name: "unknown body key", path: "/v1/b", body: withBodyKey(revokedKey), wantStatus: 401, wantMsg: "invalid write key"},
		{name: "lookup failure", body: noBodyKey, auth: basic(failingKey + ":"), wantStatus: 503, wantMsg: "unavailable"},
		{name: "beacon query key", path: "/beacon/v1/batch?writeKey=" + testKey, body: noBodyKey, wantStatus: 200, wantSource: "web"},
		{name: "beacon basic wins over query", path: "/beacon/v1/batch?writeKey=" + testKey, body: noBodyKey, auth: basic(otherKey + ":"), wantStatus: 200, wantSource: "mobile"},
		{name: "query key only on beacon", path: "/v1/batch?writeKey=" + testKey, body: noBodyKey, wantStatus: 401, wantMsg: "missing write key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(_ *Config, d *Deps) {
				d.Routes = fakeRoutes{"web": {"klaviyo"}, "mobile": {"klaviyo"}}
			})
			path := tc.path
			if path == "" {
				path = "/v1/batch"
			}
			r := req{path: path, body: tc.body}
			if tc.auth != "" {
				r.headers = map[string]string{"Authorization": tc.auth}
			}
			rec := e.do(r)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			body := rec.Body.String()
			if !strings.Contains(body, tc.wantMsg) {
				t.Errorf("body %q does not contain %q", body, tc.wantMsg)
			}
			for _, k := range []string{testKey, otherKey, revokedKey, failingKey} {
				if strings.Contains(body, k) {
					t.Errorf("response echoes key %s: %s", k, body)
				}
			}
			msgs := e.q.messages()
			if tc.wantStatus != 200 {
				if len(msgs) != 0 {
					t.Errorf("%d messages enqueued on %d", len(msgs), rec.Code)
				}
				return
			}
			if len(msgs) != 1 || msgs[0].Source != tc.wantSource {
				t.Errorf("messages %+v, want one from %s", msgs, tc.wantSource)
			}
		})
	}
}

func TestPerEventRejection(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.MaxEventBytes = 512 })
	body := `{"batch":[
		{"type":"track","event":"Good 1","userId":"u1","messageId":"good-1"},
		{"type":"track","userId":"u1","messageId":"bad-no-event"},
		{"type":"bogus","userId":"u1","messageId":"bad-type"},
		{"type":"track","event":"Big","userId":"u1","messageId":"bad-big","properties":{"pad":"` + strings.Repeat("x", 600) + `"}},
		{"type":"identify","userId":"u2","messageId":"good-2"}
	]}`
	rec := e.do(req{path: "/v1/batch", body: []byte(body), key: testKey})
	if rec.Code != http.StatusOK || rec.Body.String() != `{"success":true}` {
		t.Fatalf("status %d body %s: a per-event problem must not fail the request", rec.Code, rec.Body)
	}
	var ids []string
	for _, m := range e.q.messages() {
		if m.Dest == "klaviyo" {
			ids = append(ids, m.MessageID)
		}
	}
	if diff := cmp.Diff([]string{"good-1", "good-2"}, ids); diff != "" {
		t.Errorf("enqueued (-want +got):\n%s", diff)
	}
	got := e.rej.all("web")
	for i := range got {
		if !got[i].ReceivedAt.Equal(testNow) {
			t.Errorf("rejection %d ReceivedAt %v", i, got[i].ReceivedAt)
		}
		got[i].ReceivedAt = time.Time{}
		if got[i].Reason == "" {
			t.Errorf("rejection %d has no reason", i)
		}
		got[i].Reason = strings.SplitN(got[i].Reason, ";", 2)[0]
	}
	want := []Rejection{
		{Index: 1, MessageID: "bad-no-event", Type: "track", Code: "missing_field", Field: "event", Reason: "event is missing"},
		{Index: 2, MessageID: "bad-type", Code: "invalid_type", Field: "type", Reason: `type "bogus" is not one of identify, track, page, screen, group, alias`},
		{Index: 3, MessageID: "bad-big", Code: "too_large", Reason: "event is 690 bytes, over the 512-byte limit"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rejections (-want +got):\n%s", diff)
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"relay_gateway_events_received_total", map[string]string{"source": "web"}, 5},
		{"relay_gateway_events_accepted_total", map[string]string{"source": "web", "type": "track"}, 1},
		{"relay_gateway_events_accepted_total", map[string]string{"source": "web", "type": "identify"}, 1},
		{"relay_gateway_events_rejected_total", map[string]string{"source": "web", "code": "missing_field", "type": "track"}, 1},
		{"relay_gateway_events_rejected_total", map[string]string{"source": "web", "code": "invalid_type", "type": "none"}, 1},
		{"relay_gateway_events_rejected_total", map[string]string{"source": "web", "code": "too_large"}, 1},
		{"relay_gateway_messages_enqueued_total", map[string]string{"source": "web", "dest": "klaviyo-eu"}, 2},
		{"relay_gateway_requests_total", map[string]string{"path": "/v1/batch", "code": "200"}, 1},
		{"relay_gateway_request_duration_seconds", map[string]string{"path": "/v1/batch"}, 1},
		{"relay_gateway_request_body_bytes", map[string]string{"path": "/v1/batch"}, 1},
	}
	for _, c := range checks {
		if got := counter(t, e.reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestAllRejected(t *testing.T) {
	// Every event bad: still 200 (analytics-go v3 would retry a 400 ten
	// times), nothing enqueued, all recorded.
	e := newEnv(t)
	rec := e.do(req{path: "/v1/track", body: []byte(`{"userId":"u1","messageId":"m-1"}`), key: testKey})
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d body %s", rec.Code, rec.Body)
	}
	if e.q.calls != 0 {
		t.Errorf("Enqueue called %d times with nothing to enqueue", e.q.calls)
	}
	if got := e.rej.all("web"); len(got) != 1 || got[0].Field != "event" {
		t.Errorf("rejections %+v", got)
	}
}

func TestRejectionsRecordFailure(t *testing.T) {
	e := newEnv(t)
	e.rej.err = errTest
	body := `{"batch":[{"type":"track","event":"E","userId":"u1","messageId":"ok"},{"type":"track","userId":"u1","messageId":"bad"}]}`
	rec := e.do(req{path: "/v1/batch", body: []byte(body), key: testKey})
	// The good event is committed; failing now would only duplicate it.
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if got := counter(t, e.reg, "relay_gateway_rejection_record_errors_total", nil); got != 1 {
		t.Errorf("record errors %v, want 1", got)
	}
	if !strings.Contains(e.logs.String(), "record rejected events") {
		t.Errorf("failure not logged:\n%s", e.logs)
	}
}

func TestNoRejectionsDep(t *testing.T) {
	e := newEnv(t, func(_ *Config, d *Deps) { d.Rejections = nil })
	rec := e.do(req{path: "/v1/track", body: []byte(`{"userId":"u1"}`), key: testKey})
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if got := counter(t, e.reg, "relay_gateway_events_rejected_total", nil); got != 1 {
		t.Errorf("rejected %v, want 1", got)
	}
}

func TestSourceWithoutDestinations(t *testing.T) {
	e := newEnv(t)
	rec := e.do(req{path: "/v1/track", body: []byte(oneEvent), key: otherKey})
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if e.q.calls != 0 {
		t.Errorf("Enqueue called for a source without destinations")
	}
	if got := counter(t, e.reg, "relay_gateway_events_unrouted_total", map[string]string{"source": "mobile"}); got != 1 {
		t.Errorf("unrouted %v, want 1", got)
	}
	if got := counter(t, e.reg, "relay_gateway_events_accepted_total", map[string]string{"source": "mobile"}); got != 1 {
		t.Errorf("accepted %v, want 1", got)
	}
}

func TestAckOnlyAfterEnqueue(t *testing.T) {
	e := newEnv(t)
	e.q.block = make(chan struct{})
	e.q.entered = make(chan struct{}, 1)
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		r, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/track", strings.NewReader(oneEvent))
		r.SetBasicAuth(testKey, "")
		resp, err := srv.Client().Do(r)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		done <- result{status: resp.StatusCode, body: string(b)}
	}()

	<-e.q.entered // the handler is inside Enqueue now
	select {
	case res := <-done:
		t.Fatalf("response before Enqueue returned: %+v", res)
	default:
	}
	if e.q.calls != 0 || len(e.q.messages()) != 0 {
		t.Fatal("fake queue committed before release")
	}
	close(e.q.block)
	res := <-done
	if res.err != nil || res.status != http.StatusOK || res.body != `{"success":true}` {
		t.Fatalf("after release: %+v", res)
	}
	if n := len(e.q.messages()); n != 2 {
		t.Errorf("%d messages committed, want 2", n)
	}
}

func TestEnqueueFailure(t *testing.T) {
	e := newEnv(t)
	e.q.err = fmt.Errorf("commit batch: %w", errTest)
	body := `{"batch":[{"type":"track","event":"E","userId":"u1","messageId":"ok"},{"type":"track","userId":"u1","messageId":"bad"}]}`
	rec := e.do(req{path: "/v1/batch", body: []byte(body), key: testKey})
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "5" {
		t.Errorf("Retry-After %q, want 5", ra)
	}
	if strings.Contains(rec.Body.String(), "success\":true") {
		t.Errorf("body %s", rec.Body)
	}
	if got := counter(t, e.reg, "relay_gateway_events_accepted_total", nil); got != 0 {
		t.Errorf("accepted %v after a failed Enqueue", got)
	}
	// Rejections are recorded when the SDK's retry succeeds, not twice.
	if got := e.rej.all("web"); len(got) != 0 {
		t.Errorf("rejections recorded for an unacknowledged request: %+v", got)
	}
	if !strings.Contains(e.logs.String(), "commit batch: test failure") {
		t.Errorf("enqueue error not logged:\n%s", e.logs)
	}
}

func TestEnqueueTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.EnqueueTimeout = time.Millisecond })
	e.q.block = make(chan struct{}) // never released: Enqueue ends by its context
	defer close(e.q.block)
	rec := e.do(req{path: "/v1/track", body: []byte(oneEvent), key: testKey})
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
}

func TestBackpressure(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.MaxQueueDepth = 100; c.RetryAfter = 1500 * time.Millisecond })
	post := func() *httptest.ResponseRecorder {
		return e.do(req{path: "/v1/track", body: []byte(oneEvent), key: testKey})
	}
	e.depth.n.Store(100) // at the limit is fine
	if rec := post(); rec.Code != http.StatusOK {
		t.Fatalf("at limit: status %d", rec.Code)
	}
	e.depth.n.Store(101)
	if rec := post(); rec.Code != http.StatusOK {
		t.Fatalf("cached reading: status %d", rec.Code)
	}
	if c := e.depth.calls.Load(); c != 1 {
		t.Errorf("Depth called %d times within the TTL, want 1", c)
	}
	e.clock.Add(time.Second)
	rec := post()
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("over limit: status %d, want 429", rec.Code)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2 (1.5 s rounded up)", ra)
	}
	if e.q.calls != 2 {
		t.Errorf("Enqueue called %d times, want 2 (not for the 429)", e.q.calls)
	}
	e.depth.n.Store(5)
	e.clock.Add(time.Second)
	if rec := post(); rec.Code != http.StatusOK {
		t.Fatalf("drained: status %d", rec.Code)
	}
	// A failing Depth fails open.
	e.depth.err = errTest
	e.depth.n.Store(1 << 40)
	e.clock.Add(time.Second)
	if rec := post(); rec.Code != http.StatusOK {
		t.Fatalf("Depth error: status %d, want 200 (fail open)", rec.Code)
	}
}

func TestServer(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.ReadTimeout = 7 * time.Second })
	s := e.gw.Server("127.0.0.1:0")
	got := []time.Duration{s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout}
	want := []time.Duration{DefaultReadHeaderTimeout, 7 * time.Second, DefaultWriteTimeout, DefaultIdleTimeout}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("timeouts (-want +got):\n%s", diff)
	}
	if s.MaxHeaderBytes != DefaultMaxHeaderBytes || s.Handler == nil || s.Addr != "127.0.0.1:0" || s.ErrorLog == nil {
		t.Errorf("server %+v", s)
	}
}

func TestNewValidation(t *testing.T) {
	ok := Deps{Queue: &fakeQueue{}, Sources: fakeSources{}, Routes: fakeRoutes{}}
	tests := []struct {
		name string
		cfg  Config
		deps Deps
		want string
	}{
		{"no queue", Config{}, Deps{Sources: fakeSources{}, Routes: fakeRoutes{}}, "Deps.Queue is required"},
		{"no sources", Config{}, Deps{Queue: &fakeQueue{}, Routes: fakeRoutes{}}, "Deps.Sources is required"},
		{"no routes", Config{}, Deps{Queue: &fakeQueue{}, Sources: fakeSources{}}, "Deps.Routes is required"},
		{"depth without Depth", Config{MaxQueueDepth: 10}, ok, "Deps.Depth is required"},
		{"negative request limit", Config{MaxRequestBytes: -1}, ok, "gateway.maxRequestBytes: must not be negative"},
		{"negative event limit", Config{MaxEventBytes: -1}, ok, "gateway.maxEventBytes"},
		{"negative timeout", Config{ReadTimeout: -time.Second}, ok, "gateway.readTimeout"},
		{"valid", Config{}, ok, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, tc.deps, nil, prometheus.NewRegistry())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	// One registry cannot hold two gateways' metrics.
	reg := prometheus.NewRegistry()
	if _, err := New(Config{}, ok, nil, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, ok, nil, reg); err == nil {
		t.Error("second gateway on one registry: no error")
	}
	// A nil registerer is allowed.
	if _, err := New(Config{}, ok, nil, nil); err != nil {
		t.Errorf("nil registerer: %v", err)
	}
}

// TestKeyNeverLeaks drives requests that fail in every way a key could be
// echoed (collaborator errors quoting it, parse errors, rejections) and
// checks the logs, the responses and the metric labels.
func TestKeyNeverLeaks(t *testing.T) {
	e := newEnv(t)
	e.q.err = errors.New("insert for key " + testKey + " failed")
	bodies := []req{
		{path: "/v1/track", body: []byte(oneEvent), key: testKey},                                     // enqueue error quoting the key
		{path: "/v1/track", body: []byte(oneEvent), key: failingKey},                                  // lookup error quoting the key
		{path: "/v1/track", body: []byte(oneEvent), key: revokedKey},                                  // unknown key
		{path: "/v1/batch", body: []byte(`{"writeKey":"` + revokedKey + `","batch":[{"type":"x"}]}`)}, // unknown body key
		{path: "/v1/batch", body: []byte(`{"writeKey":"` + testKey + `","batch":[{"type":"` + testKey + `"}]}`)},
		{path: "/v1/batch", body: []byte(`{"writeKey":"` + testKey + `","batch":[`)},
		{path: "/beacon/v1/batch?writeKey=" + testKey, body: []byte(`{"batch":[{"type":"` + testKey + `"}]}`)},
		{path: "/v1/t", body: []byte(`{"writeKey":"` + testKey + `","type":"track","userId":"u"}`)},
	}
	var responses strings.Builder
	for _, r := range bodies {
		rec := e.do(r)
		fmt.Fprintf(&responses, "%d %s %v\n", rec.Code, rec.Body, rec.Header())
	}
	e.q.err = nil
	rec := e.do(req{path: "/v1/batch", body: []byte(`{"batch":[{"type":"` + testKey + `"},{"type":"track","event":"E","userId":"u"}]}`), key: testKey})
	fmt.Fprintf(&responses, "%d %s %v\n", rec.Code, rec.Body, rec.Header())
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "[redacted]") {
		t.Fatalf("expected warnings with redacted errors in the log, got:\n%s", logs)
	}
	for _, k := range []string{testKey, failingKey, revokedKey} {
		if strings.Contains(logs, k) {
			t.Errorf("log contains key %s:\n%s", k, logs)
		}
		if strings.Contains(responses.String(), k) {
			t.Errorf("responses contain key %s:\n%s", k, responses.String())
		}
		if slices.ContainsFunc(allLabelValues(t, e.reg), func(v string) bool { return strings.Contains(v, k) }) {
			t.Errorf("metric labels contain key %s", k)
		}
		for _, rj := range e.rej.all("web") {
			if strings.Contains(fmt.Sprint(rj), k) {
				t.Errorf("rejection contains key %s: %+v", k, rj)
			}
		}
	}
	if len(e.rej.all("web")) == 0 {
		t.Error("no rejection was recorded; the test does not cover the rejection path")
	}
}

// TestMessageFields checks one message field by field.
func TestMessageFields(t *testing.T) {
	e := newEnv(t, func(_ *Config, d *Deps) { d.Routes = fakeRoutes{"web": {"klaviyo"}} })
	body := `{"type":"identify","anonymousId":"anon-1","traits":{"email":"Jane@Example.com"},"messageId":"mid-7","sentAt":"2026-11-23T00:04:59Z","timestamp":"2026-11-23T00:04:58Z"}`
	if rec := e.do(req{path: "/v1/identify", body: []byte(body), key: testKey}); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	msgs := e.q.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	var ev spec.Event
	if err := json.Unmarshal(m.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	m.Payload = nil
	want := queue.Message{Source: "web", Dest: "klaviyo", Key: "anon-1", MessageID: "mid-7", ReceivedAt: testNow}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	if ev.Type != "identify" || ev.AnonymousID != "anon-1" || ev.Traits["email"] != "Jane@Example.com" || !ev.ReceivedAt.Equal(testNow) {
		t.Errorf("payload %+v", ev)
	}
	// Skew correction happened in spec.Parse with our ReceivedAt:
	// timestamp = receivedAt − (sentAt − originalTimestamp) = 00:05:00 − 1 s.
	if want := testNow.Add(-time.Second); !ev.Timestamp.Equal(want) {
		t.Errorf("timestamp %v, want %v", ev.Timestamp, want)
	}
}

// blockingDepth blocks every Depth call until release is closed.
type blockingDepth struct {
	fakeDepth
	release chan struct{}
}

func (d *blockingDepth) Depth(ctx context.Context) (int64, error) {
	<-d.release
	return d.fakeDepth.Depth(ctx)
}

func TestDepthGateConcurrent(t *testing.T) {
	clock := testutil.NewClock(testNow)
	src := &blockingDepth{release: make(chan struct{})}
	src.n.Store(50)
	d := &depthGate{src: src, max: 10, ttl: time.Second, now: clock.Now, log: slog.New(slog.DiscardHandler), timeout: time.Minute}
	const n = 20
	results := make(chan bool, n)
	for range n {
		go func() { results <- d.Over(context.Background()) }()
	}
	close(src.release)
	for range n {
		if !<-results {
			t.Error("a caller saw not-over before the first reading")
		}
	}
	if c := src.calls.Load(); c != 1 {
		t.Errorf("Depth called %d times for %d concurrent callers within the TTL, want 1", c, n)
	}
}

// TestServerDropsSlowLoris checks that Server's timeouts are in force: a
// client that never finishes its headers is disconnected rather than held.
func TestServerDropsSlowLoris(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.ReadHeaderTimeout = 50 * time.Millisecond })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := e.gw.Server(ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Shutdown(context.Background())
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1/track HTTP/1.1\r\nHost: relay\r\nAuthor"); err != nil {
		t.Fatal(err)
	}
	// Safety net only: the server must close long before this.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatal("server kept a connection with unfinished headers open")
	}
}

// An oversized event alone on a single-event route is refused with the
// reason (a 200 would claim it was kept); inside a batch it is recorded
// and the rest accepted.
func TestOversizedEvent(t *testing.T) {
	big := `{"type":"track","event":"Big","userId":"u1","messageId":"big","properties":{"pad":"` + strings.Repeat("x", 600) + `"}}`
	small := `{"type":"track","event":"Small","userId":"u1","messageId":"small"}`
	cases := []struct {
		name       string
		path       string
		body       string
		wantStatus int
		wantIDs    []string
	}{
		{"track alone", "/v1/track", big, http.StatusBadRequest, nil},
		{"identify alone", "/v1/identify", `{"userId":"u1","messageId":"big","traits":{"pad":"` + strings.Repeat("x", 600) + `"}}`, http.StatusBadRequest, nil},
		{"analytics.js short path", "/v1/t", big, http.StatusBadRequest, nil},
		{"small alone", "/v1/track", small, http.StatusOK, []string{"small"}},
		{"in a batch", "/v1/batch", `{"batch":[` + big + `,` + small + `]}`, http.StatusOK, []string{"small"}},
		{"batch of only the big one", "/v1/batch", `{"batch":[` + big + `]}`, http.StatusOK, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config, _ *Deps) { c.MaxEventBytes = 512 })
			rec := e.do(req{path: tc.path, body: []byte(tc.body), key: testKey})
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantStatus == http.StatusBadRequest && !strings.Contains(rec.Body.String(), "over the 512-byte limit") {
				t.Errorf("body %s does not give the reason", rec.Body)
			}
			var ids []string
			for _, m := range e.q.messages() {
				if m.Dest == "klaviyo" {
					ids = append(ids, m.MessageID)
				}
			}
			if diff := cmp.Diff(tc.wantIDs, ids); diff != "" {
				t.Errorf("enqueued (-want +got):\n%s", diff)
			}
			rej := e.rej.all("web")
			if tc.body != small && (len(rej) != 1 || rej[0].MessageID != "big" || rej[0].Code != "too_large") {
				t.Errorf("rejections %+v, want the big event recorded once as too_large", rej)
			}
		})
	}
}
