// Package deliverytest holds in-memory fakes of delivery's Queue and Log for
// tests that run a delivery worker (delivery's own, and the destinations'
// sinks driven through it), so they all claim and settle jobs the same way.
//
// It imports neither delivery nor any destination: delivery's in-package
// tests use it, and an import of delivery here would be a cycle. The
// fakes satisfy delivery.Queue and delivery.Log by their method sets; every
// test that hands one to delivery.New checks that at compile time.
package deliverytest

import (
	"context"
	"sync"
	"time"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/store"
)

// FakeQueue hands out Jobs in claims of at most the claim's limit, in order,
// and records how each claimed job ended. Tests may set Jobs between runs to
// simulate arrivals, and read the fields once the worker has returned.
type FakeQueue struct {
	mu        sync.Mutex
	Jobs      []queue.Job         // not yet claimed
	Succeeded []int64             // job IDs, in the order settled
	Retried   map[int64]time.Time // job ID → when it is due again
	Aborted   []int64             // job IDs, in the order settled
}

func (q *FakeQueue) Claim(_ context.Context, _ string, limit int, _ time.Duration) ([]queue.Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(limit, len(q.Jobs))
	out := q.Jobs[:n]
	q.Jobs = q.Jobs[n:]
	return out, nil
}

func (q *FakeQueue) Succeed(_ context.Context, ids []int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.Succeeded = append(q.Succeeded, ids...)
	return nil
}

func (q *FakeQueue) Retry(_ context.Context, ids []int64, at time.Time, _ string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.Retried == nil {
		q.Retried = map[int64]time.Time{}
	}
	for _, id := range ids {
		q.Retried[id] = at
	}
	return nil
}

func (q *FakeQueue) Abort(_ context.Context, ids []int64, _ string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.Aborted = append(q.Aborted, ids...)
	return nil
}

// FakeLog records delivery log entries and dead letters twice: by message ID
// (the latest of each), for tests that ask about one event, and in the order
// they came, for tests that must see every record, repeats included.
type FakeLog struct {
	mu          sync.Mutex
	Entries     map[string]store.LogEntry   // by message ID, the latest
	Dead        map[string]store.DeadLetter // by message ID, the latest
	Records     []store.LogEntry            // every entry, in order
	DeadLetters []store.DeadLetter          // every dead letter, in order
}

func (l *FakeLog) Record(_ context.Context, es []store.LogEntry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Entries == nil {
		l.Entries = map[string]store.LogEntry{}
	}
	for _, e := range es {
		l.Entries[e.MessageID] = e
	}
	l.Records = append(l.Records, es...)
	return nil
}

func (l *FakeLog) AddDeadLetters(_ context.Context, dls []store.DeadLetter) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Dead == nil {
		l.Dead = map[string]store.DeadLetter{}
	}
	for _, d := range dls {
		l.Dead[d.MessageID] = d
	}
	l.DeadLetters = append(l.DeadLetters, dls...)
	return nil
}

// Latest is the latest log entry and dead letter of a message, read under
// the lock (for logs written by a background goroutine too).
func (l *FakeLog) Latest(messageID string) (store.LogEntry, store.DeadLetter, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	dl, dead := l.Dead[messageID]
	return l.Entries[messageID], dl, dead
}
