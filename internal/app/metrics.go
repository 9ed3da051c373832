package app

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/store"
)

// stateCollector exports the queue's and the store's state as gauges at
// scrape time, reading each at most once a second however often it is
// scraped.
type stateCollector struct {
	q interface {
		Stats(ctx context.Context) (queue.Stats, error)
	}
	dl store.DeadLetterReader

	depth, oldest, executing, failed, dead *prometheus.Desc

	mu      sync.Mutex
	at      time.Time
	stats   queue.Stats
	letters int64
}

func newStateCollector(q interface {
	Stats(ctx context.Context) (queue.Stats, error)
}, dl store.DeadLetterReader) *stateCollector {
	return &stateCollector{
		q: q, dl: dl,
		depth:     prometheus.NewDesc("relay_queue_depth", "Events waiting in the queue (not yet delivered or dead-lettered), by destination.", []string{"dest"}, nil),
		oldest:    prometheus.NewDesc("relay_queue_oldest_age_seconds", "Age of the oldest event waiting in the queue.", nil, nil),
		executing: prometheus.NewDesc("relay_queue_executing", "Events being delivered right now.", nil, nil),
		failed:    prometheus.NewDesc("relay_queue_retry_waiting", "Events waiting for a retry after a failed attempt.", nil, nil),
		dead:      prometheus.NewDesc("relay_dead_letters", "Dead letters waiting for a replay.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.depth, c.oldest, c.executing, c.failed, c.dead} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if s, err := c.q.Stats(ctx); err == nil {
			c.stats = s
		}
		if n, err := c.dl.CountDeadLetters(ctx, ""); err == nil {
			c.letters = n
		}
		c.at = time.Now()
	}
	for dest, n := range c.stats.ByDest {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n), dest)
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, c.stats.OldestAge.Seconds())
	ch <- prometheus.MustNewConstMetric(c.executing, prometheus.GaugeValue, float64(c.stats.Executing))
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, float64(c.stats.Failed))
	ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(c.letters))
}
