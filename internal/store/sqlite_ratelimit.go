package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/relaycdp/relay/internal/ratelimit"
)

// SQLiteRateLimiter is ratelimit.Limiter in the embedded store: one rate_bucket
// row per (API key hash, endpoint) holding a ratelimit.BucketState. On one node
// it is what carries Klaviyo's Retry-After and the spent part of the
// current windows across a restart or a crash: a relay that comes back
// after kill -9 does not send to an endpoint Klaviyo throttled the previous
// process on, nor spend a window's budget twice. Only the hash of an API
// key is stored.
type SQLiteRateLimiter struct{ s *SQLite }

var _ ratelimit.Limiter = (*SQLiteRateLimiter)(nil)

// RateLimiter returns the limiter kept in this database.
func (s *SQLite) RateLimiter() *SQLiteRateLimiter { return &SQLiteRateLimiter{s: s} }

// update applies fn to b's state in one write transaction.
func (r *SQLiteRateLimiter) update(ctx context.Context, b ratelimit.Bucket, fn func(st *ratelimit.BucketState)) error {
	return r.s.inTx(ctx, func(tx *sql.Tx) error {
		var raw string
		err := tx.QueryRowContext(ctx, `SELECT state FROM rate_bucket WHERE key_hash = ? AND endpoint = ?`, b.KeyHash, b.Endpoint).Scan(&raw)
		var st ratelimit.BucketState
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal([]byte(raw), &st); err != nil {
				return fmt.Errorf("rate bucket state: %w", err)
			}
		}
		fn(&st)
		out, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO rate_bucket (key_hash, endpoint, state) VALUES (?, ?, ?)
ON CONFLICT (key_hash, endpoint) DO UPDATE SET state = excluded.state`, b.KeyHash, b.Endpoint, string(out))
		return err
	})
}

func (r *SQLiteRateLimiter) read(ctx context.Context, b ratelimit.Bucket) (ratelimit.BucketState, error) {
	var raw string
	var st ratelimit.BucketState
	err := r.s.r.QueryRowContext(ctx, `SELECT state FROM rate_bucket WHERE key_hash = ? AND endpoint = ?`, b.KeyHash, b.Endpoint).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(raw), &st)
}

// Reserve implements ratelimit.Limiter.
func (r *SQLiteRateLimiter) Reserve(ctx context.Context, b ratelimit.Bucket, now, deadline time.Time) (time.Time, bool, error) {
	var (
		slot time.Time
		ok   bool
	)
	err := r.update(ctx, b, func(st *ratelimit.BucketState) { slot, ok = st.Reserve(b, now, deadline) })
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reserve rate limit slot of %s: %w", b.Endpoint, err)
	}
	return slot, ok, nil
}

// BlockedUntil implements ratelimit.Limiter (a plain read).
func (r *SQLiteRateLimiter) BlockedUntil(ctx context.Context, b ratelimit.Bucket) (time.Time, error) {
	st, err := r.read(ctx, b)
	if err != nil {
		return time.Time{}, fmt.Errorf("read rate limit block of %s: %w", b.Endpoint, err)
	}
	if st.Until == 0 {
		return time.Time{}, nil
	}
	return time.Unix(0, st.Until), nil
}

// Block implements ratelimit.Limiter.
func (r *SQLiteRateLimiter) Block(ctx context.Context, b ratelimit.Bucket, now time.Time, ra, def time.Duration) (time.Time, error) {
	var until time.Time
	err := r.update(ctx, b, func(st *ratelimit.BucketState) { until = st.Block(b, now, ra, def) })
	if err != nil {
		return time.Time{}, fmt.Errorf("record 429 of %s: %w", b.Endpoint, err)
	}
	return until, nil
}

// Succeeded implements ratelimit.Limiter. It writes only when a streak of 429s
// is recorded, so successes cost one read.
func (r *SQLiteRateLimiter) Succeeded(ctx context.Context, b ratelimit.Bucket) error {
	st, err := r.read(ctx, b)
	if err != nil || st.Streak == 0 {
		return err
	}
	return r.update(ctx, b, func(st *ratelimit.BucketState) { st.Succeeded() })
}
