package delivery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/store"
)

// Metrics are delivery's Prometheus metrics. A nil *Metrics records
// nothing, so tests need not build one.
type Metrics struct {
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers delivery's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_delivery_events_total",
			Help: "Events settled by delivery, by destination and outcome (delivered, retrying, dead, skipped).",
		}, []string{"destination", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_delivery_latency_seconds",
			Help:    "Time from ingest to an event's delivery.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
		}, []string{"destination"}),
	}
	reg.MustRegister(m.outcomes, m.latency)
	return m
}

func (m *Metrics) outcome(dest string, s store.Status, age time.Duration) {
	if m == nil {
		return
	}
	m.outcomes.WithLabelValues(dest, string(s)).Inc()
	if s == store.StatusDelivered {
		m.latency.WithLabelValues(dest).Observe(age.Seconds())
	}
}
