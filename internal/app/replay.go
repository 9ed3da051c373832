package app

import (
	"context"
	"time"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/delivery"
	"github.com/relaycdp/relay/internal/queue"
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
		return q.Enqueue(ctx, delivery.ReplayMessages(dls, now))
	})
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

// Replay opens the configured store and queue (beside running relay serve
// nodes or not) and re-enqueues dead letters.
func Replay(ctx context.Context, o ReplayOptions) (int, error) {
	cfg, err := config.Load(o.ConfigPath, o.Env)
	if err != nil {
		return 0, err
	}
	if o.Data != "" {
		cfg.Data = o.Data
	}
	log := newLogger(cfg.Log, discard{})
	b, err := openBackends(ctx, cfg, o.Env, log)
	if err != nil {
		return 0, err
	}
	defer b.close(log)
	return ReplayDeadLetters(ctx, b.store, b.queue, store.ReplaySelector{ID: o.ID, Dest: o.Dest, Since: o.Since}, time.Now())
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
