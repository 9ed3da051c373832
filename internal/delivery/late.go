package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/store"
)

// NewLate returns destination.Env.Late for the destination cfg.Dest: it
// records outcomes a sink learns after delivery settled the jobs, when the
// destination only says later what it made of them (Klaviyo validates a
// profile import job's items after accepting the job). A Dead result
// dead-letters the job's event, with its payload so it can be replayed
// once fixed, and marks it dead in the delivery log (dead outranks
// delivered there). Other outcomes change nothing: the job has left the
// queue, and what was delivered stays delivered. A job without its
// Event is described from its payload. m may be nil.
func NewLate(cfg Config, l Log, m *Metrics) func(ctx context.Context, jobs []destination.Job, results []destination.Result) error {
	w := &Worker{cfg: cfg, log: l, metrics: m, now: time.Now}
	return func(ctx context.Context, jobs []destination.Job, results []destination.Result) error {
		if len(jobs) != len(results) {
			return fmt.Errorf("late results of %s: %d jobs, %d results", cfg.Dest, len(jobs), len(results))
		}
		return w.late(ctx, jobs, results)
	}
}

func (w *Worker) late(ctx context.Context, jobs []destination.Job, results []destination.Result) error {
	now := w.now()
	b := &batch{w: w}
	var (
		dls     []store.DeadLetter
		entries []store.LogEntry
	)
	for i, j := range jobs {
		r := results[i]
		if r.Outcome != destination.Dead {
			continue
		}
		it := &item{job: j.Job, res: &r}
		if j.Event != nil {
			it.ev = *j.Event
		} else {
			// A sink that kept only the payload: the log's fields come
			// from it (a payload delivery accepted decodes).
			_ = json.Unmarshal(j.Payload, &it.ev)
		}
		e := b.logEntry(it, now)
		e.Status, e.Detail = store.StatusDead, describe(&r)
		dls = append(dls, b.deadLetter(it, &r))
		entries = append(entries, e)
		w.metrics.outcome(w.cfg.Dest, store.StatusDead, now.Sub(it.job.ReceivedAt))
	}
	if len(entries) == 0 {
		return nil
	}
	var errs []error
	if err := w.log.AddDeadLetters(ctx, dls); err != nil {
		errs = append(errs, fmt.Errorf("store late dead letters: %w", err))
	}
	if err := w.log.Record(ctx, entries); err != nil {
		errs = append(errs, fmt.Errorf("record late outcomes: %w", err))
	}
	return errors.Join(errs...)
}
