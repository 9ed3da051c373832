package deletion

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/authlimit"
	"github.com/relaycdp/relay/internal/forwarded"
	"github.com/relaycdp/relay/internal/testutil"
)

// TestAPIThrottledPerAddress: wrong tokens count per client address; the
// 11th wrong guess from one address gets 429 with Retry-After (and so
// does the right token from there until the window passes, as on the
// console), another address is unaffected, and failures are logged
// without the guess.
func TestAPIThrottledPerAddress(t *testing.T) {
	f := newFixture(t)
	clock := testutil.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var logs bytes.Buffer
	mux := http.NewServeMux()
	NewAPI(f.worker, f.store, authlimit.New(clock.Now, forwarded.Trusted{}), slog.New(slog.NewTextHandler(&logs, nil)), "adm_token", "del_key").Register(mux)
	do := func(addr, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/admin/api/deletions", strings.NewReader(`{"userId":"u1"}`))
		r.Header.Set("Authorization", "Bearer "+token)
		r.RemoteAddr = addr
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		return rec
	}
	const guess = "guess-0123456789-xyz"
	for i := range authlimit.Failures {
		if rec := do("192.0.2.1:1000", guess); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, rec.Code)
		}
	}
	for _, tok := range []string{guess, "adm_token", "del_key"} {
		rec := do("192.0.2.1:2000", tok)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "60" {
			t.Errorf("past the limit (right token: %v): %d Retry-After %q, want 429 with Retry-After 60",
				tok != guess, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	other := "198.51.100.7:3000"
	if rec := do(other, guess); rec.Code != http.StatusUnauthorized {
		t.Errorf("wrong token from another address: %d, want 401", rec.Code)
	}
	for _, tok := range []string{"adm_token", "del_key"} {
		if rec := do(other, tok); rec.Code != http.StatusCreated {
			t.Errorf("right token from another address: %d %s, want 201", rec.Code, rec.Body)
		}
	}
	// No credentials is not a guess and is not throttled.
	r := httptest.NewRequest(http.MethodGet, "/admin/api/deletions", nil)
	r.RemoteAddr = "192.0.2.1:4000"
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, r)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("no credentials from the throttled address: %d, want 401", rec.Code)
	}
	// Once the window has passed, the right token is accepted again.
	clock.Add(authlimit.Window)
	if rec := do("192.0.2.1:5000", "adm_token"); rec.Code != http.StatusCreated {
		t.Errorf("right token after the window: %d %s, want 201", rec.Code, rec.Body)
	}
	if n := strings.Count(logs.String(), "admin authentication failed"); n != authlimit.Failures+1 {
		t.Errorf("want %d failed attempts logged, got %d:\n%s", authlimit.Failures+1, n, logs.String())
	}
	if strings.Contains(logs.String(), guess) {
		t.Errorf("the log holds the guess:\n%s", logs.String())
	}
}
