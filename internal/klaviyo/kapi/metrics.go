package kapi

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are labelled by endpoint template (bounded: only Config.Limits
// keys get this far), status class and retry reason; never by key or id.
type metrics struct {
	requests  *prometheus.CounterVec   // endpoint, status_class
	throttled *prometheus.CounterVec   // endpoint
	retries   *prometheus.CounterVec   // endpoint, reason
	latency   *prometheus.HistogramVec // endpoint
	waited    *prometheus.CounterVec   // endpoint
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_klaviyo_requests_total",
			Help: "HTTP requests sent to Klaviyo, by endpoint template and status class (2xx, 3xx, 4xx, 429, 5xx, error).",
		}, []string{"endpoint", "status_class"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_klaviyo_throttled_total",
			Help: "429 responses from Klaviyo, by endpoint template.",
		}, []string{"endpoint"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_klaviyo_retries_total",
			Help: "In-call retries, by endpoint template and reason (throttled, retryable).",
		}, []string{"endpoint", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_klaviyo_request_duration_seconds",
			Help:    "Latency of one HTTP attempt to Klaviyo (excluding rate-limit waits), by endpoint template.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
		waited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_klaviyo_ratelimit_wait_seconds_total",
			Help: "Time calls spent waiting for a rate-limit slot or a 429 block, by endpoint template.",
		}, []string{"endpoint"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err == nil {
		m.throttled, err = register(reg, m.throttled)
	}
	if err == nil {
		m.retries, err = register(reg, m.retries)
	}
	if err == nil {
		m.latency, err = register(reg, m.latency)
	}
	if err == nil {
		m.waited, err = register(reg, m.waited)
	}
	return m, err
}

// register registers c, or returns the collector already registered under
// the same name, so several Clients (one per destination) can share a
// registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register klaviyo client metrics: %w", err)
}

// statusClass is the status_class label of a response (status 0: no
// response, a network error or timeout).
func statusClass(status int) string {
	switch {
	case status == 0:
		return "error"
	case status == 429:
		return "429"
	case status >= 100 && status < 600:
		return strconv.Itoa(status/100) + "xx"
	}
	return "other"
}
