package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Drop deletes dest's undelivered jobs that match selects: the pending and
// failed ones this node holds (acknowledged, so they leave the stream),
// then every other matching message of dest still in the source streams
// (deleted by sequence). A message another node holds and is delivering
// at that moment may still be delivered by it from memory; with one node
// executing jobs are counted in InFlight.
func (q *JetStream) Drop(ctx context.Context, dest string, match func(Message) bool) (Dropped, error) {
	var out Dropped
	if dest == "" || match == nil {
		return out, fmt.Errorf("drop: dest and match are required: %w", ErrInvalid)
	}
	if err := q.refreshRegistry(ctx, true); err != nil {
		return out, fmt.Errorf("drop: %w", err)
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return out, ErrClosed
	}
	var taken []*jsJob
	held := map[int64]bool{}
	for id, j := range q.held {
		if j.m.Dest != dest {
			continue
		}
		held[id] = true
		if !match(j.m) {
			continue
		}
		if j.state == StateExecuting {
			out.InFlight++
			continue
		}
		taken = append(taken, j)
		delete(q.held, id)
	}
	q.mu.Unlock()
	if len(taken) > 0 {
		if err := q.ack(ctx, taken); err != nil {
			return out, fmt.Errorf("drop %d held jobs: %w", len(taken), err)
		}
		out.Dropped += len(taken)
	}
	for _, n := range q.streamNumbers() {
		k, err := q.dropInStream(ctx, n, dest, held, match)
		out.Dropped += k
		if err != nil {
			return out, fmt.Errorf("drop: %w", err)
		}
	}
	return out, nil
}

// dropInStream deletes the matching messages of dest in stream n that this
// node does not hold, reading the stream by sequence.
func (q *JetStream) dropInStream(ctx context.Context, n int, dest string, held map[int64]bool, match func(Message) bool) (int, error) {
	s, err := q.js.Stream(ctx, q.streamName(n))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", q.streamName(n), err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", q.streamName(n), err)
	}
	subject := q.subject(n, dest)
	dropped := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		if held[int64(n)<<idShift|int64(seq)] {
			continue
		}
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return dropped, fmt.Errorf("stream %s seq %d: %w", q.streamName(n), seq, err)
		}
		if raw.Subject != subject {
			continue
		}
		var meta jsMeta
		if json.Unmarshal([]byte(raw.Header.Get(metaHeader)), &meta) != nil {
			continue
		}
		m := Message{Source: meta.Source, Dest: meta.Dest, Key: meta.Key, MessageID: meta.MessageID,
			Payload: raw.Data, ReceivedAt: time.Unix(0, meta.ReceivedAt).UTC()}
		if !match(m) {
			continue
		}
		if err := s.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return dropped, fmt.Errorf("stream %s delete seq %d: %w", q.streamName(n), seq, err)
		}
		dropped++
	}
	return dropped, nil
}
