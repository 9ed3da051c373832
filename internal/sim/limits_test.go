package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo/openapi"
	"github.com/relaycdp/relay/internal/testutil"
)

func TestRateLimits(t *testing.T) {
	// Start just after a minute boundary so both windows are predictable.
	clock := testutil.NewClock(time.Date(2026, 1, 1, 12, 0, 0, 100e6, time.UTC))
	h := newHarness(t, Config{RateLimits: true, Clock: clock.Now, JobDelay: time.Hour})
	get := call{method: "GET", path: "/api/profile-bulk-import-jobs/NOPE"} // M tier: 10/s, 150/m

	// Burst: 10 per second, the 11th is throttled until the next second.
	for i := range 10 {
		a := h.must(get, 404)
		if a.header.Get("RateLimit-Limit") != "150" || a.header.Get("RateLimit-Remaining") != strconv.Itoa(149-i) {
			t.Fatalf("RateLimit headers: %v", a.header)
		}
	}
	a := h.must(get, 429)
	if a.header.Get("Retry-After") != "1" || a.errors(t)[0].Code != "throttled" {
		t.Fatalf("429: Retry-After %q, %s", a.header.Get("Retry-After"), a.body)
	}
	// Other keys and other endpoints have their own windows.
	h.must(call{method: "GET", path: "/api/profiles"}, 200)

	// Steady: 150 per minute. 10 more each second up to 150, then throttled
	// until the minute ends.
	for sec := 1; sec < 15; sec++ {
		clock.Add(time.Second)
		for range 10 {
			h.must(get, 404)
		}
	}
	clock.Add(time.Second) // 12:00:15.1
	a = h.must(get, 429)
	if got := a.header.Get("Retry-After"); got != "45" {
		t.Errorf("steady Retry-After %q, want 45", got)
	}
	clock.Add(45 * time.Second) // 12:01:00.1
	h.must(get, 404)

	recs := h.sim.Requests()
	throttled := 0
	for _, r := range recs {
		if r.Status == 429 {
			throttled++
			if r.RetryAfter < 1 || r.Key != KeyHash(testKey) {
				t.Errorf("429 record: %+v", r)
			}
		}
	}
	if throttled != 2 || h.sim.State().Throttled != 2 {
		t.Errorf("throttled %d", throttled)
	}
	if len(recs) != 10+1+1+140+1+1 {
		t.Errorf("%d records", len(recs))
	}
}

func TestRateLimitsPerCompanyAndOff(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	h := newHarness(t, Config{RateLimits: true, Clock: clock.Now})
	body := map[string]any{"data": bulkEntry(profileAttrs("anonymous_id", "a"), bulkEvent("V", "1"))}
	for _, company := range []string{"AAA", "BBB"} {
		for range 10 {
			h.must(call{method: "POST", path: "/client/event-bulk-create", query: "company_id=" + company, body: body}, 202)
		}
		h.must(call{method: "POST", path: "/client/event-bulk-create", query: "company_id=" + company, body: body}, 429)
	}
	off := newHarness(t, Config{Clock: clock.Now})
	for range 20 {
		off.must(call{method: "POST", path: "/client/event-bulk-create", query: "company_id=AAA", body: body}, 202)
	}
}

func TestFaults(t *testing.T) {
	ev := eventBody("Viewed", "f1", profileAttrs("email", "f@example.com"))
	t.Run("error rate", func(t *testing.T) {
		h := newHarness(t, Config{Faults: Faults{ErrorRate: 1}})
		for range 5 {
			a := h.do(call{method: "POST", path: "/api/events", body: ev})
			if a.status != 500 && a.status != 503 {
				t.Fatalf("status %d", a.status)
			}
			a.errors(t)
		}
		st := h.sim.State()
		if len(st.Events) != 0 || st.Faulted != 5 || st.Rejected != 0 {
			t.Errorf("events %d faulted %d rejected %d", len(st.Events), st.Faulted, st.Rejected)
		}
	})
	t.Run("endpoints filter", func(t *testing.T) {
		h := newHarness(t, Config{Faults: Faults{ErrorRate: 1, Endpoints: []string{"POST /api/profile-import"}}})
		h.must(call{method: "POST", path: "/api/events", body: ev}, 202)
		if a := h.do(call{method: "POST", path: "/api/profile-import", body: importBody(profileAttrs("email", "x@example.com"))}); a.status < 500 {
			t.Errorf("status %d", a.status)
		}
	})
	t.Run("storm", func(t *testing.T) {
		clock := testutil.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		h := newHarness(t, Config{Clock: clock.Now, Faults: Faults{Storm: Storm{Rate: 1, RetryAfter: 3, For: 10 * time.Second}}})
		a := h.must(call{method: "POST", path: "/api/events", body: ev}, 429)
		if a.header.Get("Retry-After") != "3" || a.errors(t)[0].Code != "throttled" {
			t.Errorf("storm answer: %v %s", a.header, a.body)
		}
		clock.Add(11 * time.Second)
		h.must(call{method: "POST", path: "/api/events", body: ev}, 202)
		recs := h.sim.Requests()
		if recs[0].Fault != "storm" || recs[0].RetryAfter != 3 || recs[1].Fault != "" {
			t.Errorf("records: %+v", recs)
		}
	})
	t.Run("reset", func(t *testing.T) {
		h := newHarness(t, Config{Faults: Faults{ResetRate: 1}})
		req := newReq(t, h.srv.URL+"/api/events", ev)
		resp, err := h.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got status %d, want a connection error", resp.StatusCode)
		}
		if recs := h.sim.Requests(); len(recs) != 1 || recs[0].Fault != "reset" || recs[0].Status != 0 {
			t.Errorf("records: %+v", recs)
		}
	})
	t.Run("timeout until the client gives up", func(t *testing.T) {
		h := newHarness(t, Config{Faults: Faults{TimeoutRate: 1}})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req := newReq(t, h.srv.URL+"/api/events", ev).WithContext(ctx)
		resp, err := h.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got status %d, want a timeout", resp.StatusCode)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v", err)
		}
		testutil.Eventually(t, 10*time.Second, "the held request to be recorded", func() bool {
			recs := h.sim.Requests()
			return len(recs) == 1 && recs[0].Fault == "timeout" && recs[0].Status == 0
		})
	})
	t.Run("timeout with hold", func(t *testing.T) {
		h := newHarness(t, Config{Faults: Faults{TimeoutRate: 1, TimeoutHold: 10 * time.Millisecond}})
		h.must(call{method: "POST", path: "/api/events", body: ev}, 504)
		if len(h.sim.State().Events) != 0 {
			t.Error("timed-out request was applied")
		}
	})
	t.Run("latency", func(t *testing.T) {
		h := newHarness(t, Config{Faults: Faults{Latency: 30 * time.Millisecond}})
		start := time.Now()
		h.must(call{method: "POST", path: "/api/events", body: ev}, 202)
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("answered after %v, before the 30ms latency", d)
		}
	})
	t.Run("set over HTTP", func(t *testing.T) {
		h := newHarness(t, Config{})
		resp, err := h.srv.Client().Post(h.srv.URL+"/_sim/faults", "application/json",
			strings.NewReader(`{"error_rate":1,"latency":"1ms","storm":{"rate":0.5,"retry_after":2,"for":"1m"},"endpoints":["/api/events"]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := Faults{ErrorRate: 1, Latency: time.Millisecond, Storm: Storm{Rate: 0.5, RetryAfter: 2, For: time.Minute}, Endpoints: []string{"/api/events"}}
		if got := h.sim.Faults(); resp.StatusCode != 200 || got.ErrorRate != want.ErrorRate || got.Latency != want.Latency || got.Storm != want.Storm {
			t.Fatalf("status %d, faults %+v", resp.StatusCode, got)
		}
		if a := h.do(call{method: "POST", path: "/api/events", body: ev}); a.status < 500 {
			t.Errorf("status %d", a.status)
		}
		for _, bad := range []string{`{"error_rate":2}`, `{"latency":"soon"}`, `{"nope":1}`} {
			resp, err := h.srv.Client().Post(h.srv.URL+"/_sim/faults", "application/json", strings.NewReader(bad))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("%s: status %d", bad, resp.StatusCode)
			}
		}
	})
}

func newReq(t *testing.T, url string, body any) *http.Request {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("revision", testRevision)
	req.Header.Set("Content-Type", "application/vnd.api+json")
	req.Header.Set("Authorization", "Klaviyo-API-Key "+testKey)
	return req
}

// /_sim/state has DESIGN.md §8's shape.
func TestStateShape(t *testing.T) {
	h := newHarness(t, Config{})
	h.must(call{method: "POST", path: "/api/events", body: eventBody("Viewed", "s1", profileAttrs("email", "s@example.com", "properties", map[string]any{"p": 1}))}, 202)
	h.must(call{method: "POST", path: "/api/events", body: `{}`}, 400)
	resp, err := h.srv.Client().Get(h.srv.URL + "/_sim/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"profiles", "events", "lists", "requests", "rejected", "jobs", "requestLog"} {
		if _, ok := st[k]; !ok {
			t.Errorf("state lacks %q", k)
		}
	}
	p := st["profiles"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "email", "phone_number", "external_id", "anonymous_id", "properties", "subscriptions", "lists"} {
		if _, ok := p[k]; !ok {
			t.Errorf("profile lacks %q", k)
		}
	}
	e := st["events"].([]any)[0].(map[string]any)
	for _, k := range []string{"metric", "unique_id", "profile_id", "properties", "value", "time"} {
		if _, ok := e[k]; !ok {
			t.Errorf("event lacks %q", k)
		}
	}
	if e["profile_id"] != p["id"] || e["metric"] != "Viewed" || e["unique_id"] != "s1" {
		t.Errorf("event: %v", e)
	}
	if st["requests"].(map[string]any)["POST /api/events"] != 2.0 || st["rejected"] != 1.0 {
		t.Errorf("requests %v rejected %v", st["requests"], st["rejected"])
	}
	log := st["requestLog"].([]any)[0].(map[string]any)
	if log["key"] != KeyHash(testKey) || log["endpoint"] != "POST /api/events" || log["status"] != 202.0 {
		t.Errorf("request log: %v", log)
	}

	// Reset forgets everything.
	resp2, err := h.srv.Client().Post(h.srv.URL+"/_sim/reset", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if s := h.sim.State(); len(s.Profiles)+len(s.Events)+len(s.RequestLog)+s.Rejected != 0 {
		t.Errorf("after reset: %+v", s)
	}
}

// No answer ever carries an API key; the request log only has hashes.
func TestNoKeysInState(t *testing.T) {
	h := newHarness(t, Config{})
	h.must(call{method: "POST", path: "/api/events", body: eventBody("V", "1", profileAttrs("email", "k@example.com"))}, 202)
	h.do(call{method: "POST", path: "/api/events", body: `{}`, header: map[string]string{"Authorization": "Klaviyo-API-Key pk_wrong_secret"}})
	b, err := h.sim.marshalState(true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), testKey) || strings.Contains(string(b), "pk_wrong_secret") {
		t.Errorf("state leaks a key: %s", b)
	}
}

// BenchmarkSimEvents measures small POST /api/events through the handler,
// with validation on, from parallel clients.
func BenchmarkSimEvents(b *testing.B) {
	s, err := New(Config{Keys: []string{testKey}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	h := s.Handler()
	body, _ := json.Marshal(eventBody("Viewed Product", "", profileAttrs("email", "bench@example.com")))
	rev := openapi.Revision()
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/api/events", bytes.NewReader(body))
			req.Header.Set("revision", rev)
			req.Header.Set("Content-Type", "application/vnd.api+json")
			req.Header.Set("Authorization", "Klaviyo-API-Key "+testKey)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 202 {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		// CPU per request, all goroutines and GC included; 2 cores serve
		// about 2e6/cpu-µs requests per second.
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
	}
}

// FuzzEventBody: no body makes the simulator panic or answer anything but
// 202 or a 4xx in Klaviyo's error format.
func FuzzEventBody(f *testing.F) {
	seed, _ := json.Marshal(eventBody("Viewed", "u1", profileAttrs("email", "a@example.com")))
	f.Add(seed)
	f.Add([]byte(`{"data":{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"X"}}},"profile":{"data":{"type":"profile","attributes":{"phone_number":"+1"}}}}}}`))
	f.Add([]byte(`{"data":[]}`))
	s, err := New(Config{Keys: []string{testKey}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	h := s.Handler()
	rev := openapi.Revision()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/api/events", bytes.NewReader(body))
		req.Header.Set("revision", rev)
		req.Header.Set("Content-Type", "application/vnd.api+json")
		req.Header.Set("Authorization", "Klaviyo-API-Key "+testKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch {
		case w.Code == 202:
		case w.Code >= 400 && w.Code < 500:
			var doc ErrorDocument
			if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || len(doc.Errors) == 0 {
				t.Fatalf("status %d without an error document: %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}

func TestRetryAfterViolations(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	answered := func(r RequestRecord, ms int) RequestRecord {
		r.Answered = t0.Add(time.Duration(ms) * time.Millisecond)
		return r
	}
	rec := func(ms int, endpoint string, status, retry int) RequestRecord {
		return RequestRecord{Time: t0.Add(time.Duration(ms) * time.Millisecond), Endpoint: endpoint, Key: "k", Status: status, RetryAfter: retry}
	}
	cases := []struct {
		name string
		recs []RequestRecord
		want int
	}{
		{"no 429", []RequestRecord{rec(0, "E", 202, 0), rec(1, "E", 202, 0)}, 0},
		{"waited", []RequestRecord{rec(0, "E", 429, 2), rec(2000, "E", 202, 0)}, 0},
		{"too early", []RequestRecord{rec(0, "E", 429, 2), rec(1999, "E", 202, 0)}, 1},
		{"other endpoint is free", []RequestRecord{rec(0, "E", 429, 2), rec(10, "F", 202, 0)}, 0},
		{"out of order log", []RequestRecord{rec(500, "E", 202, 0), rec(0, "E", 429, 1)}, 1},
		// A concurrent request already on its way when the 429 was answered
		// could not have known.
		{"in flight", []RequestRecord{rec(0, "E", 429, 2), rec(50, "E", 202, 0)}, 0},
		{"answered late", []RequestRecord{answered(rec(0, "E", 429, 2), 300), rec(2100, "E", 202, 0)}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := RetryAfterViolations(tc.recs); len(got) != tc.want {
				t.Errorf("violations %q, want %d", got, tc.want)
			}
		})
	}
}

// Parallel clients: nothing lost, nothing duplicated, one profile.
func TestConcurrentEvents(t *testing.T) {
	h := newHarness(t, Config{})
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := eventBody("Viewed", fmt.Sprintf("w%d-%d", w, i%(each/2)), profileAttrs("email", "same@example.com"))
				req := newReq(t, h.srv.URL+"/api/events", body)
				resp, err := h.srv.Client().Do(req)
				if err != nil {
					errs <- err
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 202 {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := h.sim.State()
	if len(st.Profiles) != 1 || len(st.Events) != workers*each/2 || st.Requests["POST /api/events"] != workers*each {
		t.Errorf("profiles %d events %d requests %v", len(st.Profiles), len(st.Events), st.Requests)
	}
}
