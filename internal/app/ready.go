package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/relaycdp/relay/internal/readiness"
	"github.com/relaycdp/relay/internal/store"
)

// readyProbeKey is a settings key no destination has: looking it up is
// the store's cheapest round trip.
const readyProbeKey = "ready-probe:"

// newReadiness builds the checks of GET /ready and the console's
// overview: the queue takes writes (its data dir has room, it answers, it
// is under limits.maxQueueDepth), the store answers, and each
// destination's state.
func (a *App) newReadiness() *readiness.Checker {
	queueCheck := func(ctx context.Context) error {
		if a.cfg.Queue == "sqlite" {
			if err := readiness.WritableDir(a.cfg.Data)(ctx); err != nil {
				return err
			}
		}
		depth, err := a.queue.Depth(ctx)
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		if max := a.cfg.Limits.MaxQueueDepth; max > 0 && depth > max {
			return fmt.Errorf("queue: %w", errQueueFull{depth, max})
		}
		return nil
	}
	storeCheck := func(ctx context.Context) error {
		if a.cfg.Store == "sqlite" && a.cfg.Queue != "sqlite" {
			if err := readiness.WritableDir(a.cfg.Data)(ctx); err != nil {
				return err
			}
		}
		if _, err := a.store.DestSettings(ctx, readyProbeKey); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	}
	return &readiness.Checker{
		Checks: []readiness.Check{{Name: "queue", Run: queueCheck}, {Name: "store", Run: storeCheck}},
		Destinations: func(ctx context.Context) []readiness.DestState {
			st, statsErr := a.queue.Stats(ctx)
			out := make([]readiness.DestState, 0, len(a.dests))
			for _, d := range a.dests {
				ds := readiness.DestState{Name: d.cfg.Name, State: "ok", Queued: st.ByDest[d.cfg.Name]}
				switch {
				case waitingOf(d.instance)() != "":
					ds.State, ds.Problem = "unconfigured", waitingOf(d.instance)()
				case statsErr != nil:
					ds.State, ds.Problem, ds.Queued = "unknown", "queue statistics unavailable", -1
				}
				out = append(out, ds)
			}
			return out
		},
	}
}

type errQueueFull struct{ depth, max int64 }

func (e errQueueFull) Error() string {
	return fmt.Sprintf("%d jobs waiting, over limits.maxQueueDepth %d: ingest answers 429", e.depth, e.max)
}
