package kapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/openapi"
)

// TestDoExamples sends every valid request example of the embedded spec
// through Do and validates what arrives against the OpenAPI spec, plus the
// headers the spec does not check (auth, accept, content type).
func TestDoExamples(t *testing.T) {
	ctx := ctxTimeout(t, 30*time.Second)
	v, err := openapi.NewValidator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Examples []struct {
			Name   string          `json:"name"`
			Valid  bool            `json:"expect_valid"`
			Method string          `json:"method"`
			Path   string          `json:"path"`
			Query  string          `json:"query"`
			Body   json.RawMessage `json:"body"`
		} `json:"examples"`
	}
	if err := json.Unmarshal(openapi.ExamplesJSON, &file); err != nil {
		t.Fatalf("decode examples: %v", err)
	}
	examples := file.Examples
	type seen struct {
		err     error
		headers http.Header
		body    []byte
	}
	got := make(chan seen, 1)
	env := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		got <- seen{err: v.ValidateRequest(r.Context(), r), headers: r.Header.Clone(), body: body}
		writeJSON(w, 202, "")
	}), nil)
	n := 0
	for _, ex := range examples {
		if strings.HasPrefix(ex.Path, "/client/") && !strings.Contains(ex.Query, "company_id") {
			continue // refused client-side; see TestInvalidRequests
		}
		if !ex.Valid {
			continue // negatives test the validator, not the client
		}
		n++
		t.Run(ex.Name, func(t *testing.T) {
			var body any
			if len(ex.Body) > 0 && string(ex.Body) != "null" {
				body = ex.Body
			}
			if _, err := env.c.Do(ctx, testKey, klaviyo.Request{Method: ex.Method, Path: ex.Path, Query: ex.Query, Body: body}); err != nil {
				t.Fatalf("Do: %v", err)
			}
			s := <-got
			if s.err != nil {
				t.Errorf("request fails the spec: %v", s.err)
			}
			if got, want := s.headers.Get("Revision"), openapi.Revision(); got != want {
				t.Errorf("revision = %q, want %q", got, want)
			}
			if got := s.headers.Get("Accept"); got != "application/vnd.api+json" {
				t.Errorf("Accept = %q", got)
			}
			wantCT := ""
			if body != nil {
				wantCT = "application/vnd.api+json"
			}
			if got := s.headers.Get("Content-Type"); got != wantCT {
				t.Errorf("Content-Type = %q, want %q", got, wantCT)
			}
			wantAuth := "Klaviyo-API-Key " + testKey
			if strings.HasPrefix(ex.Path, "/client/") {
				wantAuth = ""
			}
			if got := s.headers.Get("Authorization"); got != wantAuth {
				t.Errorf("Authorization = %q, want %q", got, wantAuth)
			}
			if body != nil && string(s.body) != string(ex.Body) {
				t.Errorf("body changed in transit:\n got %s\nwant %s", s.body, ex.Body)
			}
		})
	}
	if n < 10 {
		t.Fatalf("only %d examples sent; examples.json format changed?", n)
	}
}

func TestBodyEncodings(t *testing.T) {
	bodies := make(chan string, 1)
	env := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		writeJSON(w, 202, "")
	}), nil)
	ctx := ctxTimeout(t, 10*time.Second)
	tests := []struct {
		name string
		body any
		want string
	}{
		{"raw message", json.RawMessage(`{"data":{"type":"event"}}`), `{"data":{"type":"event"}}`},
		{"bytes", []byte(`{"data":1}`), `{"data":1}`},
		{"struct", struct {
			Data map[string]string `json:"data"`
		}{map[string]string{"type": "event"}}, `{"data":{"type":"event"}}`},
		{"nil", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := env.c.Do(ctx, testKey, klaviyo.Request{Method: "POST", Path: "/api/events", Body: tc.body}); err != nil {
				t.Fatal(err)
			}
			if got := <-bodies; got != tc.want {
				t.Errorf("body = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestInvalidRequests(t *testing.T) {
	var hits atomic.Int32
	env := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, 202, "")
	}), nil)
	ctx := ctxTimeout(t, 10*time.Second)
	tests := []struct {
		name    string
		key     string
		req     klaviyo.Request
		wantErr error
	}{
		{"unknown endpoint", testKey, klaviyo.Request{Method: "GET", Path: "/api/metrics"}, ErrUnknownEndpoint},
		{"lower-case method", testKey, klaviyo.Request{Method: "post", Path: "/api/events"}, ErrInvalidRequest},
		{"query in path", testKey, klaviyo.Request{Method: "GET", Path: "/api/profiles?x=1"}, ErrInvalidRequest},
		{"relative path", testKey, klaviyo.Request{Method: "POST", Path: "api/events"}, ErrInvalidRequest},
		{"empty key", "", klaviyo.Request{Method: "POST", Path: "/api/events"}, ErrInvalidRequest},
		{"client without company_id", "", klaviyo.Request{Method: "POST", Path: "/client/events", Query: "x=1"}, ErrInvalidRequest},
		{"unencodable body", testKey, klaviyo.Request{Method: "POST", Path: "/api/events", Body: map[string]any{"f": func() {}}}, ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.c.Do(ctx, tc.key, tc.req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if ClassOf(err) != Permanent {
				t.Errorf("class = %v, want permanent", ClassOf(err))
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d invalid requests reached the server", n)
	}
	// A /client/* call needs no key: company_id selects the bucket.
	if _, err := env.c.Do(ctx, "", klaviyo.Request{Method: "POST", Path: "/client/events", Query: "company_id=AbC123", Body: json.RawMessage(`{}`)}); err != nil {
		t.Errorf("client call without key: %v", err)
	}
}

// scripted answers the n-th request (0-based) with script[min(n, len-1)].
type scripted struct {
	mu     sync.Mutex
	n      int
	script []func(w http.ResponseWriter, r *http.Request)
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := min(s.n, len(s.script)-1)
	s.n++
	s.mu.Unlock()
	s.script[i](w, r)
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func status(code int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, code, body) }
}

// reset hijacks the connection and closes it without answering.
func reset(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST rather than FIN
	}
	conn.Close()
}

// stall outlasts the client's per-attempt timeout (and ends with it).
func stall(w http.ResponseWriter, r *http.Request) {
	// Reading the body to EOF starts the server's background read, which
	// cancels r.Context() when the client gives up and closes.
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

const okJob = `{"data":{"type":"profile-bulk-import-job","id":"job-1"}}`

func TestRetries(t *testing.T) {
	validation := `{"errors":[{"id":"9f1","status":400,"code":"invalid","title":"Invalid input.","detail":"'metric' is a required property","source":{"pointer":"/data/attributes/metric"}}]}`
	tests := []struct {
		name       string
		script     []func(http.ResponseWriter, *http.Request)
		timeout    time.Duration
		wantClass  Class
		wantStatus int
		wantHits   int
		wantIs     error
	}{
		{"ok first time", list(status(202, okJob)), 0, OK, 202, 1, nil},
		{"5xx burst recovered", list(status(500, ""), status(502, "<html>bad gateway</html>"), status(503, `{"errors":[]}`), status(202, okJob)), 0, OK, 202, 4, nil},
		{"5xx exhausts attempts", list(status(503, "")), 0, Retryable, 503, 4, nil},
		{"501 is permanent", list(status(501, ""), status(202, okJob)), 0, Permanent, 501, 1, nil},
		{"connection resets recovered", list(reset, reset, status(202, okJob)), 0, OK, 202, 3, nil},
		{"connection resets exhaust attempts", list(reset), 0, Retryable, 0, 4, nil},
		{"timeouts recovered", list(stall, stall, status(202, okJob)), 500 * time.Millisecond, OK, 202, 3, nil},
		{"timeouts exhaust attempts", list(stall), 50 * time.Millisecond, Retryable, 0, 4, context.DeadlineExceeded},
		{"validation error not retried", list(status(400, validation), status(202, okJob)), 0, Permanent, 400, 1, nil},
		{"409 not retried", list(status(409, `{"errors":[{"code":"duplicate_profile","meta":{"duplicate_profile_id":"01HX"}}]}`), status(202, okJob)), 0, Permanent, 409, 1, nil},
		{"408 retried", list(status(408, ""), status(202, okJob)), 0, OK, 202, 2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := &scripted{script: tc.script}
			env := newEnv(t, srv, func(c *Config) {
				if tc.timeout > 0 {
					c.Timeout = tc.timeout
				}
			})
			resp, err := env.c.Do(ctxTimeout(t, 20*time.Second), testKey, klaviyo.Request{Method: "POST", Path: "/api/profile-bulk-import-jobs", Body: json.RawMessage(`{}`)})
			if got := ClassOf(err); got != tc.wantClass {
				t.Fatalf("class = %v, want %v (err %v)", got, tc.wantClass, err)
			}
			if got := srv.count(); got != tc.wantHits {
				t.Errorf("server saw %d requests, want %d", got, tc.wantHits)
			}
			gotStatus := 0
			if resp != nil {
				gotStatus = resp.Status
			}
			if gotStatus != tc.wantStatus {
				t.Errorf("response status = %d, want %d", gotStatus, tc.wantStatus)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.wantIs)
			}
			if err != nil {
				var ke *Error
				if !errors.As(err, &ke) {
					t.Fatalf("err %T is not *Error", err)
				}
				if ke.Status != tc.wantStatus || ke.Endpoint != "POST /api/profile-bulk-import-jobs" || ke.Attempts != tc.wantHits {
					t.Errorf("Error{Status %d, Endpoint %q, Attempts %d}", ke.Status, ke.Endpoint, ke.Attempts)
				}
				assertNoKey(t, "error", err.Error())
			} else if id, err := resp.DataID(); err != nil || id != "job-1" {
				t.Errorf("DataID = %q, %v", id, err)
			}
			assertNoKey(t, "log", env.log.String())
		})
	}
}

func list(fs ...func(http.ResponseWriter, *http.Request)) []func(http.ResponseWriter, *http.Request) {
	return fs
}

func TestValidationErrorDecoded(t *testing.T) {
	srv := &scripted{script: list(status(400, `{"errors":[{"id":"9f1","status":400,"code":"invalid","title":"Invalid input.","detail":"'metric' is a required property","source":{"pointer":"/data/attributes/metric"}}]}`))}
	env := newEnv(t, srv, nil)
	_, err := env.c.Do(ctxTimeout(t, 10*time.Second), testKey, klaviyo.Request{Method: "POST", Path: "/api/events", Body: json.RawMessage(`{}`)})
	var ke *Error
	if !errors.As(err, &ke) {
		t.Fatalf("err = %v, want *Error", err)
	}
	want := []ErrorObject{{ID: "9f1", Status: 400, Code: "invalid", Title: "Invalid input.",
		Detail: "'metric' is a required property", Source: ErrorSource{Pointer: "/data/attributes/metric"}}}
	if diff := cmp.Diff(want, ke.Errors); diff != "" {
		t.Errorf("Errors (-want +got):\n%s", diff)
	}
	if ke.Status != 400 || ke.Class != Permanent || ke.Endpoint != "POST /api/events" {
		t.Errorf("Error = %+v", ke)
	}
	for _, s := range []string{"400", "invalid", "'metric' is a required property", "/data/attributes/metric", "POST /api/events"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Error() = %q lacks %q", err.Error(), s)
		}
	}
	if diff := cmp.Diff([]string{"/data/attributes/metric"}, ke.Pointers()); diff != "" {
		t.Errorf("Pointers (-want +got):\n%s", diff)
	}
	if n := srv.count(); n != 1 {
		t.Errorf("validation error was sent %d times", n)
	}
}

// TestKeyNeverLeaks drives every failure path with a server that echoes
// the credentials back, and checks errors, logs and metrics.
func TestKeyNeverLeaks(t *testing.T) {
	echo := func(code int) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			a := r.Header.Get("Authorization")
			if code == 0 {
				w.WriteHeader(502)
				_, _ = io.WriteString(w, "upstream rejected "+a)
				return
			}
			b, _ := json.Marshal(map[string]any{"errors": []map[string]any{{
				"code": "not_authenticated", "title": a, "detail": "key " + a + " is wrong",
				"source": map[string]string{"pointer": "/" + a, "parameter": a}, "meta": map[string]any{"k": a},
			}}})
			writeJSON(w, code, string(b))
		}
	}
	reg := prometheus.NewRegistry()
	for _, tc := range []struct {
		name   string
		script []func(http.ResponseWriter, *http.Request)
	}{
		{"401 echo", list(echo(401))},
		{"502 text echo", list(echo(0))},
		{"429 echo then 400", list(echo(429), echo(400))},
		{"resets", list(reset)},
		{"timeouts", list(stall)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, &scripted{script: tc.script}, func(c *Config) {
				c.Timeout = 50 * time.Millisecond
				c.DefaultRetryAfter = time.Millisecond
			})
			env.c.m, _ = newMetrics(reg) // shared registry, to inspect labels
			_, err := env.c.Do(ctxTimeout(t, 10*time.Second), testKey, klaviyo.Request{Method: "POST", Path: "/api/events", Body: json.RawMessage(`{}`)})
			if err == nil {
				t.Fatal("want an error")
			}
			assertNoKey(t, "error", err.Error())
			assertNoKey(t, "error %+v", strings.ReplaceAll(fmtAll(err), "\n", " "))
			assertNoKey(t, "log", env.log.String())
		})
	}
	// The public key of /client/* travels in the query: network errors
	// must not carry it either.
	pub := newEnv(t, &scripted{script: list(reset)}, nil)
	_, err := pub.c.Do(ctxTimeout(t, 10*time.Second), "", klaviyo.Request{Method: "POST", Path: "/client/events", Query: "company_id=PubKey9x", Body: json.RawMessage(`{}`)})
	if err == nil || ClassOf(err) != Retryable {
		t.Fatalf("client call over resets: %v", err)
	}
	if s := fmtAll(err) + pub.log.String(); strings.Contains(s, "PubKey9x") {
		t.Errorf("public key leaked: %s", s)
	}
	// Ping and lookups too.
	env := newEnv(t, &scripted{script: list(echo(403))}, nil)
	ctx := ctxTimeout(t, 10*time.Second)
	if err := env.c.Ping(ctx, testKey); err == nil || ClassOf(err) != Permanent {
		t.Errorf("Ping = %v, want permanent", err)
	} else {
		assertNoKey(t, "ping error", err.Error())
	}
	if _, err := env.c.LookupProfiles(ctx, testKey, "email", "a@b.c"); err == nil {
		t.Error("lookup: want error")
	} else {
		assertNoKey(t, "lookup error", err.Error())
	}
	assertNoKey(t, "log", env.log.String())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) == 0 {
		t.Fatal("no metrics gathered")
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				assertNoKey(t, "metric label", l.GetValue())
				if strings.Contains(l.GetValue(), "Klaviyo-API-Key") {
					t.Errorf("metric label %q", l.GetValue())
				}
			}
		}
	}
}

// fmtAll renders err and every error in its chain.
func fmtAll(err error) string {
	var b strings.Builder
	for e := err; e != nil; e = errors.Unwrap(e) {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestThrottledBeyondDeadline: a Retry-After longer than the caller can
// wait returns at once with Throttled and the wait, instead of sleeping
// into the deadline; the endpoint stays blocked for the next call.
func TestThrottledBeyondDeadline(t *testing.T) {
	srv := &scripted{script: list(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		writeJSON(w, 429, `{"errors":[{"code":"throttled","detail":"Request was throttled. Expected available in 30 seconds."}]}`)
	})}
	env := newEnv(t, srv, nil)
	req := klaviyo.Request{Method: "POST", Path: "/api/events", Body: json.RawMessage(`{}`)}
	for i := range 2 {
		_, err := env.c.Do(ctxTimeout(t, 5*time.Second), testKey, req)
		var ke *Error
		if !errors.As(err, &ke) || ke.Class != Throttled {
			t.Fatalf("call %d: err = %v, want Throttled", i, err)
		}
		if ke.RetryAfter < 20*time.Second || ke.RetryAfter > 30*time.Second {
			t.Errorf("call %d: RetryAfter = %v, want about 30s", i, ke.RetryAfter)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call %d waited into its deadline", i)
		}
	}
	if n := srv.count(); n != 1 {
		t.Errorf("server saw %d requests; the second call must not be sent while blocked", n)
	}
}

func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		writeJSON(w, 202, okJob)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	env := newEnvServer(t, srv, nil)
	const workers, perWorker = 8, 40
	ctx := ctxTimeout(t, 30*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range perWorker {
				if _, err := env.c.Do(ctx, testKey, klaviyo.Request{Method: "POST", Path: "/api/events", Body: json.RawMessage(`{"data":{}}`)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := conns.Load(); n > 2*workers {
		t.Errorf("%d requests used %d connections; want at most %d", workers*perWorker, n, 2*workers)
	}
	t.Logf("%d requests over %d connections", workers*perWorker, conns.Load())
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" = ok
	}{
		{"defaults", Config{}, ""},
		{"bad url", Config{BaseURL: "a.klaviyo.com"}, "BaseURL"},
		{"ftp url", Config{BaseURL: "ftp://x"}, "BaseURL"},
		{"negative timeout", Config{Timeout: -1}, "Timeout"},
		{"negative attempts", Config{MaxAttempts: -1}, "MaxAttempts"},
		{"zero limit", Config{Limits: map[string]openapi.Limit{"POST /api/events": {BurstPerSecond: 0, SteadyPerMin: 5}}}, `"POST /api/events"`},
		{"bad template", Config{Limits: map[string]openapi.Limit{"/api/events": {BurstPerSecond: 1, SteadyPerMin: 5}}}, "METHOD /path"},
		{"empty limits", Config{Limits: map[string]openapi.Limit{}}, "no endpoints"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg, discardLogger(), prometheus.NewRegistry())
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.CloseIdleConnections()
				if c.cfg.BaseURL != defaultBaseURL || c.cfg.Revision != openapi.Revision() || c.cfg.MaxAttempts != 4 || c.cfg.Timeout != 30*time.Second || len(c.cfg.Limits) < 16 {
					t.Errorf("defaults not applied: %+v", c.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %s", err, tc.want)
			}
		})
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Error("nil logger accepted")
	}
	// Two clients may share a registry.
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := New(Config{}, discardLogger(), reg); err != nil {
			t.Fatalf("second client on one registry: %v", err)
		}
	}
}
