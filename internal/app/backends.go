package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/datadir"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/ratelimit"
	"github.com/relaycdp/relay/internal/store"
)

// appQueue is what the app needs from a queue: the Queue contract plus the
// cheap Depth the gateway's back-pressure check calls.
type appQueue interface {
	queue.Queue
	Depth(ctx context.Context) (int64, error)
}

// backends are the configured store, queue and the rate limiter kept in
// the store (shared by every node on PostgreSQL; surviving restarts on
// SQLite).
type backends struct {
	store   store.Store
	queue   appQueue
	limiter ratelimit.Limiter
	// lock is the data dir's, held while SQLite files in it are open.
	lock *datadir.Lock
}

// openBackends opens cfg's store and queue: the embedded SQLite files in
// cfg.Data, or PostgreSQL (store: postgres) and NATS JetStream (queue:
// jetstream). With PostgreSQL the Klaviyo rate limits are kept in it, so
// several nodes share each key's budget. On error nothing stays open.
func openBackends(ctx context.Context, cfg config.Config, env func(string) (string, bool), log *slog.Logger) (*backends, error) {
	if env == nil {
		env = os.LookupEnv
	}
	b := &backends{}
	if usesDataDir(cfg) {
		// Two processes on one queue.db would reset each other's executing
		// jobs; the lock refuses the second before it opens anything.
		l, err := datadir.Acquire(cfg.Data)
		if err != nil {
			return nil, err
		}
		b.lock = l
	}
	switch cfg.Store {
	case "sqlite":
		s, err := store.OpenSQLite(ctx, filepath.Join(cfg.Data, stateFile), log)
		if err != nil {
			b.close(log)
			return nil, fmt.Errorf("store %s: %w", filepath.Join(cfg.Data, stateFile), err)
		}
		// The limits live in the store so a Retry-After, and the part of
		// a window already spent, outlive a restart.
		b.store, b.limiter = s, s.RateLimiter()
	case "postgres":
		s, err := store.OpenPostgres(ctx, cfg.Postgres.DSN, log)
		if err != nil {
			b.close(log)
			return nil, fmt.Errorf("postgres.dsn: %w", err)
		}
		b.store, b.limiter = s, s.RateLimiter()
	default:
		b.close(log)
		return nil, fmt.Errorf("store: %q is not one of sqlite, postgres", cfg.Store)
	}
	q, err := openQueue(ctx, cfg, log)
	if err != nil {
		b.close(log)
		return nil, err
	}
	b.queue = q
	return b, nil
}

// openQueue opens cfg's queue. Each branch returns its own concrete
// value only on success: a nil *SQLite stored in appQueue would be a
// non-nil interface, and closing it would panic and hide err.
func openQueue(ctx context.Context, cfg config.Config, log *slog.Logger) (appQueue, error) {
	switch cfg.Queue {
	case "sqlite":
		q, err := queue.OpenSQLite(ctx, filepath.Join(cfg.Data, queueFile), queue.SQLiteOptions{}, log)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", filepath.Join(cfg.Data, queueFile), err)
		}
		return q, nil
	case "jetstream":
		opts := queue.JetStreamOptions{Prefix: cfg.NATS.Prefix, AckWait: cfg.NATS.AckWait}
		q, err := queue.OpenJetStream(ctx, cfg.NATS.URL, opts, log)
		if err != nil {
			return nil, fmt.Errorf("nats.url: %w", err)
		}
		return q, nil
	}
	return nil, fmt.Errorf("queue: %q is not one of sqlite, jetstream", cfg.Queue)
}

// usesDataDir reports whether cfg keeps files in cfg.Data.
func usesDataDir(cfg config.Config) bool { return cfg.Queue == "sqlite" || cfg.Store == "sqlite" }

// ErrNoData means a command that works on relay serve's data (relay forget
// and relay replay without a server) was pointed at a data dir serve never
// used: opening it would create an empty one, and a request stored there
// would wait for a server that never reads it.
var ErrNoData = errors.New("holds no Relay data")

// openExistingBackends is openBackends for data relay serve made: it
// refuses, naming the dir, a data dir without serve's files in it.
func openExistingBackends(ctx context.Context, cfg config.Config, env func(string) (string, bool), log *slog.Logger) (*backends, error) {
	if usesDataDir(cfg) {
		for _, name := range dataFiles(cfg) {
			if _, err := os.Stat(filepath.Join(cfg.Data, name)); err != nil {
				return nil, fmt.Errorf("data dir %q %w (no %s): relay serve has not run with it; "+
					"pass --config with relay serve's config, or --data with the data dir it uses", cfg.Data, ErrNoData, name)
			}
		}
	}
	return openBackends(ctx, cfg, env, log)
}

// The SQLite files relay serve keeps in its data dir.
const (
	stateFile = "state.db"
	queueFile = "queue.db"
)

// dataFiles are the SQLite files cfg keeps in its data dir.
func dataFiles(cfg config.Config) []string {
	var names []string
	if cfg.Store == "sqlite" {
		names = append(names, stateFile)
	}
	if cfg.Queue == "sqlite" {
		names = append(names, queueFile)
	}
	return names
}

// close closes what is open, the queue first, and releases the data dir.
func (b *backends) close(log *slog.Logger) {
	var errs []error
	if b.queue != nil {
		if err := b.queue.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close queue: %w", err))
		}
	}
	if b.store != nil {
		if err := b.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	if err := b.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("release data dir: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		log.Error("close backends", slog.Any("err", err))
	}
}
