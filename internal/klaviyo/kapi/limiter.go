package kapi

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/relaycdp/relay/internal/klaviyo/openapi"
)

// bucket is the rate-limit state of one (API key, endpoint): the two
// windows' limiters and the block set by the last 429.
//
// Requests get send slots in FIFO order. Both limiters are asked for a
// token at the same instant, the slot, so neither counts a token earlier
// than it is used: reserving both "now" and sleeping for the longer delay
// (the usual composition) would let the other limiter's window move on
// while the request still waits, and then release requests closer together
// than its limit allows. The limiters are only ever called with
// non-decreasing times (x/time/rate mis-counts if time goes backwards).
// windows are the lengths of Klaviyo's two windows and the safety margin
// added to both (tests shorten the steady window).
type windows struct {
	burst, steady, margin time.Duration
}

type bucket struct {
	mu     sync.Mutex
	lims   [2]*rate.Limiter // burst (per second), steady (per minute)
	last   time.Time        // latest slot handed out
	until  time.Time        // blocked by a 429 until then
	streak int              // 429s in a row without a usable Retry-After
}

// newBucket sizes the limiters so that no window of length W+margin sees
// more than L requests. A token bucket of size b refilling at r lets at most
// b + ⌈r·T⌉ − 1 requests start in any half-open window of length T, so with
// T = W+margin and r = (L−b+1)/T that is exactly L.
//
// The burst limiter keeps half the burst for bursts (b = ⌈N/2⌉), which still
// refills at about N/2 per second, above every steady rate Klaviyo documents.
// The steady limiter allows a small initial burst (b = min(⌈N/2⌉, M/10),
// at least 1) and sustains (M−b+1)/(60s+margin), about 95% of M per minute.
func newBucket(l openapi.Limit, w windows) *bucket {
	nb := (l.BurstPerSecond + 1) / 2
	ns := max(1, min(nb, l.SteadyPerMin/10))
	return &bucket{lims: [2]*rate.Limiter{
		newWindowLimiter(l.BurstPerSecond, nb, w.burst+w.margin),
		newWindowLimiter(l.SteadyPerMin, ns, w.steady+w.margin),
	}}
}

func newWindowLimiter(limit, size int, window time.Duration) *rate.Limiter {
	r := float64(limit-size+1) / window.Seconds()
	return rate.NewLimiter(rate.Limit(r), size)
}

// reserve hands out the next send slot at or after now: the earliest time
// not before the previous slot or the 429 block at which both limiters have
// a token. If the slot is later than deadline (when non-zero) nothing is
// taken and ok is false.
func (b *bucket) reserve(now, deadline time.Time) (slot time.Time, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := now
	if t.Before(b.last) {
		t = b.last
	}
	if t.Before(b.until) {
		t = b.until
	}
	for range 4 { // one pass suffices; the loop absorbs float rounding
		ready := true
		for _, l := range b.lims {
			if tok := l.TokensAt(t); tok < 1 {
				ready = false
				secs := (1 - tok) / float64(l.Limit())
				t = t.Add(time.Duration(math.Ceil(secs*1e9)) + time.Microsecond)
			}
		}
		if ready {
			break
		}
	}
	if !deadline.IsZero() && t.After(deadline) {
		return t, false
	}
	for _, l := range b.lims {
		l.AllowN(t, 1)
	}
	b.last = t
	return t, true
}

// pass reports whether a request may be sent at now (no 429 block is in
// force) and, if so, calls onPass (test hook, may be nil) under the lock,
// so that pass and block decisions are totally ordered.
func (b *bucket) pass(now time.Time, onPass func(time.Time)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Before(b.until) {
		return false
	}
	if onPass != nil {
		onPass(now)
	}
	return true
}

// block records a 429 received at now. ra is the server's Retry-After, or
// ≤0 if it sent none (or one in the past): then def, doubled for each such
// 429 in a row, capped at one steady window. The block only ever extends.
// onBlock (test hook, may be nil) is called under the lock.
func (b *bucket) block(now time.Time, ra, def time.Duration, onBlock func(until time.Time)) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ra <= 0 {
		ra = min(def<<min(b.streak, 16), steadyWindow)
		b.streak++
	} else {
		b.streak = 0
	}
	if u := now.Add(ra); u.After(b.until) {
		b.until = u
	}
	if onBlock != nil {
		onBlock(b.until)
	}
	return b.until
}

// succeeded resets the missing-Retry-After streak.
func (b *bucket) succeeded() {
	b.mu.Lock()
	b.streak = 0
	b.mu.Unlock()
}
