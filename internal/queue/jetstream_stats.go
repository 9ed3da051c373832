package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stats implements Queue. Depth, ByDest and OldestAge are the cluster's
// (read from the streams); Executing and Failed are the jobs this node
// holds in those states, and Pending is the rest of Depth (so with several
// nodes it includes the other nodes' executing and failed jobs). Aborted
// counts every node's aborted jobs.
func (q *JetStream) Stats(ctx context.Context) (Stats, error) {
	if q.isClosed() {
		return Stats{}, ErrClosed
	}
	if err := q.refreshRegistry(ctx, false); err != nil {
		return Stats{}, fmt.Errorf("queue stats: %w", err)
	}
	st := Stats{ByDest: map[string]int64{}}
	now := q.opts.Now()
	var oldest time.Time
	for _, n := range q.streamNumbers() {
		s, err := q.js.Stream(ctx, q.streamName(n))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return Stats{}, fmt.Errorf("queue stats: %w", err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(q.opts.Prefix+"."+strconv.Itoa(n)+".*"))
		if err != nil {
			return Stats{}, fmt.Errorf("queue stats: %w", err)
		}
		for subj, c := range info.State.Subjects {
			tok := subj[strings.LastIndexByte(subj, '.')+1:]
			dest := q.destName(ctx, tok)
			st.ByDest[dest] += int64(c)
			st.Depth += int64(c)
		}
		if info.State.Msgs > 0 {
			if t, ok := q.receivedAt(ctx, s, info.State.FirstSeq); ok && (oldest.IsZero() || t.Before(oldest)) {
				oldest = t
			}
		}
	}
	for d, c := range st.ByDest {
		if c == 0 {
			delete(st.ByDest, d)
		}
	}
	if !oldest.IsZero() {
		st.OldestAge = max(now.Sub(oldest), 0)
	}
	q.mu.Lock()
	for _, j := range q.held {
		switch j.state {
		case StateExecuting:
			st.Executing++
		case StateFailed:
			st.Failed++
		}
	}
	q.mu.Unlock()
	st.Pending = max(st.Depth-st.Executing-st.Failed, 0)
	return st, nil
}

// destName maps a subject token back to its destination's name.
func (q *JetStream) destName(ctx context.Context, tok string) string {
	q.regMu.Lock()
	name, ok := q.dests[tok]
	q.regMu.Unlock()
	if ok {
		return name
	}
	if e, err := q.reg.Get(ctx, "dst."+tok); err == nil {
		q.regMu.Lock()
		q.dests[tok] = string(e.Value())
		q.regMu.Unlock()
		return string(e.Value())
	}
	return tok
}

// receivedAt reads the receive time of the message at seq (the stream's
// oldest); false when it is gone already.
func (q *JetStream) receivedAt(ctx context.Context, s jetstream.Stream, seq uint64) (time.Time, bool) {
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return time.Time{}, false
	}
	var meta jsMeta
	if json.Unmarshal([]byte(m.Header.Get(metaHeader)), &meta) != nil {
		return time.Time{}, false
	}
	return time.Unix(0, meta.ReceivedAt), true
}

// Depth is the number of unfinished jobs of every node (messages in the
// source streams), for the gateway's back-pressure check.
func (q *JetStream) Depth(ctx context.Context) (int64, error) {
	if q.isClosed() {
		return 0, ErrClosed
	}
	if err := q.refreshRegistry(ctx, false); err != nil {
		return 0, fmt.Errorf("queue depth: %w", err)
	}
	var n int64
	for _, num := range q.streamNumbers() {
		s, err := q.js.Stream(ctx, q.streamName(num))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("queue depth: %w", err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("queue depth: %w", err)
		}
		n += int64(info.State.Msgs)
	}
	return n, nil
}

var _ Queue = (*JetStream)(nil)
