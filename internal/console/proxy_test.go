package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/forwarded"
)

// A proxy in front of the console may use Basic auth: its Authorization
// header is not a failed admin token, so the session still works.
func TestBasicAuthProxy(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	withAuth := func(c *testClient, method, path, value string, form url.Values) (*http.Response, string) {
		var req *http.Request
		if form != nil {
			req, _ = http.NewRequest(method, tc.srv.URL+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req, _ = http.NewRequest(method, tc.srv.URL+path, nil)
		}
		req.Header.Set("Authorization", value)
		return c.do(req)
	}
	basic := "Basic " + "b3BzOnByb3h5LXBhc3N3b3Jk" // ops:proxy-password
	if resp, body := withAuth(s, http.MethodGet, "/admin/sources", basic, nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Sources") {
		t.Errorf("session behind a Basic-auth proxy: %d", resp.StatusCode)
	}
	if resp, _ := withAuth(s, http.MethodPost, "/admin/sources", basic, s.form("name", "app")); resp.StatusCode >= 400 {
		t.Errorf("form post behind a Basic-auth proxy: %d", resp.StatusCode)
	}
	anon := tc.anon(t)
	if resp, _ := withAuth(anon, http.MethodGet, "/admin/", basic, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("Basic without a session: %d, want 303 to the login form", resp.StatusCode)
	}
	if resp, _ := withAuth(anon, http.MethodGet, "/admin/", "Bearer wrong-token", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong Bearer token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := withAuth(anon, http.MethodGet, "/admin/", "bearer "+testToken, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("Bearer scheme in lower case: %d, want 200", resp.StatusCode)
	}
	// A wrong Bearer token still fails even with a valid session: a
	// token that is sent must be right.
	if resp, _ := withAuth(s, http.MethodGet, "/admin/", "Bearer wrong-token", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong Bearer token with a session: %d, want 401", resp.StatusCode)
	}
}

// The session cookie is Secure when a trusted proxy says the client used
// HTTPS, and only then.
func TestSecureCookieBehindProxy(t *testing.T) {
	trusted, err := forwarded.Parse("trustedProxies", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	untrusted, _ := forwarded.Parse("trustedProxies", []string{"10.9.9.9"})
	cases := []struct {
		name   string
		secure func(*http.Request) bool
		proto  string
		want   bool
	}{
		{"trusted proxy, https", trusted.Secure, "https", true},
		{"trusted proxy, http", trusted.Secure, "http", false},
		{"untrusted peer, https", untrusted.Secure, "https", false},
		{"no proxy setting", nil, "https", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := newTestConsole(t)
			tc.cfg.Secure = c.secure
			req, _ := http.NewRequest(http.MethodPost, tc.srv.URL+"/admin/login", strings.NewReader(url.Values{"token": {testToken}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-Proto", c.proto)
			resp, _ := tc.anon(t).do(req)
			var got *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == cookieName {
					got = ck
				}
			}
			if got == nil {
				t.Fatalf("login %d set no session cookie", resp.StatusCode)
			}
			if got.Secure != c.want {
				t.Errorf("cookie Secure = %v, want %v", got.Secure, c.want)
			}
		})
	}
}
