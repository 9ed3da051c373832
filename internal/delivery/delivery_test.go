package delivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/delivery/deliverytest"
	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/store"
)

// scriptSink answers each job by its messageId's prefix and records the
// batches it was handed.
type scriptSink struct {
	batches []destination.Batch
	answer  func(j destination.Job, carried bool) destination.Result
}

func (s *scriptSink) Deliver(_ context.Context, b destination.Batch) []destination.Result {
	s.batches = append(s.batches, b)
	out := make([]destination.Result, len(b.Jobs))
	for i, j := range b.Jobs {
		out[i] = s.answer(j, i < b.Carried)
	}
	return out
}

func job(id int64, msgID, payload string, received time.Time) queue.Job {
	return queue.Job{ID: id, Message: queue.Message{Source: "web", Dest: "hook", MessageID: msgID, Payload: []byte(payload), ReceivedAt: received}}
}

func track(msgID string) string {
	return fmt.Sprintf(`{"type":"track","messageId":%q,"userId":"u1","event":"Clicked","context":{"traits":{"email":"U1@Example.com"}}}`, msgID)
}

func newWorker(sink destination.Sink, q *deliverytest.FakeQueue, l *deliverytest.FakeLog, stages ...destination.Stage) *Worker {
	return New(Config{Dest: "hook", Title: "Webhook", Sink: sink, Stages: stages, MaxRetryAge: time.Hour, RetryBase: time.Second, RetryMax: time.Second},
		q, l, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
}

func byPrefix(j destination.Job, _ bool) destination.Result {
	switch {
	case strings.HasPrefix(j.MessageID, "dead"):
		return destination.Result{Outcome: destination.Dead, Status: 400, Code: "invalid", Detail: "bad email", Pointer: "/data/0"}
	case strings.HasPrefix(j.MessageID, "retry"):
		return destination.Result{Outcome: destination.Retry, Status: 429, Detail: "throttled", RetryAfter: 90 * time.Minute}
	case strings.HasPrefix(j.MessageID, "skip"):
		return destination.Result{Outcome: destination.Skipped, Detail: "filtered"}
	}
	return destination.Result{Outcome: destination.Delivered, Detail: "1 request accepted"}
}

func TestOutcomesSettleQueueLogAndDeadLetters(t *testing.T) {
	now := time.Now()
	q := &deliverytest.FakeQueue{Jobs: []queue.Job{
		job(1, "ok-1", track("ok-1"), now),
		job(2, "dead-1", track("dead-1"), now),
		job(3, "retry-1", track("retry-1"), now),
		job(4, "skip-1", track("skip-1"), now),
		job(5, "bad-1", `{"type":`, now),
		job(6, "off-1", `{"type":"track","messageId":"off-1","userId":"u","event":"E","integrations":{"Webhook":false}}`, now),
		job(7, "retry-old", track("retry-old"), now.Add(-2*time.Hour)),
	}}
	l := &deliverytest.FakeLog{}
	sink := &scriptSink{answer: byPrefix}
	n, err := newWorker(sink, q, l).RunOnce(context.Background())
	if err != nil || n != 7 {
		t.Fatalf("RunOnce = %d, %v; want 7 settled", n, err)
	}
	if got := len(sink.batches[0].Jobs); got != 5 {
		t.Errorf("sink got %d jobs, want 5 (not the undecodable one nor the one integrations turn off)", got)
	}
	want := map[string]store.Status{
		"ok-1": store.StatusDelivered, "dead-1": store.StatusDead, "retry-1": store.StatusRetrying,
		"skip-1": store.StatusSkipped, "bad-1": store.StatusDead, "off-1": store.StatusSkipped, "retry-old": store.StatusDead,
	}
	for id, st := range want {
		if got := l.Entries[id].Status; got != st {
			t.Errorf("%s: log status %q, want %q (%s)", id, got, st, l.Entries[id].Detail)
		}
	}
	if e := l.Entries["ok-1"]; e.Email != "u1@example.com" || e.Event != "Clicked" || e.Dest != "hook" || e.Attempts != 1 {
		t.Errorf("log entry = %+v", e)
	}
	dl := l.Dead["dead-1"]
	if dl.Error != "HTTP 400: invalid: bad email: at /data/0" || dl.Status != 400 || dl.Code != "invalid" || dl.Pointer != "/data/0" || string(dl.Payload) != track("dead-1") {
		t.Errorf("dead letter = %+v", dl)
	}
	if got := l.Dead["bad-1"].Code; got != "bad_payload" {
		t.Errorf("undecodable payload dead-lettered with code %q", got)
	}
	if got := l.Dead["retry-old"].Error; !strings.Contains(got, "gave up after 1 attempts over 1h0m0s: throttled") {
		t.Errorf("expired retry: %q", got)
	}
	if !strings.Contains(l.Entries["off-1"].Detail, "Webhook off") {
		t.Errorf("integrations skip detail %q", l.Entries["off-1"].Detail)
	}
	// Retry-After (90 min) outweighs the backoff (≤ 1 s).
	if at := q.Retried[3]; at.Before(now.Add(90 * time.Minute)) {
		t.Errorf("retry at %v, want no sooner than Retry-After", at)
	}
	if len(q.Succeeded) != 3 || len(q.Aborted) != 3 {
		t.Errorf("succeeded %v, aborted %v", q.Succeeded, q.Aborted)
	}
}

// A held job stays out of the queue's books, comes back first in the next
// batch marked as carried, and is not held twice.
func TestHeldJobsCarryOverOnce(t *testing.T) {
	now := time.Now()
	q := &deliverytest.FakeQueue{Jobs: []queue.Job{job(1, "a", track("a"), now), job(2, "b", track("b"), now)}}
	l := &deliverytest.FakeLog{}
	sink := &scriptSink{answer: func(j destination.Job, _ bool) destination.Result {
		if j.MessageID == "b" {
			return destination.Result{Outcome: destination.Held}
		}
		return destination.Result{Outcome: destination.Delivered}
	}}
	w := newWorker(sink, q, l)
	if n, err := w.RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("first batch settled %d (%v), want 1", n, err)
	}
	if _, ok := l.Entries["b"]; ok || len(q.Succeeded) != 1 {
		t.Fatalf("held job settled: %+v, succeeded %v", l.Entries["b"], q.Succeeded)
	}
	q.Jobs = []queue.Job{job(3, "c", track("c"), now)}
	if n, err := w.RunOnce(context.Background()); err != nil || n != 2 {
		t.Fatalf("second batch settled %d (%v), want 2", n, err)
	}
	b := sink.batches[1]
	if b.Carried != 1 || b.Jobs[0].MessageID != "b" {
		t.Fatalf("second batch = carried %d, first %q; want the held job first, carried", b.Carried, b.Jobs[0].MessageID)
	}
	if got := l.Entries["b"].Status; got != store.StatusRetrying {
		t.Errorf("job held twice: status %q, want retrying", got)
	}
}

func TestStagesRunBeforeTheSink(t *testing.T) {
	now := time.Now()
	q := &deliverytest.FakeQueue{Jobs: []queue.Job{job(1, "a", track("a"), now), job(2, "drop", track("drop"), now)}}
	l := &deliverytest.FakeLog{}
	var seen []string
	sink := &scriptSink{answer: func(j destination.Job, _ bool) destination.Result {
		seen = append(seen, j.MessageID+":"+j.Event.UserID)
		return destination.Result{Outcome: destination.Delivered}
	}}
	redact := destination.StageFunc(func(_ context.Context, j *destination.Job) *destination.Result {
		j.Event.UserID = "redacted"
		return nil
	})
	drop := destination.StageFunc(func(_ context.Context, j *destination.Job) *destination.Result {
		if j.MessageID == "drop" {
			return &destination.Result{Outcome: destination.Skipped, Detail: "dropped by a stage"}
		}
		return nil
	})
	if _, err := newWorker(sink, q, l, redact, drop).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != "a:redacted" {
		t.Errorf("sink saw %v, want only a, with the stage's change", seen)
	}
	if e := l.Entries["drop"]; e.Status != store.StatusSkipped || e.Detail != "dropped by a stage" {
		t.Errorf("stage-settled job: %+v", e)
	}
}
