package deletion

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// The deletion API accepts the admin token, so it throttles failed
// authentications as the console does (10 a minute per client address,
// then 429): otherwise it would be the faster way to guess the token.
const (
	authFailures = 10
	authWindow   = time.Minute
	// maxThrottled bounds the addresses remembered.
	maxThrottled = 10000
)

// failures counts failed authentications per client address.
type failures struct {
	mu     sync.Mutex
	byAddr map[string][]time.Time
}

// allow reports whether addr may try a token at now, and if not, for how
// long it must wait.
func (f *failures) allow(addr string, now time.Time) (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := within(f.byAddr[addr], now)
	if len(kept) == 0 {
		delete(f.byAddr, addr)
		return true, 0
	}
	f.byAddr[addr] = kept
	if len(kept) < authFailures {
		return true, 0
	}
	return false, kept[0].Add(authWindow).Sub(now)
}

func (f *failures) failed(addr string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byAddr == nil {
		f.byAddr = map[string][]time.Time{}
	}
	if _, ok := f.byAddr[addr]; !ok && len(f.byAddr) >= maxThrottled {
		for a, ts := range f.byAddr {
			if len(within(ts, now)) == 0 || len(f.byAddr) >= maxThrottled {
				delete(f.byAddr, a)
			}
		}
	}
	f.byAddr[addr] = append(f.byAddr[addr], now)
}

func (f *failures) succeeded(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.byAddr, addr)
}

func within(ts []time.Time, now time.Time) []time.Time {
	cut := now.Add(-authWindow)
	kept := ts[:0]
	for _, t := range ts {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	return kept
}

// clientAddr is the peer's IP, what failures are counted by.
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
