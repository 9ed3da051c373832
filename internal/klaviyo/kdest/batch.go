package kdest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
)

// item is one claimed job on its way through a batch.
type item struct {
	job queue.Job
	ev  *spec.Event
	// events, when set, replace ev: what a pre-sink stage (a user
	// transformation) made of it (destination.Job.Events).
	events  []spec.Event
	ops     []klaviyo.Op
	skipped string
	// partsFailed are parts of the event the mapping could not send while
	// the rest went (an order's product without an id): delivered, with
	// each failed part named in the delivery log.
	partsFailed []*klaviyo.MapError
	// held: carried to the next batch unsent (holdPartial).
	held bool
	// Outcome, written under batch.mu: the first permanent and the first
	// retryable failure of any of the item's operations, and how many
	// operations Klaviyo accepted.
	permanent *failure
	retry     *failure
	delivered int
}

// failure is why an operation did not succeed, as Klaviyo (or Relay) said.
type failure struct {
	status  int    // Klaviyo's HTTP status; 0 without a response
	code    string // Klaviyo's error code, or Relay's (mapping) code
	pointer string // Klaviyo's source.pointer, when it named one
	detail  string // a sentence for the log and dead letter
}

// ref names one operation of one item.
type ref struct{ item, op int }

// batch is one claim's worth of jobs.
type batch struct {
	s        *Sink
	settings klaviyo.Settings
	items    []item
	// followers are exact repeats of an event op, not sent: they share
	// their leader's outcome (see chunks). Written before sending starts.
	followers map[ref][]ref
	mu        sync.Mutex
}

func (s *Sink) newBatch(ctx context.Context, jobs []destination.Job) *batch {
	b := &batch{s: s, settings: s.cfg.Settings(), items: make([]item, len(jobs)), followers: map[ref][]ref{}}
	for i, j := range jobs {
		b.items[i].job, b.items[i].ev, b.items[i].events = j.Job, j.Event, j.Events
	}
	for chunk := range slices.Chunk(b.items, prepareChunk) {
		// Without a share (no budget, or shutting down) the batch is
		// still prepared: its jobs are leased and must be finished.
		held := s.cfg.CPU != nil && s.cfg.CPU.Background(ctx) == nil
		for i := range chunk {
			b.prepare(&chunk[i])
		}
		if held {
			s.cfg.CPU.Release()
		}
	}
	return b
}

// prepareChunk is how many jobs are mapped per share of the CPU taken
// (Config.CPU): about a millisecond of work, so a waiting ingest request
// is never held up longer than that.
const prepareChunk = 16

// prepare maps one job. Problems here are permanent: the same event with
// the same settings maps the same way every time, so they are
// dead-lettered (and can be replayed after a settings fix).
func (b *batch) prepare(it *item) {
	events := it.events
	if events == nil {
		events = []spec.Event{*it.ev}
	}
	for i := range events {
		res, err := klaviyo.Map(&events[i], b.settings)
		if err != nil {
			f := &failure{code: "mapping_error", detail: err.Error()}
			var me *klaviyo.MapError
			if errors.As(err, &me) {
				f.code = me.Code
				f.pointer = me.Field
			}
			it.permanent, it.ops = f, nil
			return
		}
		if res.Skipped != "" && len(events) == 1 {
			it.skipped = res.Skipped
			return
		}
		it.ops = append(it.ops, res.Ops...)
		it.partsFailed = append(it.partsFailed, res.Failures...)
	}
	if len(it.ops) == 0 {
		it.skipped = "maps to no Klaviyo operation"
	}
}

func (b *batch) fail(r ref, f *failure, retryable bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range append([]ref{r}, b.followers[r]...) {
		it := &b.items[r.item]
		switch {
		case retryable && it.retry == nil:
			it.retry = f
		case !retryable && it.permanent == nil:
			it.permanent = f
		}
	}
}

func (b *batch) succeed(refs []ref) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range refs {
		b.items[r.item].delivered++
		for _, f := range b.followers[r] {
			b.items[f.item].delivered++
		}
	}
}

func (b *batch) op(r ref) klaviyo.Op { return b.items[r.item].ops[r.op] }

func (f *failure) String() string {
	var s []string
	if f.status != 0 {
		s = append(s, fmt.Sprintf("HTTP %d", f.status))
	}
	if f.code != "" {
		s = append(s, f.code)
	}
	if f.detail != "" {
		s = append(s, f.detail)
	}
	if f.pointer != "" {
		s = append(s, "at "+f.pointer)
	}
	return strings.Join(s, ": ")
}

// holdPartial keeps back, for the next batch, the newest event-only jobs
// that would otherwise ride in this batch's last, partly filled events
// request. Under load Klaviyo limits requests, not events (150 bulk jobs a
// minute), so a half-full job wastes half a request of the budget; held
// jobs fill the next batch's requests instead. Only when the batch has at
// least one full request's worth of events (a light trickle is never
// delayed), and never a job held before (the first carried jobs), so no
// event waits more than one batch.
func (b *batch) holdPartial(carried int) {
	total := 0
	for i := range b.items {
		if it := &b.items[i]; it.permanent == nil && it.skipped == "" {
			for _, op := range it.ops {
				if op.Kind == klaviyo.OpEvent {
					total++
				}
			}
		}
	}
	rest := total % maxEventsPerJob
	if total < maxEventsPerJob || rest == 0 {
		return
	}
	for i := len(b.items) - 1; i >= carried && rest > 0; i-- {
		it := &b.items[i]
		if it.permanent != nil || it.skipped != "" || len(it.ops) == 0 || len(it.ops) > rest || !eventsOnly(it.ops) {
			continue
		}
		it.held = true
		rest -= len(it.ops)
	}
}

func eventsOnly(ops []klaviyo.Op) bool {
	for _, op := range ops {
		if op.Kind != klaviyo.OpEvent {
			return false
		}
	}
	return true
}
