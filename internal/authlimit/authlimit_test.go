package authlimit

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/forwarded"
	"github.com/relaycdp/relay/internal/testutil"
)

var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// TestLimiter: an address is refused after Failures failures in Window,
// with the wait until its oldest failure ages out; other addresses are
// unaffected; a success or the window passing lets it try again.
func TestLimiter(t *testing.T) {
	clock := testutil.NewClock(start)
	l := New(clock.Now, forwarded.Trusted{})
	const a, b = "192.0.2.1", "198.51.100.7"
	for i := range Failures {
		if ok, wait := l.Allow(a); !ok || wait != 0 {
			t.Fatalf("before failure %d: Allow = %v, %s; want true, 0", i+1, ok, wait)
		}
		l.Failed(a)
		clock.Add(time.Second)
	}
	ok, wait := l.Allow(a)
	if want := Window - Failures*time.Second; ok || wait != want {
		t.Fatalf("after %d failures: Allow = %v, %s; want false, %s", Failures, ok, wait, want)
	}
	if ok, _ := l.Allow(b); !ok {
		t.Fatal("another address is throttled")
	}
	// The oldest failure ages out: one more attempt is allowed.
	clock.Set(start.Add(Window))
	if ok, _ := l.Allow(a); !ok {
		t.Fatal("after the oldest failure left the window: still refused")
	}
	l.Failed(a)
	if ok, _ := l.Allow(a); ok {
		t.Fatal("a failure after one aged out: allowed, want refused again")
	}
	l.Succeeded(a)
	if ok, _ := l.Allow(a); !ok {
		t.Fatal("after Succeeded: still refused")
	}
	for range Failures - 1 {
		l.Failed(a)
	}
	if ok, _ := l.Allow(a); !ok {
		t.Fatalf("%d failures after a success: refused, want allowed", Failures-1)
	}
}

// TestLimiterBounded: however many addresses fail, at most maxAddrs are
// remembered, and the newest failing address is always counted.
func TestLimiterBounded(t *testing.T) {
	clock := testutil.NewClock(start)
	l := New(clock.Now, forwarded.Trusted{})
	for i := range maxAddrs + 500 {
		l.Failed(fmt.Sprintf("addr-%d", i))
	}
	if n := len(l.failures); n > maxAddrs {
		t.Fatalf("%d addresses remembered, want at most %d", n, maxAddrs)
	}
	last := fmt.Sprintf("addr-%d", maxAddrs+499)
	for range Failures - 1 {
		l.Failed(last)
	}
	if ok, _ := l.Allow(last); ok {
		t.Fatal("the newest address's failures were forgotten")
	}
	// Stale addresses go first once the window has passed.
	clock.Add(Window + time.Second)
	l.Failed("fresh")
	if n := len(l.failures); n != 1 {
		t.Errorf("after the window: %d addresses remembered, want 1 (all stale ones dropped)", n)
	}
}

func TestClientAddr(t *testing.T) {
	proxies, err := forwarded.Parse("trustedProxies", []string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		proxies    forwarded.Trusted
		remote, ff string
		want       string
	}{
		{remote: "192.0.2.1:1000", want: "192.0.2.1"},
		{remote: "[2001:db8::1]:443", want: "2001:db8::1"},
		{remote: "not-host-port", want: "not-host-port"},
		// No trusted proxy: a client's own X-Forwarded-For changes nothing.
		{remote: "192.0.2.1:1000", ff: "198.51.100.7", want: "192.0.2.1"},
		// Behind a trusted proxy each client counts apart.
		{proxies: proxies, remote: "10.0.0.5:1000", ff: "198.51.100.7", want: "198.51.100.7"},
		{proxies: proxies, remote: "10.0.0.5:1000", ff: "203.0.113.9", want: "203.0.113.9"},
		// What the client wrote before the proxies does not count.
		{proxies: proxies, remote: "10.0.0.5:1000", ff: "1.2.3.4, 198.51.100.7, 10.0.0.9", want: "198.51.100.7"},
		{proxies: proxies, remote: "10.0.0.5:1000", want: "10.0.0.5"},
		{proxies: proxies, remote: "10.0.0.5:1000", ff: "junk", want: "10.0.0.5"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.ff != "" {
			r.Header.Set("X-Forwarded-For", c.ff)
		}
		if got := New(nil, c.proxies).ClientAddr(r); got != c.want {
			t.Errorf("ClientAddr(%q, X-Forwarded-For %q) = %q, want %q", c.remote, c.ff, got, c.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		wait time.Duration
		want string
	}{
		{0, "1"}, {200 * time.Millisecond, "1"}, {1499 * time.Millisecond, "1"}, {1500 * time.Millisecond, "2"}, {Window, "60"},
	} {
		if got := RetryAfter(c.wait); got != c.want {
			t.Errorf("RetryAfter(%s) = %q, want %q", c.wait, got, c.want)
		}
	}
}
