// Package authlimit owns the throttle on admin authentication: failed
// attempts are counted per client address, and past Failures in Window
// that address is refused until its oldest failure ages out. One Limiter
// is shared by every path that checks the admin token (the console, the
// deletion API), so guesses on one count on all.
package authlimit

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/relaycdp/relay/internal/forwarded"
)

const (
	// Failures is how many failed attempts one address may make per
	// Window before it is refused.
	Failures = 10
	Window   = time.Minute
	// maxAddrs bounds the addresses remembered, so a flood of addresses
	// cannot grow memory without end.
	maxAddrs = 10000
)

// Limiter counts failed attempts per client address. Only failures count:
// junk from one address never locks out the admin at another.
type Limiter struct {
	mu       sync.Mutex
	now      func() time.Time
	proxies  forwarded.Trusted
	failures map[string][]time.Time
}

// New returns a Limiter on the clock now (nil: time.Now) that counts
// clients behind the trusted proxies by their forwarded address.
func New(now func() time.Time, proxies forwarded.Trusted) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, proxies: proxies, failures: map[string][]time.Time{}}
}

// Allow reports whether addr may try a token now, and if not, how long
// until it may.
func (l *Limiter) Allow(addr string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	kept := recent(l.failures[addr], now)
	if len(kept) == 0 {
		delete(l.failures, addr)
		return true, 0
	}
	l.failures[addr] = kept
	if len(kept) < Failures {
		return true, 0
	}
	return false, kept[0].Add(Window).Sub(now)
}

func recent(ts []time.Time, now time.Time) []time.Time {
	cut := now.Add(-Window)
	kept := ts[:0]
	for _, t := range ts {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	return kept
}

// Failed counts a failed attempt from addr. When maxAddrs addresses are
// already remembered, a new one first makes room: stale addresses go, then
// arbitrary others until there is room; an attacker with that many
// addresses gains little from it, and memory stays bounded.
func (l *Limiter) Failed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if _, ok := l.failures[addr]; !ok && len(l.failures) >= maxAddrs {
		for a, ts := range l.failures {
			if len(recent(ts, now)) == 0 || len(l.failures) >= maxAddrs {
				delete(l.failures, a)
			}
		}
	}
	l.failures[addr] = append(l.failures[addr], now)
}

// Succeeded forgets addr's failures: the admin typing the token wrong a
// few times is not throttled later.
func (l *Limiter) Succeeded(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, addr)
}

// ClientAddr is the address failures are counted by: the peer's IP, or
// behind a trusted proxy the client's (forwarded.Trusted.ClientIP).
func (l *Limiter) ClientAddr(r *http.Request) string { return l.proxies.ClientIP(r) }

// RetryAfter is the Retry-After header value for a wait: whole seconds,
// at least 1.
func RetryAfter(wait time.Duration) string {
	return strconv.Itoa(max(1, int(wait.Round(time.Second)/time.Second)))
}
