package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series. Labels are bounded: route
// paths from a fixed list, status codes, configured source and destination
// names, the six event types (anything else is "other") and spec's stable
// error codes. Never user ids, message ids or keys.
type metrics struct {
	requests   *prometheus.CounterVec   // path, code
	latency    *prometheus.HistogramVec // path
	bodyBytes  *prometheus.HistogramVec // path
	received   *prometheus.CounterVec   // source, type
	accepted   *prometheus.CounterVec   // source, type
	rejected   *prometheus.CounterVec   // source, type, code
	unrouted   *prometheus.CounterVec   // source
	enqueued   *prometheus.CounterVec   // source, dest
	recordErrs prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_gateway_requests_total",
			Help: "Ingest HTTP requests by route and status code.",
		}, []string{"path", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_gateway_request_duration_seconds",
			Help:    "Ingest request latency, including the wait for the queue commit.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"path"}),
		bodyBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_gateway_request_body_bytes",
			Help:    "Decompressed request body sizes of readable bodies.",
			Buckets: prometheus.ExponentialBuckets(256, 4, 8), // 256 B … 4 MB
		}, []string{"path"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_gateway_events_received_total",
			Help: "Events in authenticated, readable requests.",
		}, []string{"source", "type"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_gateway_events_accepted_total",
			Help: "Valid events committed to the queue (or accepted with no destination) and acknowledged.",
		}, []string{"source", "type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_gateway_events_rejected_total",
			Help: "Events dropped for a per-event problem (the request still got 200).",
		}, []string{"source", "type", "code"}),
		unrouted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_gateway_events_unrouted_total",
			Help: "Accepted events whose source feeds no destination (nothing enqueued).",
		}, []string{"source"}),
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_gateway_messages_enqueued_total",
			Help: "Queue messages committed (one per event and destination).",
		}, []string{"source", "dest"}),
		recordErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_gateway_rejection_record_errors_total",
			Help: "Failures to record rejected events for the delivery log.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.bodyBytes, m.received,
		m.accepted, m.rejected, m.unrouted, m.enqueued, m.recordErrs} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register gateway metrics (one registry per gateway): %w", err)
		}
	}
	return m, nil
}

// typeLabel bounds the type label: rejected events may carry any string.
func typeLabel(t string) string { return typeName(typeIndex(t)) }

// codeLabel bounds the rejection code label the same way: spec's codes are
// short snake_case identifiers; anything else is "other".
func codeLabel(c string) string {
	if c == "" || len(c) > 40 {
		return "other"
	}
	for _, r := range c {
		if (r < 'a' || r > 'z') && r != '_' && (r < '0' || r > '9') {
			return "other"
		}
	}
	return c
}
