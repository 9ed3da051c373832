package delivery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/store"
)

// Metrics are delivery's Prometheus metrics. A nil *Metrics records
// nothing, so tests need not build one.
type Metrics struct {
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	items    *prometheus.HistogramVec
}

// NewMetrics registers delivery's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_delivery_events_total",
			Help: "Events settled by delivery, by destination and outcome (delivered, retrying, dead, skipped).",
		}, []string{"dest", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_delivery_latency_seconds",
			Help:    "Time from ingest to an event's delivery.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
		}, []string{"dest"}),
		items: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_delivery_items_per_request",
			Help:    "Operations carried by one Klaviyo request, by endpoint: how well bulk endpoints are used.",
			Buckets: []float64{1, 2, 5, 10, 50, 100, 250, 500, 1000, 5000, 10000},
		}, []string{"endpoint"}),
	}
	reg.MustRegister(m.outcomes, m.latency, m.items)
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

func (m *Metrics) request(req klaviyo.Request, items int, err error) {
	if m == nil || err != nil {
		return
	}
	m.items.WithLabelValues(req.Method + " " + endpointOf(req.Path)).Observe(float64(items))
}

// endpointOf keeps metric labels bounded: list ids become {id}.
func endpointOf(path string) string {
	const lists = "/api/lists/"
	if len(path) > len(lists) && path[:len(lists)] == lists {
		return "/api/lists/{id}/relationships/profiles"
	}
	return path
}
