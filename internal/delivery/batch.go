package delivery

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
)

// item is one claimed job on its way through a batch.
type item struct {
	job     queue.Job
	ev      spec.Event
	ops     []klaviyo.Op
	skipped string
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
	w        *Worker
	settings klaviyo.Settings
	items    []item
	mu       sync.Mutex
}

func (w *Worker) newBatch(jobs []queue.Job) *batch {
	b := &batch{w: w, settings: w.cfg.Settings(), items: make([]item, len(jobs))}
	for i, j := range jobs {
		b.items[i].job = j
		b.prepare(&b.items[i])
	}
	return b
}

// prepare decodes and maps one job. Problems here are permanent: the same
// event with the same settings maps the same way every time, so they are
// dead-lettered (and can be replayed after a settings fix).
func (b *batch) prepare(it *item) {
	if err := json.Unmarshal(it.job.Payload, &it.ev); err != nil {
		it.permanent = &failure{code: "bad_payload", detail: fmt.Sprintf("stored event is not valid JSON: %v", err)}
		return
	}
	if reason := b.disabledBy(&it.ev); reason != "" {
		it.skipped = reason
		return
	}
	res, err := klaviyo.Map(&it.ev, b.settings)
	if err != nil {
		f := &failure{code: "mapping_error", detail: err.Error()}
		var me *klaviyo.MapError
		if errors.As(err, &me) {
			f.code = me.Code
			f.pointer = me.Field
		}
		it.permanent = f
		return
	}
	if res.Skipped != "" {
		it.skipped = res.Skipped
		return
	}
	it.ops = res.Ops
	if len(it.ops) == 0 {
		it.skipped = "maps to no Klaviyo operation"
	}
}

// disabledBy says why the event's integrations map turns this destination
// off, or "" when it is on. Both the destination type's name ("Klaviyo",
// as SDK users write it) and the configured name count.
func (b *batch) disabledBy(ev *spec.Event) string {
	for _, name := range []string{"Klaviyo", b.w.cfg.Dest} {
		if on, _ := ev.Destination(name); !on {
			return fmt.Sprintf("integrations turn %s off for this event", name)
		}
	}
	return ""
}

func (b *batch) fail(r ref, f *failure, retryable bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	it := &b.items[r.item]
	if retryable {
		if it.retry == nil {
			it.retry = f
		}
		return
	}
	if it.permanent == nil {
		it.permanent = f
	}
}

func (b *batch) succeed(refs []ref) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range refs {
		b.items[r.item].delivered++
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
