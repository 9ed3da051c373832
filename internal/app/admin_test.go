package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/app"
)

// TestAdminListener: with adminAddr the console and /metrics move to their
// own listener and the ingest port no longer serves them; a trusted
// proxy's X-Forwarded-Proto: https makes the session cookie Secure.
func TestAdminListener(t *testing.T) {
	const token = "admin-listener-test-token"
	ctx, cancel := context.WithCancel(context.Background())
	ready, adminReady := make(chan string, 1), make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Demo: true, Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Data: t.TempDir(), Out: io.Discard,
			Env: func(k string) (string, bool) {
				v, ok := map[string]string{"RELAY_LOG_LEVEL": "error", "RELAY_ADMIN_TOKEN": token,
					"RELAY_TRUSTED_PROXIES": "127.0.0.1/32"}[k]
				return v, ok
			},
			Ready:      func(addr string) { ready <- addr },
			AdminReady: func(addr string) { adminReady <- addr },
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("relay serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("relay serve did not stop")
		}
	})
	var ingest, admin string
	for ingest == "" || admin == "" {
		select {
		case a := <-ready:
			ingest = "http://" + a
		case a := <-adminReady:
			admin = "http://" + a
		case err := <-done:
			t.Fatalf("relay serve: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("relay serve did not start")
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	status := func(method, u string, hdr map[string]string, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	bearer := map[string]string{"Authorization": "Bearer " + token}
	for _, c := range []struct {
		base, path string
		hdr        map[string]string
		want       int
	}{
		{ingest, "/admin/", bearer, http.StatusNotFound},
		{ingest, "/admin/login", nil, http.StatusNotFound},
		{ingest, "/metrics", nil, http.StatusNotFound},
		{ingest, "/health", nil, http.StatusOK},
		{ingest, "/ready", nil, http.StatusOK},
		{admin, "/admin/", bearer, http.StatusOK},
		{admin, "/admin/", nil, http.StatusSeeOther},
		{admin, "/metrics", nil, http.StatusOK},
		{admin, "/ready", nil, http.StatusOK},
		{admin, "/v1/track", nil, http.StatusNotFound},
	} {
		if resp := status(http.MethodGet, c.base+c.path, c.hdr, ""); resp.StatusCode != c.want {
			which := "ingest"
			if c.base == admin {
				which = "admin"
			}
			t.Errorf("GET %s on the %s port: %d, want %d", c.path, which, resp.StatusCode, c.want)
		}
	}
	// The internet-facing /ready gives the status, not the destinations.
	for base, wantDest := range map[string]bool{ingest: false, admin: true} {
		resp, err := http.Get(base + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.Contains(string(body), `"destinations"`); got != wantDest || !strings.Contains(string(body), `"ready":true`) {
			t.Errorf("%s/ready: %s (destinations shown: %v, want %v)", base, body, got, wantDest)
		}
	}
	form := url.Values{"token": {token}}.Encode()
	formHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for proto, wantSecure := range map[string]bool{"https": true, "http": false} {
		hdr := map[string]string{"X-Forwarded-Proto": proto}
		for k, v := range formHdr {
			hdr[k] = v
		}
		resp := status(http.MethodPost, admin+"/admin/login", hdr, form)
		if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
			t.Fatalf("login via proxy (%s): %d", proto, resp.StatusCode)
		}
		if got := resp.Cookies()[0].Secure; got != wantSecure {
			t.Errorf("X-Forwarded-Proto: %s from a trusted proxy: cookie Secure %v, want %v", proto, got, wantSecure)
		}
	}
}
