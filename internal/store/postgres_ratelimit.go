package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relaycdp/relay/internal/ratelimit"
)

// RateLimiter is ratelimit.Limiter on PostgreSQL: one rate_bucket row per (API
// key hash, endpoint) holding a ratelimit.BucketState, read and written under
// the row's lock (SELECT … FOR UPDATE), so the nodes sharing the database
// share each key's budget and every 429's block. Only the hash of an API
// key is stored.
type RateLimiter struct{ s *Postgres }

var _ ratelimit.Limiter = (*RateLimiter)(nil)

// RateLimiter returns the limiter kept in this database.
func (s *Postgres) RateLimiter() *RateLimiter { return &RateLimiter{s: s} }

// update applies fn to b's state in one transaction.
func (r *RateLimiter) update(ctx context.Context, b ratelimit.Bucket, fn func(st *ratelimit.BucketState)) error {
	return r.s.inTx(ctx, func(tx pgx.Tx) error {
		var raw []byte
		err := tx.QueryRow(ctx, `SELECT state FROM rate_bucket WHERE key_hash = $1 AND endpoint = $2 FOR UPDATE`,
			b.KeyHash, b.Endpoint).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			// First use: create the row (or find another node's) and lock it.
			if _, err := tx.Exec(ctx, `INSERT INTO rate_bucket (key_hash, endpoint, state) VALUES ($1, $2, '{}')
ON CONFLICT DO NOTHING`, b.KeyHash, b.Endpoint); err != nil {
				return err
			}
			err = tx.QueryRow(ctx, `SELECT state FROM rate_bucket WHERE key_hash = $1 AND endpoint = $2 FOR UPDATE`,
				b.KeyHash, b.Endpoint).Scan(&raw)
		}
		if err != nil {
			return err
		}
		var st ratelimit.BucketState
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("rate bucket state: %w", err)
		}
		fn(&st)
		out, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE rate_bucket SET state = $3 WHERE key_hash = $1 AND endpoint = $2`, b.KeyHash, b.Endpoint, out)
		return err
	})
}

// Reserve implements ratelimit.Limiter.
func (r *RateLimiter) Reserve(ctx context.Context, b ratelimit.Bucket, now, deadline time.Time) (time.Time, bool, error) {
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
func (r *RateLimiter) BlockedUntil(ctx context.Context, b ratelimit.Bucket) (time.Time, error) {
	var until *int64
	err := r.s.pool.QueryRow(ctx, `SELECT (state->>'until')::bigint FROM rate_bucket WHERE key_hash = $1 AND endpoint = $2`,
		b.KeyHash, b.Endpoint).Scan(&until)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && until == nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read rate limit block of %s: %w", b.Endpoint, err)
	}
	return time.Unix(0, *until), nil
}

// Block implements ratelimit.Limiter.
func (r *RateLimiter) Block(ctx context.Context, b ratelimit.Bucket, now time.Time, ra, def time.Duration) (time.Time, error) {
	var until time.Time
	err := r.update(ctx, b, func(st *ratelimit.BucketState) { until = st.Block(b, now, ra, def) })
	if err != nil {
		return time.Time{}, fmt.Errorf("record 429 of %s: %w", b.Endpoint, err)
	}
	return until, nil
}

// Succeeded implements ratelimit.Limiter. It writes only when a streak is
// recorded, so successes cost one read.
func (r *RateLimiter) Succeeded(ctx context.Context, b ratelimit.Bucket) error {
	_, err := r.s.pool.Exec(ctx, `UPDATE rate_bucket SET state = jsonb_set(state, '{streak}', '0')
WHERE key_hash = $1 AND endpoint = $2 AND COALESCE((state->>'streak')::int, 0) <> 0`, b.KeyHash, b.Endpoint)
	if err != nil {
		return fmt.Errorf("reset 429 streak of %s: %w", b.Endpoint, err)
	}
	return nil
}
