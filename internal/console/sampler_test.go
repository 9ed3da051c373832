package console

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Every destination's request counter reaches the overview's endpoint
// table, by the naming convention: Klaviyo's by endpoint (its 429s
// counted apart), the Webhook's as one row with its 429s as throttled;
// a counter without a destination label (the gateway's) stays out.
func TestOverviewReadsEveryDestinationsRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	kl := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_klaviyo_requests_total"}, []string{"destination", "endpoint", "status_class"})
	kt := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_klaviyo_throttled_total"}, []string{"destination", "endpoint"})
	wh := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_webhook_requests_total"}, []string{"destination", "status_class"})
	gw := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_gateway_requests_total"}, []string{"route", "status_class"})
	reg.MustRegister(kl, kt, wh, gw)
	kl.WithLabelValues("klaviyo", "POST /api/events", "2xx").Add(3)
	kl.WithLabelValues("klaviyo", "POST /api/events", "429").Add(1)
	kt.WithLabelValues("klaviyo", "POST /api/events").Add(1)
	wh.WithLabelValues("hook", "2xx").Add(5)
	wh.WithLabelValues("hook", "429").Add(2)
	gw.WithLabelValues("/v1/batch", "2xx").Add(100)

	v, err := readMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if v.Requests != 11 || v.Throttled != 3 {
		t.Errorf("requests %v, throttled %v; want 11 and 3", v.Requests, v.Throttled)
	}
	if len(v.Endpoints) != 2 {
		t.Fatalf("rows %+v", v.Endpoints)
	}
	hook, k := v.Endpoints[0], v.Endpoints[1]
	if hook.Dest != "hook" || hook.Endpoint != "all requests" || hook.Total != 7 || hook.Throttled != 2 || hook.ByClass["2xx"] != 5 {
		t.Errorf("webhook row %+v", hook)
	}
	if k.Dest != "klaviyo" || k.Endpoint != "POST /api/events" || k.Total != 4 || k.Throttled != 1 {
		t.Errorf("klaviyo row %+v", k)
	}
}
