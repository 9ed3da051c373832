package kapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/openapi"
)

// specServer validates each request against the OpenAPI spec (400 with the
// validator's message if it fails) before handing it to h.
func specServer(t *testing.T, h http.HandlerFunc) http.Handler {
	v, err := openapi.NewValidator(ctxTimeout(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := v.ValidateRequest(r.Context(), r); err != nil {
			t.Errorf("%s %s?%s fails the spec: %v", r.Method, r.URL.Path, r.URL.RawQuery, err)
			writeJSON(w, 400, `{"errors":[{"code":"invalid","detail":"spec"}]}`)
			return
		}
		h(w, r)
	})
}

func TestGetProfileImportJob(t *testing.T) {
	const body = `{"data":{"type":"profile-bulk-import-job","id":"01GSQPBF74KQ5YTDEPP41T1BZH",
		"attributes":{"status":"complete","created_at":"2026-08-01T10:00:00.123456+00:00","total_count":3,"completed_count":2,"failed_count":1,
			"completed_at":"2026-08-01T10:00:05+00:00","expires_at":null,"started_at":"2026-08-01T10:00:01"},
		"relationships":{"lists":{"data":[{"type":"list","id":"Y6nRLr"}]},"import-errors":{"data":[{"type":"import-error","id":"ie1"}]}}},
		"included":[{"type":"list","id":"Y6nRLr","attributes":{}},
			{"type":"import-error","id":"ie1","attributes":{"code":"invalid","title":"Invalid input","detail":"Invalid email","source":{"pointer":"/data/attributes/profiles/data/1/attributes/email"},"original_payload":{"email":"x"}}}]}`
	var gotPath string
	env := newEnv(t, specServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		writeJSON(w, 200, body)
	}), nil)
	job, err := env.c.GetProfileImportJob(ctxTimeout(t, 10*time.Second), testKey, "01GSQPBF74KQ5YTDEPP41T1BZH")
	if err != nil {
		t.Fatal(err)
	}
	want := &ImportJob{
		ID: "01GSQPBF74KQ5YTDEPP41T1BZH", Status: "complete", TotalCount: 3, CompletedCount: 2, FailedCount: 1,
		CreatedAt:      time.Date(2026, 8, 1, 10, 0, 0, 123456000, time.UTC),
		StartedAt:      time.Date(2026, 8, 1, 10, 0, 1, 0, time.UTC),
		CompletedAt:    time.Date(2026, 8, 1, 10, 0, 5, 0, time.UTC),
		ListIDs:        []string{"Y6nRLr"},
		ImportErrorIDs: []string{"ie1"},
		ImportErrors: []ImportError{{ID: "ie1", Code: "invalid", Title: "Invalid input", Detail: "Invalid email",
			Pointer: "/data/attributes/profiles/data/1/attributes/email", OriginalPayload: []byte(`{"email":"x"}`)}},
	}
	if diff := cmp.Diff(want, job, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("job (-want +got):\n%s", diff)
	}
	if !job.Done() {
		t.Error("complete job not Done")
	}
	if gotPath != "/api/profile-bulk-import-jobs/01GSQPBF74KQ5YTDEPP41T1BZH" {
		t.Errorf("path = %q", gotPath)
	}
	for _, bad := range []string{"", "a/b", "x?y"} {
		if _, err := env.c.GetProfileImportJob(ctxTimeout(t, time.Second), testKey, bad); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("job id %q: err = %v", bad, err)
		}
	}
}

func TestDecodeImportJobErrors(t *testing.T) {
	for _, body := range []string{``, `{}`, `{"data":{"id":"x","attributes":{}}}`, `[1]`} {
		if _, err := decodeImportJob([]byte(body)); err == nil {
			t.Errorf("decodeImportJob(%q): no error", body)
		}
	}
}

func TestLookupProfiles(t *testing.T) {
	var mu sync.Mutex
	var filters []string
	env := newEnv(t, specServer(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mu.Lock()
		filters = append(filters, q.Get("filter"))
		mu.Unlock()
		switch {
		case strings.Contains(q.Get("filter"), "nobody"):
			writeJSON(w, 200, `{"data":[],"links":{"self":"x","next":null}}`)
		case q.Get("page[cursor]") == "":
			writeJSON(w, 200, `{"data":[{"type":"profile","id":"P1"}],"links":{"next":"https://a.klaviyo.com/api/profiles?page%5Bcursor%5D=c2&filter=x"}}`)
		default:
			writeJSON(w, 200, `{"data":[{"type":"profile","id":"P2"}],"links":{"next":null}}`)
		}
	}), nil)
	ctx := ctxTimeout(t, 10*time.Second)
	tests := []struct {
		field, value string
		want         []string
		wantFilter   string
	}{
		{"email", "sarah.mason@klaviyo-demo.com", []string{"P1", "P2"}, `equals(email,"sarah.mason@klaviyo-demo.com")`},
		{"phone_number", "+15005550006", []string{"P1", "P2"}, `equals(phone_number,"+15005550006")`},
		{"external_id", `a"b\c`, []string{"P1", "P2"}, `equals(external_id,"a\"b\\c")`},
		{"email", "nobody@example.com", nil, `equals(email,"nobody@example.com")`},
	}
	for _, tc := range tests {
		t.Run(tc.field+" "+tc.value, func(t *testing.T) {
			mu.Lock()
			filters = nil
			mu.Unlock()
			got, err := env.c.LookupProfiles(ctx, testKey, tc.field, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(filters) == 0 || filters[0] != tc.wantFilter {
				t.Errorf("filter = %q, want %q", filters, tc.wantFilter)
			}
		})
	}
	for _, bad := range [][2]string{{"name", "x"}, {"email", ""}} {
		if _, err := env.c.LookupProfiles(ctx, testKey, bad[0], bad[1]); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("LookupProfiles(%q, %q) err = %v", bad[0], bad[1], err)
		}
	}
}

func TestPing(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		wantClass Class
	}{
		{"ok", 200, OK},
		{"bad key", 401, Permanent},
		{"missing scope", 403, Permanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var query string
			env := newEnv(t, specServer(t, func(w http.ResponseWriter, r *http.Request) {
				query = r.URL.RawQuery
				if tc.status != 200 {
					writeJSON(w, tc.status, fmt.Sprintf(`{"errors":[{"status":%d,"code":"not_authenticated","detail":"Incorrect authentication credentials."}]}`, tc.status))
					return
				}
				writeJSON(w, 200, `{"data":[{"type":"profile","id":"P1"}],"links":{}}`)
			}), nil)
			err := env.c.Ping(ctxTimeout(t, 10*time.Second), testKey)
			if ClassOf(err) != tc.wantClass {
				t.Fatalf("Ping = %v, want class %v", err, tc.wantClass)
			}
			if query != "fields%5Bprofile%5D=id&page%5Bsize%5D=1" {
				t.Errorf("query = %q", query)
			}
			var ke *Error
			if tc.status != 200 && (!errors.As(err, &ke) || ke.Status != tc.status) {
				t.Errorf("err = %#v, want *Error with status %d", err, tc.status)
			}
		})
	}
}

func TestDataID(t *testing.T) {
	tests := []struct {
		body    string
		want    string
		wantErr bool
	}{
		{`{"data":{"type":"event-bulk-create-job","id":"J1","attributes":{}}}`, "J1", false},
		{`{"data":null}`, "", true},
		{`{"data":[{"id":"x"}]}`, "", true},
		{``, "", true},
		{`<html>`, "", true},
	}
	for _, tc := range tests {
		got, err := (&Response{Status: 202, Body: []byte(tc.body)}).DataID()
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("DataID(%q) = %q, %v", tc.body, got, err)
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := &scripted{script: list(
		status(503, ""),
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "0.01")
			writeJSON(w, 429, "")
		},
		status(202, ""), status(400, ""),
	)}
	env := newEnv(t, srv, nil)
	c, err := New(Config{BaseURL: env.srv.URL, Limits: fastLimits(), BackoffBase: time.Millisecond}, discardLogger(), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx := ctxTimeout(t, 10*time.Second)
	req := klaviyo.Request{Method: "POST", Path: "/api/lists/Y6nRLr/relationships/profiles", Body: []byte(`{"data":[]}`)}
	if _, err := c.Do(ctx, testKey, req); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, testKey, req); ClassOf(err) != Permanent {
		t.Fatalf("second call: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += fmt.Sprintf(" %s=%s", l.GetName(), l.GetValue())
			}
			switch {
			case m.GetCounter() != nil:
				got[k] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[k] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	const ep = "endpoint=POST /api/lists/{id}/relationships/profiles"
	want := map[string]float64{
		"relay_klaviyo_requests_total " + ep + " status_class=5xx": 1,
		"relay_klaviyo_requests_total " + ep + " status_class=429": 1,
		"relay_klaviyo_requests_total " + ep + " status_class=2xx": 1,
		"relay_klaviyo_requests_total " + ep + " status_class=4xx": 1,
		"relay_klaviyo_throttled_total " + ep:                      1,
		"relay_klaviyo_retries_total " + ep + " reason=retryable":  1,
		"relay_klaviyo_retries_total " + ep + " reason=throttled":  1,
		"relay_klaviyo_request_duration_seconds " + ep:             4,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if strings.Contains(k, "Y6nRLr") || strings.Contains(k, testKey) {
			t.Errorf("metric with unbounded label: %s", k)
		}
	}
}

func FuzzDecodeImportJob(f *testing.F) {
	f.Add([]byte(`{"data":{"id":"j","attributes":{"status":"queued","total_count":1,"created_at":"2026-01-01T00:00:00+00:00"},"relationships":{"lists":{"data":[{"type":"list","id":"L"}]}}},"included":[{"type":"import-error","id":"e","attributes":{"source":{"pointer":"/x"}}}]}`))
	f.Add([]byte(`{"data":{"id":"j","attributes":{"status":"complete","completed_count":null,"started_at":"junk"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		job, err := decodeImportJob(body)
		if err == nil && (job.ID == "" || job.Status == "") {
			t.Errorf("accepted a job without id or status: %+v", job)
		}
	})
}

// ImportErrors follows links.next through every page, asking 100 a page
// as the spec allows, and keeps each error's pointer.
func TestImportErrors(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	env := newEnv(t, specServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		if r.URL.Path != "/api/profile-bulk-import-jobs/J1/import-errors" {
			writeJSON(w, 404, `{"errors":[{"code":"not_found"}]}`)
			return
		}
		item := func(i int) string {
			return fmt.Sprintf(`{"type":"import-error","id":"e%d","attributes":{"code":"invalid","title":"Invalid input","detail":"bad %d","source":{"pointer":"/data/attributes/profiles/data/%d/attributes/email"},"original_payload":null}}`, i, i, i)
		}
		if r.URL.Query().Get("page[cursor]") == "" {
			writeJSON(w, 200, `{"data":[`+item(0)+`,`+item(3)+`],"links":{"self":"x","next":"https://a.klaviyo.com/api/profile-bulk-import-jobs/J1/import-errors?page%5Bcursor%5D=c2&page%5Bsize%5D=100"}}`)
			return
		}
		writeJSON(w, 200, `{"data":[`+item(7)+`],"links":{"self":"x","next":null}}`)
	}), nil)
	got, err := env.c.ImportErrors(ctxTimeout(t, 10*time.Second), testKey, "J1")
	if err != nil {
		t.Fatal(err)
	}
	var ptrs []string
	for _, e := range got {
		ptrs = append(ptrs, e.Pointer)
		if e.Code != "invalid" || !strings.HasPrefix(e.Detail, "bad ") {
			t.Errorf("error %+v", e)
		}
	}
	want := []string{"/data/attributes/profiles/data/0/attributes/email", "/data/attributes/profiles/data/3/attributes/email", "/data/attributes/profiles/data/7/attributes/email"}
	if diff := cmp.Diff(want, ptrs); diff != "" {
		t.Errorf("pointers (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) != 2 || queries[0] != "page%5Bsize%5D=100" || !strings.Contains(queries[1], "page%5Bcursor%5D=c2") {
		t.Errorf("queries = %q", queries)
	}
	if _, err := env.c.ImportErrors(ctxTimeout(t, time.Second), testKey, "a/b"); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("bad job id: %v", err)
	}
}
