package kapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	netErr := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	tests := []struct {
		name   string
		status int
		err    error
		want   Class
	}{
		{"200", 200, nil, OK},
		{"202 accepted", 202, nil, OK},
		{"204", 204, nil, OK},
		{"301 surfaced redirect", 301, nil, Permanent},
		{"400 validation", 400, nil, Permanent},
		{"401 bad key", 401, nil, Permanent},
		{"403 scope", 403, nil, Permanent},
		{"404", 404, nil, Permanent},
		{"405", 405, nil, Permanent},
		{"408 request timeout", 408, nil, Retryable},
		{"409 duplicate_profile", 409, nil, Permanent},
		{"413 too large", 413, nil, Permanent},
		{"415", 415, nil, Permanent},
		{"422", 422, nil, Permanent},
		{"429", 429, nil, Throttled},
		{"500", 500, nil, Retryable},
		{"501 not implemented", 501, nil, Permanent},
		{"502", 502, nil, Retryable},
		{"503", 503, nil, Retryable},
		{"504", 504, nil, Retryable},
		{"599", 599, nil, Retryable},
		{"0 without error", 0, nil, Permanent},
		{"deadline", 0, context.DeadlineExceeded, Retryable},
		{"canceled", 0, context.Canceled, Retryable},
		{"url error EOF", 0, &url.Error{Op: "Post", URL: "http://x/api/events", Err: io.EOF}, Retryable},
		{"url error timeout", 0, &url.Error{Op: "Post", URL: "http://x", Err: context.DeadlineExceeded}, Retryable},
		{"connection reset", 0, netErr, Retryable},
		{"wrapped reset", 0, fmt.Errorf("send: %w", netErr), Retryable},
		{"plain error", 0, errors.New("marshal failed"), Permanent},
		{"invalid request", 0, ErrInvalidRequest, Permanent},
		{"error wins over status", 200, context.Canceled, Retryable},
		{"*Error keeps its class", 0, &Error{Class: Throttled}, Throttled},
		{"wrapped *Error", 500, fmt.Errorf("x: %w", &Error{Class: Permanent}), Permanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.status, tc.err); got != tc.want {
				t.Errorf("Classify(%d, %v) = %v, want %v", tc.status, tc.err, got, tc.want)
			}
		})
	}
}

func TestClassOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, OK},
		{"wrapped throttled", fmt.Errorf("deliver: %w", &Error{Class: Throttled, Status: 429}), Throttled},
		{"retryable with cause", &Error{Class: Retryable, Err: context.DeadlineExceeded}, Retryable},
		{"ctx error alone", context.DeadlineExceeded, Retryable},
		{"other", errors.New("x"), Permanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClassOf(tc.err); got != tc.want {
				t.Errorf("ClassOf = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEndpointMatch(t *testing.T) {
	eps, err := newEndpoints(keys(fastLimits()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		want         string
	}{
		{"POST", "/api/events", "POST /api/events"},
		{"POST", "/api/events/", "POST /api/events"},
		{"POST", "/api/lists/Y6nRLr/relationships/profiles", "POST /api/lists/{id}/relationships/profiles"},
		{"DELETE", "/api/lists/Y6nRLr/relationships/profiles/", "DELETE /api/lists/{id}/relationships/profiles"},
		{"GET", "/api/profile-bulk-import-jobs/01GSQPBF74KQ5YTDEPP41T1BZH", "GET /api/profile-bulk-import-jobs/{job_id}"},
		{"PATCH", "/api/profiles/01H", "PATCH /api/profiles/{id}"},
		{"GET", "/api/profiles", "GET /api/profiles"},
		{"POST", "/api/profiles", "POST /api/profiles"},
		{"POST", "/client/subscriptions", "POST /client/subscriptions"},
		{"GET", "/api/events", ""},
		{"POST", "/api/lists//relationships/profiles", ""},
		{"POST", "/api/lists/x/relationships", ""},
		{"GET", "/api/profile-bulk-import-jobs/x/import-errors", "GET /api/profile-bulk-import-jobs/{id}/import-errors"},
		{"GET", "/api/profile-bulk-import-jobs/x/lists", ""},
		{"post", "/api/events", ""},
		{"POST", "/", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			got, ok := eps.match(tc.method, tc.path)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("match = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"1", time.Second},
		{" 30 ", 30 * time.Second},
		{"0", 0},
		{"0.25", 250 * time.Millisecond},
		{"1.5", 1500 * time.Millisecond},
		{"-1", 0},
		{"1e3", 0},
		{"NaN", 0},
		{"Inf", 0},
		{"0x10", 0},
		{".", 0},
		{"1.2.3", 0},
		{"99999999999999999999", maxRetryAfter},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{now.Add(-7 * time.Second).Format(http.TimeFormat), -7 * time.Second},
		{"Sat, 01 Aug 2026 12:00:05 GMT", 5 * time.Second},
		{"soon", 0},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := parseRetryAfter(tc.in, now); got != tc.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "0.5", "Sat, 01 Aug 2026 12:00:05 GMT", "", "1e9", "99999999999999999999999"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		if got := parseRetryAfter(s, now); got > maxRetryAfter {
			t.Errorf("parseRetryAfter(%q) = %v > cap", s, got)
		}
	})
}

func TestDecodeErrorBody(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    []ErrorObject
		snippet string
	}{
		{
			name:   "klaviyo validation",
			status: 400,
			body:   `{"errors":[{"id":"e1","status":400,"code":"invalid","title":"Invalid input.","detail":"'metric' is a required property","source":{"pointer":"/data/attributes/metric"}}]}`,
			want: []ErrorObject{{ID: "e1", Status: 400, Code: "invalid", Title: "Invalid input.",
				Detail: "'metric' is a required property", Source: src("/data/attributes/metric", "")}},
		},
		{
			name:   "status as string, parameter source",
			status: 400,
			body:   `{"errors":[{"status":"400","code":"invalid","detail":"bad filter","source":{"parameter":"filter"}}]}`,
			want:   []ErrorObject{{Status: 400, Code: "invalid", Detail: "bad filter", Source: src("", "filter")}},
		},
		{
			name:   "duplicate profile meta",
			status: 409,
			body:   `{"errors":[{"status":409,"code":"duplicate_profile","detail":"A profile already exists","meta":{"duplicate_profile_id":"01HX"}}]}`,
			want: []ErrorObject{{Status: 409, Code: "duplicate_profile", Detail: "A profile already exists",
				Meta: map[string]any{"duplicate_profile_id": "01HX"}}},
		},
		{
			name:    "html from a proxy",
			status:  502,
			body:    "<html><body>Bad gateway</body></html>",
			snippet: "<html><body>Bad gateway</body></html>",
		},
		{name: "empty", status: 500, body: ""},
		{name: "json without errors", status: 500, body: `{"message":"oops"}`, snippet: `{"message":"oops"}`},
		{name: "key echoed", status: 401, body: `{"errors":[{"code":"not_authenticated","detail":"bad key ` + testKey + `"}]}`,
			want: []ErrorObject{{Code: "not_authenticated", Detail: "bad key [REDACTED]"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &Error{Status: tc.status, Class: Classify(tc.status, nil), Endpoint: "POST /api/events"}
			e.decodeErrorBody([]byte(tc.body), testKey)
			if diff := cmp.Diff(tc.want, e.Errors); diff != "" {
				t.Errorf("Errors (-want +got):\n%s", diff)
			}
			if e.snippet != tc.snippet {
				t.Errorf("snippet = %q, want %q", e.snippet, tc.snippet)
			}
			assertNoKey(t, "Error()", e.Error())
		})
	}
}

func src(pointer, parameter string) ErrorSource {
	return ErrorSource{Pointer: pointer, Parameter: parameter}
}

func TestErrorString(t *testing.T) {
	e := &Error{Status: 400, Class: Permanent, Endpoint: "POST /api/event-bulk-create-jobs", Attempts: 1}
	e.decodeErrorBody([]byte(`{"errors":[
		{"code":"invalid","detail":"bad time","source":{"pointer":"/data/attributes/events-bulk-create/data/3"}},
		{"code":"invalid","detail":"bad email","source":{"pointer":"/data/attributes/events-bulk-create/data/7"}}]}`), testKey)
	want := `klaviyo POST /api/event-bulk-create-jobs: 400 Bad Request; invalid: bad time (pointer /data/attributes/events-bulk-create/data/3); invalid: bad email (pointer /data/attributes/events-bulk-create/data/7) [permanent]`
	if got := e.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	if diff := cmp.Diff([]string{"/data/attributes/events-bulk-create/data/3", "/data/attributes/events-bulk-create/data/7"}, e.Pointers()); diff != "" {
		t.Errorf("Pointers (-want +got):\n%s", diff)
	}
	th := &Error{Status: 429, Class: Throttled, Endpoint: "POST /api/events", RetryAfter: 3 * time.Second, Attempts: 2}
	if got, want := th.Error(), "klaviyo POST /api/events: 429 Too Many Requests [throttled, retry after 3s, 2 attempts]"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func FuzzDecodeErrorBody(f *testing.F) {
	f.Add([]byte(`{"errors":[{"status":"400","code":"invalid","detail":"x","source":{"pointer":"/data"}}]}`))
	f.Add([]byte(`{"errors":[{"status":400.5,"meta":{"a":1}}]}`))
	f.Add([]byte("<html>" + testKey + "</html>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := &Error{Status: 400, Class: Permanent, Endpoint: "POST /api/events"}
		e.decodeErrorBody(body, testKey)
		_ = e.Pointers()
		assertNoKey(t, "Error()", e.Error())
	})
}

func FuzzEndpointMatch(f *testing.F) {
	eps, err := newEndpoints(keys(fastLimits()))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("POST", "/api/lists/Y6nRLr/relationships/profiles")
	f.Add("GET", "/api/profile-bulk-import-jobs//")
	f.Add("PATCH", "//")
	f.Fuzz(func(t *testing.T, method, path string) {
		ep, ok := eps.match(method, path)
		if ok != (ep != "") {
			t.Errorf("match(%q, %q) = %q, %v", method, path, ep, ok)
		}
		if ok && !strings.HasPrefix(ep, method+" ") {
			t.Errorf("match(%q, %q) = %q: other method", method, path, ep)
		}
	})
}
