package queue

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jsMeta is the Relay-Meta header: the job's fields apart from the payload.
// JSON escapes control characters, so any key or id is a valid header.
type jsMeta struct {
	Source     string `json:"s"`
	Dest       string `json:"d"`
	Key        string `json:"k,omitempty"`
	MessageID  string `json:"m,omitempty"`
	ReceivedAt int64  `json:"r"` // Unix nanoseconds
}

// jsJob is a message this node holds.
type jsJob struct {
	id         int64
	stream     int
	msg        jetstream.Msg
	m          Message
	state      State // pending, executing or failed
	attempts   int
	lastErr    string
	retryAt    time.Time
	leaseUntil time.Time
	persisted  bool // has an entry in the jobs bucket
}

// jsDest is one destination's consumers on this node.
type jsDest struct {
	claimMu sync.Mutex // one claim (fetch + select) at a time
	cons    map[int]jetstream.Consumer
	// published is the last stream sequence per stream number of a
	// message this node enqueued for the destination, and seen the last
	// one its consumer delivered here (or that Claim stopped waiting
	// for); both under JetStream.mu. See ownWait.
	published, seen map[int]uint64
}

// ownWait bounds how long Claim waits for messages this node enqueued
// that the consumer has not delivered yet. The server acknowledges a
// publish once the stream stored it but tells the stream's consumers
// afterwards, from another goroutine: a pull without waiting, right after
// Enqueue returned, can find nothing. A waiting pull ends as soon as the
// message arrives; the whole wait is spent only when another node's claim
// took the message (scale-out), and then once.
const ownWait = 500 * time.Millisecond

// jsState is a failed job's entry in the jobs bucket.
type jsState struct {
	Attempts int    `json:"a"`
	LastErr  string `json:"e,omitempty"`
	RetryAt  int64  `json:"r,omitempty"` // Unix nanoseconds
}

// Enqueue publishes msgs to their sources' streams and returns once
// JetStream acknowledged every one (the publishes are pipelined, so a call
// costs about one round trip). Unlike *SQLite the messages of one call are
// not stored atomically: after an error some may be stored; the caller's
// retry then stores them again, and delivery's unique ids keep Klaviyo from
// counting them twice.
func (q *JetStream) Enqueue(ctx context.Context, msgs []Message) error {
	for i, m := range msgs {
		if m.Dest == "" {
			return fmt.Errorf("enqueue: message %d: empty Dest: %w", i, ErrInvalid)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	if q.isClosed() {
		return ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	now := q.opts.Now()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	streams := make([]int, 0, len(msgs))
	for i, m := range msgs {
		n, err := q.sourceStream(ctx, m.Source)
		if err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		if err := q.registerDest(ctx, m.Dest); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		recv := m.ReceivedAt
		if recv.IsZero() {
			recv = now
		}
		meta, err := json.Marshal(jsMeta{Source: m.Source, Dest: m.Dest, Key: m.Key, MessageID: m.MessageID, ReceivedAt: recv.UnixNano()})
		if err != nil {
			return fmt.Errorf("enqueue: message %d: %w", i, err)
		}
		nm := &nats.Msg{Subject: q.subject(n, m.Dest), Data: m.Payload, Header: nats.Header{metaHeader: []string{string(meta)}}}
		f, err := q.js.PublishMsgAsync(nm, jetstream.WithExpectStream(q.streamName(n)))
		if err != nil {
			return fmt.Errorf("enqueue: message %d: %w", i, err)
		}
		futures = append(futures, f)
		streams = append(streams, n)
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			q.notePublished(msgs[i].Dest, streams[i], ack.Sequence)
		case err := <-f.Err():
			return fmt.Errorf("enqueue: message %d of %d: %w", i, len(futures), err)
		case <-ctx.Done():
			return fmt.Errorf("enqueue: %w", ctx.Err())
		}
	}
	return nil
}

// notePublished records that this node stored stream n's message seq
// for dest (see ownWait).
func (q *JetStream) notePublished(dest string, n int, seq uint64) {
	d, err := q.dest(dest)
	if err != nil {
		return // closed
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	d.published[n] = max(d.published[n], seq)
}

// noteSeen records that dest's consumer of stream n got to seq; the
// caller holds q.mu.
func (q *JetStream) noteSeen(dest string, n int, seq uint64) {
	if d := q.perDest[dest]; d != nil {
		d.seen[n] = max(d.seen[n], seq)
	}
}

// unseenOwn returns the last message of stream n this node enqueued for
// dest when the consumer has not delivered it yet, else 0.
func (q *JetStream) unseenOwn(d *jsDest, n int) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p := d.published[n]; p > d.seen[n] {
		return p
	}
	return 0
}

// Claim implements Queue over the messages this node holds for dest,
// fetching more from JetStream (stream order) while fewer than limit are
// claimable and fewer than MaxHeld are held. Expired leases are due again
// with one more attempt, as in *SQLite.
func (q *JetStream) Claim(ctx context.Context, dest string, limit int, lease time.Duration) ([]Job, error) {
	switch {
	case dest == "":
		return nil, fmt.Errorf("claim: empty dest: %w", ErrInvalid)
	case limit <= 0:
		return nil, fmt.Errorf("claim %q: limit %d must be positive: %w", dest, limit, ErrInvalid)
	case lease <= 0:
		return nil, fmt.Errorf("claim %q: lease %v must be positive: %w", dest, lease, ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("claim %q: %w", dest, err)
	}
	d, err := q.dest(dest)
	if err != nil {
		return nil, err
	}
	d.claimMu.Lock()
	defer d.claimMu.Unlock()
	if err := q.refreshRegistry(ctx, false); err != nil {
		return nil, fmt.Errorf("claim %q: %w", dest, err)
	}
	// Fetched messages may be held back behind their key, so fetch until
	// enough are claimable, JetStream has no more, or MaxHeld is reached.
	for {
		claimable, held := q.countClaimable(dest, limit)
		want := min(limit-claimable, q.opts.MaxHeld-held)
		if want <= 0 {
			break
		}
		got, err := q.fetch(ctx, d, dest, want)
		if err != nil {
			return nil, fmt.Errorf("claim %q: %w", dest, err)
		}
		if got == 0 {
			break
		}
	}
	return q.selectJobs(dest, limit, lease), nil
}

// dest returns dest's consumer set, or ErrClosed.
func (q *JetStream) dest(dest string) (*jsDest, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	d := q.perDest[dest]
	if d == nil {
		d = &jsDest{cons: map[int]jetstream.Consumer{}, published: map[int]uint64{}, seen: map[int]uint64{}}
		q.perDest[dest] = d
	}
	return d, nil
}

// fetch takes up to want messages from each source's consumer for dest
// without waiting, except for messages this node enqueued that the
// consumer has not delivered yet (ownWait), and returns how many it took.
func (q *JetStream) fetch(ctx context.Context, d *jsDest, dest string, want int) (int, error) {
	total := 0
	nums := q.streamNumbers()
	slices.Sort(nums)
	for _, n := range nums {
		c, err := q.consumer(ctx, d, n, dest)
		if err != nil {
			return total, err
		}
		batch, err := c.FetchNoWait(want)
		if err != nil {
			return total, fmt.Errorf("fetch from %s: %w", q.streamName(n), err)
		}
		got, err := q.adoptBatch(ctx, n, batch)
		total += got
		if err != nil {
			return total, err
		}
		if own := q.unseenOwn(d, n); own > 0 && got < want {
			batch, err := c.Fetch(want-got, jetstream.FetchMaxWait(ownWait))
			if err != nil {
				return total, fmt.Errorf("fetch from %s: %w", q.streamName(n), err)
			}
			got, err := q.adoptBatch(ctx, n, batch)
			total += got
			if err != nil {
				return total, err
			}
			// Delivered, or taken by another node: do not wait for it again.
			q.mu.Lock()
			d.seen[n] = max(d.seen[n], own)
			q.mu.Unlock()
		}
	}
	return total, nil
}

// adoptBatch adopts a fetch's messages and returns how many became held.
func (q *JetStream) adoptBatch(ctx context.Context, n int, batch jetstream.MessageBatch) (int, error) {
	got := 0
	for msg := range batch.Messages() {
		if q.adopt(ctx, n, msg) {
			got++
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
		return got, fmt.Errorf("fetch from %s: %w", q.streamName(n), err)
	}
	return got, nil
}

// consumer returns (creating if needed) the durable consumer of stream n
// for dest.
func (q *JetStream) consumer(ctx context.Context, d *jsDest, n int, dest string) (jetstream.Consumer, error) {
	if c := d.cons[n]; c != nil {
		return c, nil
	}
	c, err := q.js.CreateOrUpdateConsumer(ctx, q.streamName(n), jetstream.ConsumerConfig{
		Durable:       "dest_" + token(dest),
		Description:   "relay destination " + dest,
		FilterSubject: q.subject(n, dest),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.opts.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 1 << 20,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer of %s for %q: %w", q.streamName(n), dest, err)
	}
	d.cons[n] = c
	return c, nil
}

// adopt makes a fetched message a held job. A redelivered message (this or
// another node failed, or gave it back at close) gets its attempts, last
// error and retry time back from the jobs bucket.
func (q *JetStream) adopt(ctx context.Context, n int, msg jetstream.Msg) bool {
	md, err := msg.Metadata()
	if err != nil {
		q.log.Error("jetstream message without metadata", slog.Any("err", err))
		return false
	}
	var meta jsMeta
	if err := json.Unmarshal([]byte(msg.Headers().Get(metaHeader)), &meta); err != nil {
		// Not ours: never deliverable, so drop it rather than loop.
		q.log.Error("jetstream message without a valid Relay-Meta header: terminated",
			slog.String("stream", q.streamName(n)), slog.Uint64("seq", md.Sequence.Stream))
		_ = msg.Term()
		return false
	}
	j := &jsJob{id: int64(n)<<idShift | int64(md.Sequence.Stream), stream: n, msg: msg, state: StatePending,
		m: Message{Source: meta.Source, Dest: meta.Dest, Key: meta.Key, MessageID: meta.MessageID,
			Payload: msg.Data(), ReceivedAt: time.Unix(0, meta.ReceivedAt).UTC()}}
	if md.NumDelivered > 1 {
		if e, err := q.jobs.Get(ctx, "j."+strconv.FormatInt(j.id, 10)); err == nil {
			var st jsState
			if json.Unmarshal(e.Value(), &st) == nil {
				j.attempts, j.lastErr, j.persisted = st.Attempts, st.LastErr, true
				if st.RetryAt != 0 {
					j.state, j.retryAt = StateFailed, time.Unix(0, st.RetryAt)
				}
			}
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.noteSeen(meta.Dest, n, md.Sequence.Stream)
	if old := q.held[j.id]; old != nil {
		// Redelivered to us while we still held it (renewals were late):
		// keep our state, use the new delivery.
		old.msg = msg
		return false
	}
	q.held[j.id] = j
	return true
}

// sortedHeld returns dest's held jobs in claim order: per source by
// stream sequence, sources merged by receive time.
func (q *JetStream) sortedHeld(dest string) []*jsJob {
	var out []*jsJob
	for _, j := range q.held {
		if j.m.Dest == dest {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(a, b *jsJob) int { return cmp.Compare(a.id, b.id) })
	if len(out) == 0 || out[0].stream == out[len(out)-1].stream {
		return out
	}
	// k-way merge by receive time, keeping each stream's order.
	by := map[int][]*jsJob{}
	var nums []int
	for _, j := range out {
		if by[j.stream] == nil {
			nums = append(nums, j.stream)
		}
		by[j.stream] = append(by[j.stream], j)
	}
	merged := make([]*jsJob, 0, len(out))
	for len(merged) < len(out) {
		best := -1
		for _, n := range nums {
			if len(by[n]) == 0 {
				continue
			}
			if best < 0 || by[n][0].m.ReceivedAt.Before(by[best][0].m.ReceivedAt) {
				best = n
			}
		}
		merged = append(merged, by[best][0])
		by[best] = by[best][1:]
	}
	return merged
}

// due reports whether j may be claimed at now; an executing job whose
// lease ran out is due.
func (j *jsJob) due(now time.Time) bool {
	switch j.state {
	case StatePending:
		return true
	case StateFailed:
		return !now.Before(j.retryAt)
	case StateExecuting:
		return !now.Before(j.leaseUntil)
	}
	return false
}

// scan walks dest's held jobs with Claim's rule (expectClaim in queuetest)
// and calls take for each claimable one until it returns false.
func (q *JetStream) scan(dest string, now time.Time, take func(*jsJob) bool) (held int) {
	blocked := map[string]bool{}
	jobs := q.sortedHeld(dest)
	for _, j := range jobs {
		if j.m.Key != "" && blocked[j.m.Key] {
			continue
		}
		if j.due(now) {
			if !take(j) {
				break
			}
		} else if j.m.Key != "" {
			blocked[j.m.Key] = true
		}
	}
	return len(jobs)
}

func (q *JetStream) countClaimable(dest string, limit int) (claimable, held int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	held = q.scan(dest, q.opts.Now(), func(*jsJob) bool { claimable++; return claimable < limit })
	return claimable, held
}

func (q *JetStream) selectJobs(dest string, limit int, lease time.Duration) []Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.opts.Now()
	var out []Job
	q.scan(dest, now, func(j *jsJob) bool {
		if j.state == StateExecuting { // lease expired: the lost attempt counts
			j.attempts++
			j.lastErr = "lease expired"
		}
		j.state, j.leaseUntil, j.retryAt = StateExecuting, now.Add(lease), time.Time{}
		out = append(out, Job{ID: j.id, Message: j.m, Attempts: j.attempts, LastError: j.lastErr})
		return len(out) < limit
	})
	return out
}

// take removes the executing jobs among ids from the held set.
func (q *JetStream) take(ids []int64) ([]*jsJob, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	var out []*jsJob
	for _, id := range ids {
		if j := q.held[id]; j != nil && j.state == StateExecuting {
			out = append(out, j)
			delete(q.held, id)
		}
	}
	return out, nil
}

// Succeed acknowledges the jobs: they leave the stream.
func (q *JetStream) Succeed(ctx context.Context, ids []int64) error {
	jobs, err := q.take(ids)
	if err != nil {
		return err
	}
	if err := q.ack(ctx, jobs); err != nil {
		return fmt.Errorf("succeed %d jobs: %w", len(jobs), err)
	}
	return nil
}

// Abort acknowledges jobs the caller dead-lettered: like Succeed, they
// leave the stream and their state leaves the jobs bucket (Queue.Abort).
func (q *JetStream) Abort(ctx context.Context, ids []int64, reason string) error {
	jobs, err := q.take(ids)
	if err != nil || len(jobs) == 0 {
		return err
	}
	if err := q.ack(ctx, jobs); err != nil {
		return fmt.Errorf("abort %d jobs: %w", len(jobs), err)
	}
	q.log.Debug("queue: jobs aborted", slog.Int("jobs", len(jobs)), slog.String("reason", reason))
	return nil
}

// ack acknowledges jobs: plain acks, then one acknowledged ack per stream,
// so when ack returns JetStream has processed all of them (acks of one
// consumer are processed in order).
func (q *JetStream) ack(ctx context.Context, jobs []*jsJob) error {
	last := map[int]int{}
	for i, j := range jobs {
		last[j.stream] = i
	}
	var errs []error
	for i, j := range jobs {
		if last[j.stream] == i {
			continue
		}
		if err := j.msg.Ack(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, i := range last {
		if err := jobs[i].msg.DoubleAck(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	var del []string
	for _, j := range jobs {
		if j.persisted {
			del = append(del, "j."+strconv.FormatInt(j.id, 10))
		}
	}
	for _, k := range del {
		if err := q.jobs.Delete(ctx, k); err != nil {
			q.log.Warn("delete job state", slog.Any("err", err))
		}
	}
	return errors.Join(errs...)
}

// Retry keeps holding the jobs until at, recording the attempt in the jobs
// bucket first so another node resumes it correctly if this one dies.
func (q *JetStream) Retry(ctx context.Context, ids []int64, at time.Time, reason string) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	var jobs []*jsJob
	for _, id := range ids {
		if j := q.held[id]; j != nil && j.state == StateExecuting {
			j.state, j.attempts, j.lastErr, j.retryAt, j.leaseUntil = StateFailed, j.attempts+1, reason, at, time.Time{}
			j.persisted = true
			jobs = append(jobs, j)
		}
	}
	states := make(map[string][]byte, len(jobs))
	for _, j := range jobs {
		b, _ := json.Marshal(jsState{Attempts: j.attempts, LastErr: reason, RetryAt: at.UnixNano()})
		states["j."+strconv.FormatInt(j.id, 10)] = b
	}
	q.mu.Unlock()
	if err := q.putStates(ctx, states); err != nil {
		return fmt.Errorf("retry %d jobs: %w", len(jobs), err)
	}
	return nil
}

// putStates writes job states to the jobs bucket, pipelined.
func (q *JetStream) putStates(ctx context.Context, states map[string][]byte) error {
	bucket := q.opts.Prefix + "_QUEUE_JOBS"
	var futures []jetstream.PubAckFuture
	for k, v := range states {
		f, err := q.js.PublishAsync("$KV."+bucket+"."+k, v)
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
