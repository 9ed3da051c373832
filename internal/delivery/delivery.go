// Package delivery owns getting queued events to Klaviyo: it claims jobs
// from the queue, maps each event to Klaviyo operations with the
// destination's current settings, batches the operations of many events
// into Klaviyo's bulk endpoints, isolates the items Klaviyo rejects, retries
// what can succeed later, dead-letters what cannot, and records every
// event's fate in the delivery log.
//
// Ordering: the queue never hands out a job while an earlier job of the same
// key is unfinished, and within one claim a worker sends a key's profile and
// subscription changes in the order they were received (see rounds.go), so
// one profile's state changes apply in order.
package delivery

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
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

// Sender sends calls to Klaviyo; *kapi.Client is one.
type Sender interface {
	Do(ctx context.Context, apiKey string, req klaviyo.Request) (*kapi.Response, error)
	GetProfileImportJob(ctx context.Context, apiKey, jobID string) (*kapi.ImportJob, error)
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
	// Settings returns the destination's current settings; it is called
	// once per claimed batch so a change in the console applies to the
	// next batch.
	Settings func() klaviyo.Settings
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
	// ImportJobTimeout is how long to wait for a profile bulk import job to
	// finish so its per-item errors can be attributed (default 2 min).
	ImportJobTimeout time.Duration
	// Concurrency is how many Klaviyo requests one batch sends at once
	// (default 8); the client's rate limiter paces them per endpoint.
	Concurrency int
	// PreSink, when set, runs on every event before it is mapped (the
	// destination's transformation, filter and privacy policy:
	// internal/presink). An error dead-letters the event.
	PreSink func(ctx context.Context, s klaviyo.Settings, source string, ev *spec.Event) (PreSinkResult, error)
	// Audit, when set, records which keys each delivered event sent and
	// which the policy dropped (the store's audit log).
	Audit func(ctx context.Context, entries []store.AuditEntry) error
	// CPU, when set, is the share of the cores mapping takes after
	// ingest's parsing (internal/cpubudget): delivery is paced by
	// Klaviyo's rate limits, an SDK request waits on ingest.
	CPU CPU
}

// CPU is a share of the cores taken after foreground work;
// *cpubudget.Budget is one.
type CPU interface {
	Background(ctx context.Context) error
	Release()
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
	if c.ImportJobTimeout <= 0 {
		c.ImportJobTimeout = 2 * time.Minute
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
}

// Worker delivers one destination's jobs. Several workers may run for one
// destination; the queue gives each disjoint jobs.
type Worker struct {
	cfg     Config
	q       Queue
	send    Sender
	log     Log
	slog    *slog.Logger
	metrics *Metrics
	now     func() time.Time
	// carry are claimed jobs held over to the next batch to fill its bulk
	// requests (see batch.holdPartial). They stay leased meanwhile, so
	// nothing of theirs is lost if the process dies.
	carry []queue.Job
}

// New builds a worker. metrics may be nil.
func New(cfg Config, q Queue, send Sender, l Log, log *slog.Logger, m *Metrics) *Worker {
	cfg.applyDefaults()
	return &Worker{cfg: cfg, q: q, send: send, log: l, slog: log.With(slog.String("dest", cfg.Dest)), metrics: m, now: time.Now}
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
	if s := w.cfg.Settings(); s.PrivateAPIKey == "" && s.PublicAPIKey == "" {
		// No key at all: nothing can be sent. The jobs stay queued,
		// unclaimed (not retried toward maxRetryAge), until a key is
		// saved; the app and the console say what is missing.
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
	w.carry = b.holdPartial(carried)
	b.deliver(ctx)
	b.polls.Wait()
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
