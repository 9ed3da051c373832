package app

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

// Enqueuer makes messages durable.
type Enqueuer interface {
	Enqueue(ctx context.Context, msgs []queue.Message) error
}

// ReplayDeadLetters re-enqueues the selected dead letters for delivery with
// the destination's current settings. The store marks them replayed only
// if the enqueue committed, so a dead letter is never lost in between.
func ReplayDeadLetters(ctx context.Context, r store.Replayer, q Enqueuer, sel store.ReplaySelector, now time.Time) (int, error) {
	return r.TakeForReplay(ctx, sel, func(ctx context.Context, dls []store.DeadLetter) error {
		msgs := make([]queue.Message, len(dls))
		for i, dl := range dls {
			msgs[i] = queue.Message{
				Source:     dl.Source,
				Dest:       dl.Dest,
				Key:        eventKey(dl.Payload),
				MessageID:  dl.MessageID,
				Payload:    dl.Payload,
				ReceivedAt: now,
			}
		}
		return q.Enqueue(ctx, msgs)
	})
}

// eventKey is the ordering key of a stored event; "" (no ordering) when
// the payload does not decode, which delivery will dead-letter again with
// the reason.
func eventKey(payload []byte) string {
	var ev spec.Event
	if json.Unmarshal(payload, &ev) != nil {
		return ""
	}
	return ev.Key()
}

// ReplayOptions select what `relay replay` re-enqueues.
type ReplayOptions struct {
	ConfigPath string
	Data       string
	Dest       string    // every pending dead letter of this destination
	ID         int64     // or just this one
	Since      time.Time // with Dest: only those created at or after
	Env        func(string) (string, bool)
}

// Replay opens the embedded store and queue (beside a running relay serve
// or not) and re-enqueues dead letters.
func Replay(ctx context.Context, o ReplayOptions) (int, error) {
	cfg, err := config.Load(o.ConfigPath, o.Env)
	if err != nil {
		return 0, err
	}
	if o.Data != "" {
		cfg.Data = o.Data
	}
	if cfg.Queue != "sqlite" || cfg.Store != "sqlite" {
		return 0, fmt.Errorf("relay replay: queue %q / store %q: only the embedded sqlite backends are built so far", cfg.Queue, cfg.Store)
	}
	log := newLogger(cfg.Log, discard{})
	st, err := store.OpenSQLite(ctx, filepath.Join(cfg.Data, "state.db"), log)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	q, err := queue.OpenSQLite(ctx, filepath.Join(cfg.Data, "queue.db"), queue.SQLiteOptions{}, log)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	return ReplayDeadLetters(ctx, st, q, store.ReplaySelector{ID: o.ID, Dest: o.Dest, Since: o.Since}, time.Now())
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
