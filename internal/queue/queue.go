// Package queue owns the durable log between ingest and delivery: jobs
// appended by the gateway (committed before the SDK gets its 200), claimed by
// delivery, and moved through explicit states until they succeed or are
// dead-lettered. SQLite (WAL, group commit) is the embedded implementation.
package queue

import (
	"context"
	"time"
)

// Message is one normalised event for one destination, as the gateway
// enqueues it.
type Message struct {
	Source     string    // source name
	Dest       string    // destination name
	Key        string    // ordering key: jobs with one Key are delivered in order
	MessageID  string    // the event's messageId (searchable in the console)
	Payload    []byte    // spec.Event as JSON
	ReceivedAt time.Time // when the gateway received it
}

// Job is a claimed message.
type Job struct {
	ID int64
	Message
	Attempts  int    // deliveries tried before this claim
	LastError string // the error of the previous attempt
}

// State is a job's place in its life cycle.
type State string

// Job states: pending → executing → succeeded | failed (waits for RetryAt,
// then is pending again) | aborted (dead-lettered).
const (
	StatePending   State = "pending"
	StateExecuting State = "executing"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateAborted   State = "aborted"
)

// Stats describes the queue for metrics and the console.
type Stats struct {
	Depth     int64         // jobs not yet succeeded or aborted
	OldestAge time.Duration // age of the oldest such job
	Executing int64
	Failed    int64 // waiting for a retry
	Aborted   int64
	ByDest    map[string]int64
}

// Queue is the durable log. Implementations are safe for concurrent use.
type Queue interface {
	// Enqueue returns once every message is durable (group commit: many
	// concurrent callers share one transaction and one fsync).
	Enqueue(ctx context.Context, msgs []Message) error
	// Claim moves up to limit due jobs of dest to executing, oldest first,
	// never returning a job whose Key has an earlier job still unfinished
	// (executing, or failed waiting for a retry), so one profile's events
	// are delivered in order. A claim not finished within lease returns to
	// pending (a crashed worker loses nothing).
	Claim(ctx context.Context, dest string, limit int, lease time.Duration) ([]Job, error)
	// Succeed, Retry and Abort finish claimed jobs.
	Succeed(ctx context.Context, ids []int64) error
	Retry(ctx context.Context, ids []int64, at time.Time, reason string) error
	Abort(ctx context.Context, ids []int64, reason string) error
	Stats(ctx context.Context) (Stats, error)
	Close() error
}
