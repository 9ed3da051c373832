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
		case got.LogRows > 0 || got.DeadLetters > 0 || got.AuditRows > 0:
			log.Info("store pruned", slog.Int64("log_rows", got.LogRows), slog.Int64("dead_letters", got.DeadLetters), slog.Int64("audit_rows", got.AuditRows))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pruneChunk bounds one delete transaction, so pruning a large backlog
// never holds the writer for long.
const pruneChunk = 5000

// Prune implements Pruner.
func (s *SQLite) Prune(ctx context.Context, r Retention) (Pruned, error) {
	return prune(ctx, s, sqliteDialect{s.r}, s.now(), r)
}

// Prune implements Pruner.
func (s *Postgres) Prune(ctx context.Context, r Retention) (Pruned, error) {
	return prune(ctx, s, pgDialect{s.pool}, s.now(), r)
}

// prune is Prune for either store, each chunk in a write transaction of
// its own. The delivery log goes oldest first by age and then down to
// LogMaxRows; replayed dead letters and audit entries by age.
func prune(ctx context.Context, st writer, read dialect, now time.Time, r Retention) (Pruned, error) {
	var p Pruned
	if r.LogMaxRows < 0 || r.LogMaxAge < 0 || r.ReplayedMaxAge < 0 || r.AuditMaxAge < 0 {
		return p, fmt.Errorf("prune: negative retention: %w", ErrInvalid)
	}
	steps := []struct {
		what   string
		maxAge time.Duration
		query  string
		n      *int64
	}{
		{"log by age", r.LogMaxAge,
			`DELETE FROM delivery_log WHERE id IN (SELECT id FROM delivery_log WHERE time < ? ORDER BY time LIMIT ?)`, &p.LogRows},
		{"replayed dead letters", r.ReplayedMaxAge,
			`DELETE FROM dead_letter WHERE id IN (SELECT id FROM dead_letter WHERE replayed_at IS NOT NULL AND replayed_at < ? LIMIT ?)`, &p.DeadLetters},
		{"audit log", r.AuditMaxAge,
			`DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE time < ? ORDER BY time LIMIT ?)`, &p.AuditRows},
	}
	for _, step := range steps {
		if step.maxAge == 0 {
			continue
		}
		n, err := deleteChunks(ctx, st, step.query, now.Add(-step.maxAge).UnixNano())
		*step.n += n
		if err != nil {
			return p, fmt.Errorf("prune %s: %w", step.what, err)
		}
	}
	if r.LogMaxRows > 0 {
		n, err := pruneLogRows(ctx, st, read, r.LogMaxRows)
		p.LogRows += n
		if err != nil {
			return p, fmt.Errorf("prune log by count: %w", err)
		}
	}
	return p, nil
}

// pruneLogRows deletes the oldest delivery log rows beyond maxRows; the
// count is read outside the writer.
func pruneLogRows(ctx context.Context, st writer, read dialect, maxRows int64) (int64, error) {
	var total, deleted int64
	err := read.queryRow(ctx, `SELECT COUNT(*) FROM delivery_log`).Scan(&total)
	for excess := total - maxRows; err == nil && excess > 0; {
		var n int64
		err = st.write(ctx, func(_ dialect, w txer) error {
			var err error
			n, err = w.exec(ctx, `DELETE FROM delivery_log WHERE id IN (SELECT id FROM delivery_log ORDER BY time, id LIMIT ?)`, min(excess, pruneChunk))
			return err
		})
		if n == 0 {
			break
		}
		deleted += n
		excess -= n
	}
	return deleted, err
}

// deleteChunks runs query (whose last parameter is the chunk size), each
// time in a transaction of its own, until it deletes fewer than pruneChunk
// rows.
func deleteChunks(ctx context.Context, st writer, query string, args ...any) (int64, error) {
	args = append(args, pruneChunk)
	var total int64
	for {
		var n int64
		err := st.write(ctx, func(_ dialect, w txer) error {
			var err error
			n, err = w.exec(ctx, query, args...)
			return err
		})
		total += n
		if err != nil || n < pruneChunk {
			return total, err
		}
	}
}
