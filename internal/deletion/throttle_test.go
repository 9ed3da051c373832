package deletion

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAuthThrottled: the deletion API takes the admin token, so it must
// not be a side door for guessing it faster than the console allows:
// after authFailures wrong tokens from one address that address gets 429
// with Retry-After (even with the right token, until the window passes),
// another address is unaffected, and a success clears an address's count.
func TestAuthThrottled(t *testing.T) {
	f := newFixture(t)
	api := NewAPI(f.worker, f.store, slog.New(slog.DiscardHandler), "adm_token_0123456789", "del_key_0123456789")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	api.now = func() time.Time { return now }
	mux := http.NewServeMux()
	api.Register(mux)
	do := func(addr, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/admin/api/deletions", nil)
		req.RemoteAddr = addr + ":5555"
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("10.0.0.1", "wrong"); rec.Code != 401 {
		t.Fatalf("first wrong token: %d", rec.Code)
	}
	if rec := do("10.0.0.1", "del_key_0123456789"); rec.Code != 200 {
		t.Fatalf("right token after one failure: %d", rec.Code)
	}
	for i := range authFailures {
		if rec := do("10.0.0.1", "wrong"); rec.Code != 401 {
			t.Fatalf("wrong token %d (count cleared by the success): %d", i, rec.Code)
		}
	}
	rec := do("10.0.0.1", "adm_token_0123456789")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "too many failed") {
		t.Errorf("after %d failures: %d %q Retry-After %q, want 429", authFailures, rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"))
	}
	if rec := do("10.0.0.2", "adm_token_0123456789"); rec.Code != 200 {
		t.Errorf("another address: %d, want 200", rec.Code)
	}
	now = now.Add(authWindow + time.Second)
	if rec := do("10.0.0.1", "adm_token_0123456789"); rec.Code != 200 {
		t.Errorf("after the window: %d, want 200", rec.Code)
	}
}
