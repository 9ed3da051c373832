// Package queue owns the durable log between ingest and delivery: jobs
// appended by the gateway (committed before the SDK gets its 200), claimed by
// delivery, and moved through explicit states until they succeed or are
// dead-lettered. SQLite (WAL, group commit) is the embedded implementation.
package queue

import (
	"context"
	"errors"
	"time"
)

// ErrClosed is returned by every method of a closed queue.
var ErrClosed = errors.New("queue closed")

// ErrInvalid marks a call rejected for a bad argument; the wrapping error
// names the argument and why.
var ErrInvalid = errors.New("invalid argument")

// ErrNotFound is returned by lookups of a job that does not exist (never
// enqueued, or succeeded and therefore deleted, or purged).
var ErrNotFound = errors.New("job not found")

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
	// Attempts counts deliveries tried before this claim: each Retry and
	// Abort adds one, and so does a claim whose lease expired unfinished
	// (the worker died or hung; LastError then says "lease expired"), so a
	// message that crashes its worker cannot loop forever unnoticed.
	Attempts  int
	LastError string // the error of the previous attempt
}

// JobInfo is a job with its state, for the console and tests.
type JobInfo struct {
	Job
	State      State
	RetryAt    time.Time // when a failed job is due again; zero otherwise
	LeaseUntil time.Time // when an executing job's claim expires; zero otherwise
	UpdatedAt  time.Time // last state change
}

// State is a job's place in its life cycle.
type State string

// Job states: pending → executing → failed (waits for RetryAt, then is
// pending again) or gone (Succeed, Abort).
const (
	StatePending   State = "pending"
	StateExecuting State = "executing"
	StateFailed    State = "failed"
)

// Stats describes the queue for metrics and the console.
type Stats struct {
	Depth     int64         // jobs not yet succeeded or aborted
	OldestAge time.Duration // age of the oldest such job
	Pending   int64         // waiting for their first claim
	Executing int64
	Failed    int64            // waiting for a retry
	ByDest    map[string]int64 // Depth per destination
}

// Dropped is what Drop did.
type Dropped struct {
	Dropped  int // jobs deleted
	InFlight int // matching jobs executing: not deleted
}

// Queue is the durable log. Implementations are safe for concurrent use.
// queuetest.RunConformance is the executable form of this contract.
type Queue interface {
	// Enqueue returns once every message is durable (group commit: many
	// concurrent callers share one transaction and one fsync). The messages
	// of one call are stored atomically, in slice order. An error means
	// none was stored — except a context error, after which they may or may
	// not have been. Once it returned nil it keeps no reference to msgs or
	// their payloads (the gateway reuses the buffers).
	Enqueue(ctx context.Context, msgs []Message) error
	// Claim moves up to limit due jobs of dest to executing, oldest first,
	// never returning a job whose Key has an earlier job still unfinished
	// (executing, failed waiting for a retry, or pending but not returned
	// by this same claim), so one profile's events are delivered in order;
	// an empty Key has no order. Due means pending, failed with its retry
	// time reached, or executing with an expired lease: a claim not
	// finished within lease is claimable again (a crashed worker loses
	// nothing; Job.Attempts counts the lost attempt).
	Claim(ctx context.Context, dest string, limit int, lease time.Duration) ([]Job, error)
	// Succeed, Retry and Abort finish claimed (executing) jobs; ids in any
	// other state are ignored, so a repeated or late ack is harmless.
	// Retry makes the jobs claimable again from at, adding one to Attempts
	// and recording reason as LastError.
	//
	// Abort is for jobs the caller has dead-lettered: dead letters live in
	// the store (with their payload and reason), not in the queue, so
	// Abort makes the queue forget the jobs and their payloads as Succeed
	// does. They leave Depth, are never claimed again (not after a lease
	// or a reopen either) and take no storage; reason is for the
	// implementation's log only. The caller writes the dead letter first:
	// a crash in between delivers the job again rather than losing it.
	Succeed(ctx context.Context, ids []int64) error
	Retry(ctx context.Context, ids []int64, at time.Time, reason string) error
	Abort(ctx context.Context, ids []int64, reason string) error
	Stats(ctx context.Context) (Stats, error)
	// Drop deletes dest's undelivered jobs (pending, or failed waiting for
	// a retry) whose message match selects — user deletion: a queued
	// event would re-create the profile it was sent to delete. Executing
	// jobs cannot be taken back from their worker; they are counted in
	// Dropped.InFlight, and the caller drops again once they finished.
	// Aborted jobs are dead letters, which the store owns. match must not
	// keep the message or its payload.
	Drop(ctx context.Context, dest string, match func(Message) bool) (Dropped, error)
	// Close commits what was already submitted and releases the storage.
	// Later calls of any method return ErrClosed; Close itself may be
	// called again.
	Close() error
}
