package app_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestAdminGuessesShared: wrong admin tokens on the deletion API and on
// the console count against one limit per address, so spreading guesses
// over both paths gains nothing.
func TestAdminGuessesShared(t *testing.T) {
	base, _ := startAt(t, t.TempDir())
	guess := func(method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(`{"userId":"u1"}`))
		req.Header.Set("Authorization", "Bearer guess-0123456789-xyz")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	paths := []struct{ method, path string }{{"POST", "/admin/api/deletions"}, {"GET", "/admin/log"}}
	for i := range 10 { // authlimit.Failures, half on each path
		p := paths[i%2]
		if got := guess(p.method, p.path); got != http.StatusUnauthorized {
			t.Fatalf("guess %d on %s: %d, want 401", i+1, p.path, got)
		}
	}
	for _, p := range paths {
		if got := guess(p.method, p.path); got != http.StatusTooManyRequests {
			t.Errorf("11th guess on %s: %d, want 429", p.path, got)
		}
	}
}
