package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// RunPruner calls p.Prune(r) every interval until ctx ends (then returns
// nil), logging what went and any error (a failed round is retried at the
// next tick, not fatal). Run it in the serve errgroup.
func RunPruner(ctx context.Context, p Pruner, interval time.Duration, r Retention, log *slog.Logger) error {
	if interval <= 0 {
		return fmt.Errorf("run pruner: interval %v is not positive: %w", interval, ErrInvalid)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		got, err := p.Prune(ctx, r)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("prune store", slog.Any("err", err))
		case got.LogRows > 0 || got.DeadLetters > 0:
			log.Info("store pruned", slog.Int64("log_rows", got.LogRows), slog.Int64("dead_letters", got.DeadLetters))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
