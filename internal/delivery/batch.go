package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
)

// item is one claimed job on its way through a batch.
type item struct {
	job queue.Job
	ev  spec.Event
	// res is the job's outcome: set before the sink when decoding, the
	// integrations map or a stage settles the job, else the sink's.
	res *destination.Result
	// policy is what Config.PreSink reported.
	policy *PreSinkResult
}

// batch is one claim's worth of jobs.
type batch struct {
	w     *Worker
	items []item
}

// prepareChunk is how many jobs are decoded per share of the CPU taken
// (Config.CPU), so a waiting ingest request is never held up long.
const prepareChunk = 16

func (w *Worker) newBatch(ctx context.Context, jobs []queue.Job) *batch {
	b := &batch{w: w, items: make([]item, len(jobs))}
	for i, j := range jobs {
		b.items[i].job = j
	}
	for chunk := range slices.Chunk(b.items, prepareChunk) {
		// Without a share (no budget, or shutting down) the batch is
		// still prepared: its jobs are leased and must be finished.
		held := w.cfg.CPU != nil && w.cfg.CPU.Background(ctx) == nil
		for i := range chunk {
			b.prepare(&chunk[i])
		}
		if held {
			w.cfg.CPU.Release()
		}
	}
	return b
}

// prepare decodes one job and settles it when the event's integrations
// turn this destination off. Problems here are permanent: the same stored
// event decodes the same way every time.
func (b *batch) prepare(it *item) {
	if err := json.Unmarshal(it.job.Payload, &it.ev); err != nil {
		it.res = &destination.Result{Outcome: destination.Dead, Code: "bad_payload", Detail: fmt.Sprintf("stored event is not valid JSON: %v", err)}
		return
	}
	if reason := b.disabledBy(&it.ev); reason != "" {
		it.res = &destination.Result{Outcome: destination.Skipped, Detail: reason}
	}
}

// disabledBy says why the event's integrations map turns this destination
// off, or "" when it is on. Both the destination type's name ("Klaviyo",
// as SDK users write it) and the configured name count.
func (b *batch) disabledBy(ev *spec.Event) string {
	for _, name := range []string{b.w.cfg.Title, b.w.cfg.Dest} {
		if name == "" {
			continue
		}
		if on, _ := ev.Destination(name); !on {
			return fmt.Sprintf("integrations turn %s off for this event", name)
		}
	}
	return ""
}

// deliver runs the stages and the sink over the jobs not settled yet and
// returns the jobs the sink held for the next batch. The first carried
// items were held over from the previous batch.
func (b *batch) deliver(ctx context.Context, carried int) []queue.Job {
	var (
		idx  []int
		sent destination.Batch
	)
	for i := range b.items {
		it := &b.items[i]
		if it.res != nil {
			continue
		}
		job := destination.Job{Job: it.job, Event: &it.ev}
		for _, st := range b.w.cfg.Stages {
			if it.res = st.Apply(ctx, &job); it.res != nil {
				break
			}
		}
		if it.res == nil && b.w.cfg.PreSink != nil {
			b.preSink(ctx, it, &job)
		}
		if it.res != nil {
			continue
		}
		if i < carried {
			sent.Carried++
		}
		idx = append(idx, i)
		sent.Jobs = append(sent.Jobs, job)
	}
	if len(sent.Jobs) == 0 {
		return nil
	}
	results := b.w.cfg.Sink.Deliver(ctx, sent)
	var held []queue.Job
	for k, i := range idx {
		it := &b.items[i]
		if k >= len(results) {
			// A sink that returns too few results is a bug; retry rather
			// than lose or wrongly settle the job.
			it.res = &destination.Result{Outcome: destination.Retry, Code: "no_result", Detail: "the destination returned no result for this job"}
			continue
		}
		r := results[k]
		if r.Outcome == destination.Held && i < carried {
			r = destination.Result{Outcome: destination.Retry, Code: "held_twice", Detail: "the destination held a job a second time"}
		}
		it.res = &r
		if r.Outcome == destination.Held {
			held = append(held, it.job)
		}
	}
	return held
}

// describe renders a failure as one line: "HTTP 400: code: detail: at pointer".
func describe(r *destination.Result) string {
	var s []string
	if r.Status != 0 {
		s = append(s, fmt.Sprintf("HTTP %d", r.Status))
	}
	if r.Code != "" {
		s = append(s, r.Code)
	}
	if r.Detail != "" {
		s = append(s, r.Detail)
	}
	if r.Pointer != "" {
		s = append(s, "at "+r.Pointer)
	}
	return strings.Join(s, ": ")
}
