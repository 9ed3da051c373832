package forwarded

import (
	"crypto/tls"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestSecure(t *testing.T) {
	trusted, err := Parse("trustedProxies", []string{"10.0.0.0/8", "::1", "192.168.1.7"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		remote string
		proto  []string
		tls    bool
		want   bool
	}{
		{"trusted proxy says https", "10.1.2.3:5555", []string{"https"}, false, true},
		{"case and spaces", "10.1.2.3:5555", []string{" HTTPS "}, false, true},
		{"trusted proxy says http", "10.1.2.3:5555", []string{"http"}, false, false},
		{"untrusted peer says https", "203.0.113.9:5555", []string{"https"}, false, false},
		{"trusted single address", "192.168.1.7:1", []string{"https"}, false, true},
		{"neighbour of a single address", "192.168.1.8:1", []string{"https"}, false, false},
		{"ipv6 loopback", "[::1]:80", []string{"https"}, false, true},
		{"ipv4-mapped ipv6", "[::ffff:10.0.0.1]:80", []string{"https"}, false, true},
		{"no header", "10.1.2.3:5555", nil, false, false},
		{"chain: nearest proxy wrote http", "10.1.2.3:5555", []string{"https, http"}, false, false},
		{"chain: nearest proxy wrote https", "10.1.2.3:5555", []string{"http, https"}, false, true},
		{"repeated header: last counts", "10.1.2.3:5555", []string{"https", "http"}, false, false},
		{"direct TLS", "203.0.113.9:5555", nil, true, true},
		{"garbage remote", "nonsense", []string{"https"}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/admin/login", nil)
			r.RemoteAddr = tc.remote
			for _, p := range tc.proto {
				r.Header.Add("X-Forwarded-Proto", p)
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := trusted.Secure(r); got != tc.want {
				t.Errorf("Secure = %v, want %v", got, tc.want)
			}
		})
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.2.3:1"
	r.Header.Set("X-Forwarded-Proto", "https")
	if (Trusted{}).Secure(r) {
		t.Error("the zero value trusts a proxy")
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"10.0.0.0/33", "example.com", "", "10.0.0/8"} {
		_, err := Parse("trustedProxies", []string{"127.0.0.1", in})
		if err == nil || !strings.Contains(err.Error(), "trustedProxies[1]") {
			t.Errorf("Parse(%q): %v, want an error naming trustedProxies[1]", in, err)
		}
	}
}

// Whatever a client puts in X-Forwarded-For, the address is the peer's or
// one of the header's hops, never a made-up string, and nothing panics.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.5:1000", "198.51.100.7")
	f.Add("10.0.0.5:1000", "1.2.3.4, ::ffff:10.0.0.9 ,fe80::1%eth0")
	f.Add("192.0.2.1:1", ",,")
	trusted, err := Parse("trustedProxies", []string{"10.0.0.0/8", "::1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, ff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", ff)
		got := trusted.ClientIP(r)
		if got == peer(r) {
			return
		}
		for _, hop := range strings.Split(ff, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(hop)); err == nil && a.Unmap().String() == got {
				return
			}
		}
		t.Fatalf("ClientIP = %q: neither the peer %q nor a hop of %q", got, peer(r), ff)
	})
}
