// Package kapi owns Relay's HTTP client for Klaviyo's JSON:API (or the
// simulator): authentication and revision headers, per-(API key, endpoint)
// rate limiting from the spec's limits, honouring 429 Retry-After for every
// caller of the client, in-call retries of transient failures, the single
// retryable/throttled/permanent classification, and decoding of Klaviyo's
// error documents.
//
// # Rate limits
//
// Klaviyo enforces two fixed windows per endpoint and account: a burst
// window (N per second) and a steady window (M per minute). A plain token
// bucket of N per second with burst N lets up to 2N−1 requests through in
// one second (a full bucket plus a second's refill), and the same holds for
// the minute, so the two limiters here are sized so that no window of length
// W+margin can see more than the limit: for a limit L over window W a
// bucket of size b refills at (L−b+1)/(W+margin). See newBucket.
//
// # Lock order
//
// Client.mu (bucket map) → bucket.mu. bucket.mu is never held across I/O or
// a sleep, and rate.Limiter's own lock is only taken under bucket.mu.
package kapi
