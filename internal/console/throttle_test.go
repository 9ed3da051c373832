package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestAuthThrottledPerAddress: failed admin authentications, on the login
// form and with Bearer alike, are counted per client address; past
// loginFailures that address gets 429 with Retry-After, another address
// with the right token is never affected, and failures are logged
// without the guess.
func TestAuthThrottledPerAddress(t *testing.T) {
	tc := newTestConsole(t)
	h := tc.Console.Handler()
	do := func(addr, via, token string) *httptest.ResponseRecorder {
		var r *http.Request
		if via == "login" {
			r = httptest.NewRequest(http.MethodPost, "/admin/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest(http.MethodGet, "/admin/log", nil)
			r.Header.Set("Authorization", "Bearer "+token)
		}
		r.RemoteAddr = addr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	const guess = "guess-0123456789-xyz"
	for i := range loginFailures {
		via := []string{"login", "bearer"}[i%2]
		if rec := do("192.0.2.1:1000", via, guess); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d (%s): %d, want 401", i+1, via, rec.Code)
		}
	}
	for _, via := range []string{"login", "bearer"} {
		rec := do("192.0.2.1:2000", via, guess)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s past the limit: %d Retry-After %q, want 429 with Retry-After", via, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	// The admin elsewhere is not locked out, by either path.
	if rec := do("198.51.100.7:3000", "bearer", testToken); rec.Code != http.StatusOK {
		t.Errorf("right Bearer token from another address: %d", rec.Code)
	}
	if rec := do("198.51.100.7:3001", "login", testToken); rec.Code != http.StatusSeeOther {
		t.Errorf("right login from another address: %d", rec.Code)
	}
	logs := tc.logBuf.String()
	if strings.Count(logs, "admin authentication failed") != loginFailures {
		t.Errorf("want %d failed attempts logged, got:\n%s", loginFailures, logs)
	}
	if strings.Contains(logs, guess) {
		t.Errorf("the log holds the guess:\n%s", logs)
	}
	// A success clears the address's failures.
	for range loginFailures - 1 {
		do("203.0.113.9:1", "bearer", guess)
	}
	if rec := do("203.0.113.9:1", "bearer", testToken); rec.Code != http.StatusOK {
		t.Fatalf("right token under the limit: %d", rec.Code)
	}
	if rec := do("203.0.113.9:1", "bearer", guess); rec.Code != http.StatusUnauthorized {
		t.Errorf("after a success, a wrong token: %d, want 401 (failures forgotten)", rec.Code)
	}
}
