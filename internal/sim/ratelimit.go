package sim

import (
	"strconv"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo/openapi"
)

// window is Klaviyo's rate limiter for one endpoint and one API key: two
// fixed windows, a 1-second burst window and a 1-minute steady window,
// aligned to the clock (Klaviyo's docs: "fixed-window rate limiting
// algorithm with two distinct windows"). Throttled requests do not count.
type window struct {
	sec, min           int64 // window start, in seconds / minutes since the epoch
	secCount, minCount int
}

// rateResult is the outcome of one rate-limit check.
type rateResult struct {
	allowed    bool
	retryAfter int // seconds, ≥1, when not allowed
	// steady window state for the RateLimit-* headers Klaviyo sends on
	// every non-429 answer
	limit, remaining, reset int
}

// take counts one request for (endpoint, identity) if both windows have
// room.
func (s *Sim) take(tmplKey, identity string, l openapi.Limit, now time.Time) rateResult {
	s.rlMu.Lock()
	defer s.rlMu.Unlock()
	k := tmplKey + "\x00" + identity
	w := s.windows[k]
	if w == nil {
		w = &window{}
		s.windows[k] = w
	}
	ns := now.UnixNano()
	sec := ns / int64(time.Second)
	min := ns / int64(time.Minute)
	if w.sec != sec {
		w.sec, w.secCount = sec, 0
	}
	if w.min != min {
		w.min, w.minCount = min, 0
	}
	untilSec := time.Duration((sec+1)*int64(time.Second) - ns)
	untilMin := time.Duration((min+1)*int64(time.Minute) - ns)
	res := rateResult{limit: l.SteadyPerMin, reset: ceilSeconds(untilMin)}
	switch {
	case l.SteadyPerMin > 0 && w.minCount >= l.SteadyPerMin:
		res.retryAfter = ceilSeconds(untilMin)
		return res
	case l.BurstPerSecond > 0 && w.secCount >= l.BurstPerSecond:
		res.retryAfter = ceilSeconds(untilSec)
		return res
	}
	w.secCount++
	w.minCount++
	res.allowed = true
	res.remaining = max(l.SteadyPerMin-w.minCount, 0)
	return res
}

// ceilSeconds rounds up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int {
	n := int((d + time.Second - 1) / time.Second)
	return max(n, 1)
}

func itoa(n int) string { return strconv.Itoa(n) }
