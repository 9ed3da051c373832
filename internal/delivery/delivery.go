// Package delivery owns the life cycle of a queued event after ingest,
// for every destination alike: it claims jobs from the queue, decodes
// them, turns off the ones the event's integrations exclude, runs the
// per-destination stages, hands the rest to the destination's Sink
// (internal/destination), keeps the jobs a sink holds for the next batch
// (still leased), retries what can succeed later (backoff with jitter, no
// sooner than Retry-After) until MaxRetryAge, dead-letters what cannot,
// records every event's fate in the delivery log and counts outcomes by
// destination. What a request looks like is the sink's business.
//
// Ordering: the queue never hands out a job while an earlier job of the same
// key is unfinished; a sink keeps the order of one key's jobs within a batch
// when its destination needs it (Klaviyo's does, see internal/klaviyo/kdest).
package delivery

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

// Queue is what delivery needs from the durable queue.
type Queue interface {
	Claim(ctx context.Context, dest string, limit int, lease time.Duration) ([]queue.Job, error)
	Succeed(ctx context.Context, ids []int64) error
	Retry(ctx context.Context, ids []int64, at time.Time, reason string) error
	Abort(ctx context.Context, ids []int64, reason string) error
}

// Log records events' fates; the store is one.
type Log interface {
	Record(ctx context.Context, entries []store.LogEntry) error
	AddDeadLetters(ctx context.Context, dls []store.DeadLetter) error
}

// Config tunes one destination's delivery.
type Config struct {
	// Dest is the destination's name (the queue's dest column).
	Dest string
	// Title is the destination type's name as SDK users write it in an
	// event's integrations map ("Klaviyo", "Webhook"); the configured
	// name (Dest) counts too.
	Title string
	// Sink delivers the jobs (required).
	Sink destination.Sink
	// Stages run on every job before the sink, in order (privacy rules,
	// transformations, skips); a stage may settle a job itself.
	Stages []destination.Stage
	// PreSink, when set, runs on every event after the stages: the
	// destination's transformation, filter and privacy policy
	// (internal/presink). An error dead-letters the event; what the
	// policy dropped goes to the delivery log.
	PreSink func(ctx context.Context, source string, ev *spec.Event) (PreSinkResult, error)
	// PhoneRegion, when set, reads national phone numbers for the
	// delivery log's phone column (Klaviyo's defaultPhoneCountry), as
	// user deletion reads them.
	PhoneRegion func() string
	// Audit, when set, records which keys each delivered event sent and
	// which the policy dropped (the store's audit log).
	Audit func(ctx context.Context, entries []store.AuditEntry) error
	// Waiting, when set and returning a reason, keeps the worker from
	// claiming: the destination cannot send anything yet (no API key), so
	// jobs wait in the queue instead of spending their retry age.
	Waiting func() string
	// ClaimLimit is how many jobs one claim takes (default 2,000). Claims
	// run in the queue's single writer, beside ingest's commits, so a
	// large claim stalls ingest; bulk requests are kept full by holding a
	// batch's partial last request for the next one instead (holdPartial).
	ClaimLimit int
	// Lease is how long a claim is held before the queue hands the jobs
	// out again (default 10 minutes; far above a batch's worst case).
	Lease time.Duration
	// BatchWait is how long a worker waits for more jobs when a claim came
	// back less than full, so small trickles still fill bulk requests.
	BatchWait time.Duration
	// Idle is the pause after an empty claim (default 100 ms).
	Idle time.Duration
	// MaxRetryAge is how long retryable failures (5xx, 429, timeouts) keep
	// being retried before the event is dead-lettered (default 24 h): a
	// Klaviyo outage of hours loses nothing and needs no replay.
	MaxRetryAge time.Duration
	// RetryBase and RetryMax bound the exponential backoff between
	// attempts (defaults 1 s and 5 min), with full jitter.
	RetryBase, RetryMax time.Duration
	// CPU, when set, is the share of the cores decoding takes after
	// ingest's parsing (internal/cpubudget): delivery is paced by the
	// destination's rate limits, an SDK request waits on ingest. Sinks
	// get the same share through their destination.Env.
	CPU destination.CPU
}

func (c *Config) applyDefaults() {
	if c.ClaimLimit <= 0 {
		c.ClaimLimit = 2000
	}
	if c.Lease <= 0 {
		c.Lease = 10 * time.Minute
	}
	if c.Idle <= 0 {
		c.Idle = 100 * time.Millisecond
	}
	if c.MaxRetryAge <= 0 {
		c.MaxRetryAge = 24 * time.Hour
	}
	if c.RetryBase <= 0 {
		c.RetryBase = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
}

// Worker delivers one destination's jobs. Several workers may run for one
// destination; the queue gives each disjoint jobs.
type Worker struct {
	cfg     Config
	q       Queue
	log     Log
	slog    *slog.Logger
	metrics *Metrics
	now     func() time.Time
	// carry are claimed jobs the sink held over to the next batch (to fill
	// its bulk requests, say). They stay leased meanwhile, so nothing of
	// theirs is lost if the process dies.
	carry []queue.Job
}

// New builds a worker. metrics may be nil.
func New(cfg Config, q Queue, l Log, log *slog.Logger, m *Metrics) *Worker {
	cfg.applyDefaults()
	return &Worker{cfg: cfg, q: q, log: l, slog: log.With(slog.String("dest", cfg.Dest)), metrics: m, now: time.Now}
}

// Run claims and delivers until ctx is cancelled. Errors of the queue or
// log are logged and retried after a pause: delivery never stops by itself.
func (w *Worker) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.slog.Error("delivery batch", slog.Any("err", err))
			sleep(ctx, time.Second)
			continue
		}
		if n == 0 {
			sleep(ctx, w.cfg.Idle)
		}
	}
	return nil
}

// RunOnce claims one batch and delivers it, returning how many jobs it
// settled.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	if w.cfg.Waiting != nil && w.cfg.Waiting() != "" {
		return 0, nil
	}
	claimed, err := w.claim(ctx, w.cfg.ClaimLimit-len(w.carry))
	if err != nil && len(w.carry) == 0 {
		return 0, err
	}
	jobs := append(w.carry, claimed...)
	carried := len(w.carry)
	w.carry = nil
	if len(jobs) == 0 {
		return 0, nil
	}
	b := w.newBatch(ctx, jobs)
	w.carry = b.deliver(ctx, carried)
	// Finish with a context that outlives a shutdown signal: the requests
	// were sent, so their outcome must be recorded (else the lease expires
	// and they are sent again — harmless thanks to unique ids, but noisy).
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return len(jobs) - len(w.carry), b.finish(fctx)
}

func (w *Worker) claim(ctx context.Context, limit int) ([]queue.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	jobs, err := w.q.Claim(ctx, w.cfg.Dest, limit, w.cfg.Lease)
	if err != nil || len(jobs) == 0 || len(jobs) >= limit || w.cfg.BatchWait <= 0 {
		return jobs, err
	}
	// A small claim: give the trickle a moment to fill a bulk request.
	sleep(ctx, w.cfg.BatchWait)
	more, err := w.q.Claim(ctx, w.cfg.Dest, limit-len(jobs), w.cfg.Lease)
	if err != nil {
		// The first claim stands; its leases are ours.
		w.slog.Warn("second claim", slog.Any("err", err))
		return jobs, nil
	}
	return append(jobs, more...), nil
}

// backoff is the wait before attempt n+1 (n ≥ 1): exponential with full
// jitter, so many failed events do not come back in one burst.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.cfg.RetryBase
	for i := 1; i < attempts && d < w.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.cfg.RetryMax)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
