package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// depthGate answers "is the queue over MaxQueueDepth?" from a reading at
// most ttl old. One request refreshes a stale reading while the others keep
// using the previous one, so a slow Depth call never stalls ingest; only
// the very first request waits for a reading.
type depthGate struct {
	src QueueDepth
	max int64
	ttl time.Duration
	now func() time.Time
	log *slog.Logger
	// timeout bounds one Depth call. The call is detached from the
	// request that happens to make it, whose client may go away.
	timeout time.Duration

	mu         sync.Mutex
	have       bool      // a reading exists
	over       bool      // the last reading was over max
	at         time.Time // when it was taken
	refreshing bool      // a request is taking a new reading
	first      chan struct{}
}

// Over reports whether the queue is over the limit. A failing Depth fails
// open (not over): Enqueue is the authority on whether the queue works,
// and refusing all traffic because a statistic is unavailable would turn
// a monitoring fault into an outage.
func (d *depthGate) Over(ctx context.Context) bool {
	d.mu.Lock()
	if d.have && (d.refreshing || d.now().Sub(d.at) < d.ttl) {
		over := d.over
		d.mu.Unlock()
		return over
	}
	if !d.have && d.refreshing {
		// Wait for the first reading rather than guessing.
		ch := d.first
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
		d.mu.Lock()
		over := d.over
		d.mu.Unlock()
		return over
	}
	d.refreshing = true
	if !d.have && d.first == nil {
		d.first = make(chan struct{})
	}
	d.mu.Unlock()

	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.timeout)
	n, err := d.src.Depth(dctx)
	cancel()

	d.mu.Lock()
	defer d.mu.Unlock()
	d.refreshing = false
	d.at = d.now()
	if err != nil {
		d.log.LogAttrs(ctx, slog.LevelWarn, "gateway: queue depth unavailable; not throttling", slog.String("err", err.Error()))
		// Keep the previous verdict (false if none) until the next refresh.
	} else {
		d.over = n > d.max
	}
	if !d.have {
		d.have = true
		close(d.first)
	}
	return d.over
}
