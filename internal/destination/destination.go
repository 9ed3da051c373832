// Package destination is the seam between delivery's generic life cycle
// and the destinations events go to. It owns the contract a destination
// implements (Sink: deliver a batch of claimed jobs, one Result per job),
// the description of a destination type (Type: settings parsing and their
// field table, the sink, the connection test, the event tester's mapping)
// and the Registry that config, app and console look types up in.
//
// Delivery (internal/delivery) claims, carries over, retries by age and
// Retry-After, dead-letters, logs and counts; a destination only says what
// happened to each job it was handed.
package destination

import (
	"context"
	"time"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
)

// Job is one claimed job as a sink sees it: the queue's job and its
// decoded event (after every pre-sink stage ran on it).
type Job struct {
	queue.Job
	Event *spec.Event
	// Events, when not nil, are delivered in Event's place: what the
	// destination's user transformation made of it (none, one changed
	// copy, or several). Event stays the received one, for the log.
	Events []spec.Event
}

// Outcome is what happened to one job.
type Outcome int

const (
	// Delivered: the destination accepted everything the job carried.
	Delivered Outcome = iota
	// Skipped: nothing to send (filtered, a type the settings drop);
	// Detail says why.
	Skipped
	// Retry: a failure that can succeed later (5xx, 429, timeouts);
	// delivery retries with backoff, no sooner than RetryAfter, and
	// dead-letters once the job is older than its MaxRetryAge.
	Retry
	// Dead: a failure that cannot succeed (bad data, a rejected item);
	// the job goes to the dead letters with Status, Code, Detail, Pointer.
	Dead
	// Held: not attempted; hand the job back in the next batch (it stays
	// leased meanwhile). A sink may hold only jobs not carried over already
	// (Batch.Carried), so no job waits more than one batch.
	Held
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Skipped:
		return "skipped"
	case Retry:
		return "retry"
	case Dead:
		return "dead"
	case Held:
		return "held"
	}
	return "unknown"
}

// Result is one job's outcome with the destination's words for it.
type Result struct {
	Outcome Outcome
	// Status is the destination's HTTP status, 0 without a response.
	Status int
	// Code is the destination's error code, or Relay's (mapping_error…).
	Code string
	// Detail is a sentence for the delivery log and the dead letter.
	Detail string
	// Pointer names the offending part of the request or event, when known.
	Pointer string
	// RetryAfter is the least wait before the next attempt (Retry-After).
	RetryAfter time.Duration
}

// Batch is what delivery hands a sink: jobs in queue order.
type Batch struct {
	Jobs []Job
	// Carried counts the first jobs, held over from the previous batch;
	// they must not be held again.
	Carried int
}

// Sink delivers batches to one configured destination. Deliver returns
// exactly one Result per job, in order; it must not return before every
// request it started has ended (delivery settles the jobs right after).
// Deliver is called by one worker at a time per Sink value, but several
// workers may share one Sink.
type Sink interface {
	Deliver(ctx context.Context, b Batch) []Result
}

// Stage runs on each job before the sink, in order (privacy rules,
// transformations, device-mode skips): it may change job.Event, or settle
// the job without the sink by returning a non-nil Result.
type Stage interface {
	Apply(ctx context.Context, job *Job) *Result
}

// StageFunc adapts a function to Stage.
type StageFunc func(ctx context.Context, job *Job) *Result

// Apply calls f.
func (f StageFunc) Apply(ctx context.Context, job *Job) *Result { return f(ctx, job) }

// CPU is a share of the cores taken after foreground work (ingest);
// *cpubudget.Budget is one. Sinks that do heavy mapping take it per chunk.
type CPU interface {
	Background(ctx context.Context) error
	Release()
}
