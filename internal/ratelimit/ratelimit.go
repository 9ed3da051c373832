// Package ratelimit owns the shared, destination-neutral rate-limit state:
// the Limiter interface a client uses to keep its per-(key, endpoint)
// token buckets and 429 blocks where several processes share them (the
// store implements it on SQLite and PostgreSQL), and the arithmetic on that
// state (BucketState), so only where the state lives differs between the
// in-memory and the shared limiter.
package ratelimit

import (
	"context"
	"math"
	"time"
)

// Limit is one endpoint's request budget: a burst window of one second and
// a steady window of one minute.
type Limit struct {
	BurstPerSecond int
	SteadyPerMin   int
}

// Limiter keeps the rate-limit state of each (API key, endpoint) somewhere
// several processes share, so that together they stay within the destination's
// limits and all honour a Retry-After any of them received. A client
// (kapi.Config.Limiter) plugs one in; without it each client keeps the
// state in memory.
//
// An implementation stores one BucketState per Bucket and applies its
// methods atomically (load, call, store under a lock or compare-and-set):
// the rate-limit arithmetic is BucketState's, the same as the in-memory
// limiter's, so only where the state lives differs.
type Limiter interface {
	// Reserve runs BucketState.Reserve on b's state.
	Reserve(ctx context.Context, b Bucket, now, deadline time.Time) (slot time.Time, ok bool, err error)
	// BlockedUntil returns the end of b's 429 block (BucketState.Until).
	BlockedUntil(ctx context.Context, b Bucket) (time.Time, error)
	// Block runs BucketState.Block on b's state.
	Block(ctx context.Context, b Bucket, now time.Time, retryAfter, def time.Duration) (until time.Time, err error)
	// Succeeded runs BucketState.Succeeded on b's state.
	Succeeded(ctx context.Context, b Bucket) error
}

// Bucket names one shared rate-limit state and carries its limits.
type Bucket struct {
	// KeyHash is the hex SHA-256 of the API key (or company id): the key
	// itself never leaves the client.
	KeyHash  string
	Endpoint string // "METHOD /path-template"
	Limit    Limit
	// Burst, Steady and Margin are the window lengths and safety margin
	// (Klaviyo's 1 s and 60 s, plus the client's margin).
	Burst, Steady, Margin time.Duration
}

// BucketState is the serialisable state of one Bucket: the two token
// buckets of the in-memory limiter (sized the same way, see kapi.newBucket),
// the latest slot handed out, the 429 block and the streak of 429s without
// a Retry-After. The zero value is a fresh bucket. Times are Unix
// nanoseconds.
type BucketState struct {
	Tokens [2]float64 `json:"tokens"`
	At     [2]int64   `json:"at"`
	Init   bool       `json:"init"`
	Last   int64      `json:"last"`
	Until  int64      `json:"until"`
	Streak int        `json:"streak"`
}

// params returns limiter i's size and refill rate per second, as kapi.newBucket
// sizes the in-memory limiters.
func (b Bucket) params(i int) (size, perSec float64) {
	nb := (b.Limit.BurstPerSecond + 1) / 2
	limit, n, window := b.Limit.BurstPerSecond, nb, b.Burst+b.Margin
	if i == 1 {
		limit, n, window = b.Limit.SteadyPerMin, max(1, min(nb, b.Limit.SteadyPerMin/10)), b.Steady+b.Margin
	}
	return float64(n), float64(limit-n+1) / window.Seconds()
}

func (s *BucketState) tokensAt(b Bucket, i int, t int64) float64 {
	size, r := b.params(i)
	if !s.Init {
		return size
	}
	dt := float64(t-s.At[i]) / 1e9
	if dt < 0 {
		dt = 0
	}
	return math.Min(size, s.Tokens[i]+dt*r)
}

// Reserve hands out the next send slot at or after now: the earliest time
// not before the previous slot or the 429 block at which both token
// buckets have a token. If that is after deadline (when non-zero), nothing
// is taken and ok is false.
func (s *BucketState) Reserve(b Bucket, now, deadline time.Time) (time.Time, bool) {
	t := now.UnixNano()
	t = max(t, s.Last, s.Until)
	for range 4 { // one pass suffices; the loop absorbs float rounding
		ready := true
		for i := range 2 {
			if tok := s.tokensAt(b, i, t); tok < 1 {
				ready = false
				_, r := b.params(i)
				t += int64(math.Ceil((1-tok)/r*1e9)) + int64(time.Microsecond)
			}
		}
		if ready {
			break
		}
	}
	slot := time.Unix(0, t)
	if !deadline.IsZero() && slot.After(deadline) {
		return slot, false
	}
	for i := range 2 {
		s.Tokens[i] = s.tokensAt(b, i, t) - 1
		s.At[i] = t
	}
	s.Init, s.Last = true, t
	return slot, true
}

// Block records a 429 received at now, as the in-memory limiter does: ra
// is the server's Retry-After, or ≤0 without one (then def, doubled per
// such 429 in a row, capped at one steady window). The block only extends.
func (s *BucketState) Block(b Bucket, now time.Time, ra, def time.Duration) time.Time {
	if ra <= 0 {
		ra = min(def<<min(s.Streak, 16), b.Steady)
		s.Streak++
	} else {
		s.Streak = 0
	}
	s.Until = max(s.Until, now.Add(ra).UnixNano())
	return time.Unix(0, s.Until)
}

// Succeeded resets the missing-Retry-After streak.
func (s *BucketState) Succeeded() { s.Streak = 0 }
