package readiness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	failing := errors.New("boom")
	cases := []struct {
		name       string
		checks     []Check
		wantStatus int
		wantReason string
	}{
		{"all ok", []Check{{"queue", func(context.Context) error { return nil }}}, 200, ""},
		{"one failing", []Check{{"queue", func(context.Context) error { return nil }},
			{"store", func(context.Context) error { return fmt.Errorf("store at 10.0.0.7: %w", failing) }}}, 503, "boom"},
		{"timeout", []Check{{"store", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}}, 503, "timed out"},
		{"no checks", nil, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Checker{Checks: tc.checks, Timeout: 50 * time.Millisecond,
				Destinations: func(context.Context) []DestState { return []DestState{{Name: "k", State: "ok", Queued: 3}} }}
			rec := httptest.NewRecorder()
			c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body)
			}
			var rep Report
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Ready != (tc.wantStatus == 200) || len(rep.Destinations) != 1 || rep.Destinations[0].Queued != 3 {
				t.Errorf("report %+v", rep)
			}
			for _, r := range rep.Checks {
				if !r.OK && r.Reason != tc.wantReason {
					t.Errorf("reason %q, want %q (the root cause only)", r.Reason, tc.wantReason)
				}
			}
			if tc.wantReason != "" && strings.Contains(rec.Body.String(), "10.0.0.7") {
				t.Errorf("/ready shows the wrapped detail: %s", rec.Body)
			}
		})
	}
}

// The checks run at most once per TTL, however often /ready is asked.
func TestReportCached(t *testing.T) {
	now := time.Unix(1000, 0)
	runs := 0
	c := &Checker{TTL: time.Second, Now: func() time.Time { return now },
		Checks: []Check{{"queue", func(context.Context) error { runs++; return nil }}}}
	c.Report(context.Background())
	c.Report(context.Background())
	if runs != 1 {
		t.Errorf("%d runs within the TTL, want 1", runs)
	}
	now = now.Add(time.Second)
	c.Report(context.Background())
	if runs != 2 {
		t.Errorf("%d runs after the TTL, want 2", runs)
	}
}

func TestWritableDir(t *testing.T) {
	dir := t.TempDir()
	if err := WritableDir(dir)(context.Background()); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Errorf("probe left %d files", len(left))
	}
	err := WritableDir(filepath.Join(dir, "gone"))(context.Background())
	if !errors.Is(err, syscall.ENOENT) || rootCause(err) != "no such file or directory" {
		t.Errorf("missing dir: %v (root %q)", err, rootCause(err))
	}
}

func TestPublicHandlerHidesDestinations(t *testing.T) {
	c := &Checker{Destinations: func(context.Context) []DestState { return []DestState{{Name: "klaviyo-eu", State: "ok", Queued: 9}} }}
	rec := httptest.NewRecorder()
	c.PublicHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "klaviyo-eu") {
		t.Errorf("public /ready: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
	if !strings.Contains(rec.Body.String(), "klaviyo-eu") {
		t.Errorf("/ready lacks the destinations: %s", rec.Body)
	}
}
