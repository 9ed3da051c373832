package console

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The overview's numbers come from the Prometheus registry (cumulative
// counters), the queue's stats and the store's counts. A sample is taken
// whenever the overview is rendered or refreshes itself (every few
// seconds while open) and kept per minute in a small ring: the last sample
// of each minute wins, and a minute's rate is the counter's growth since
// the previous kept minute, spread over the minutes between. So rates stay
// right across minutes nobody looked at (they show as an average), and
// the queue depth is known at the minutes the console was open.

const ringMinutes = 60

// counters are the cumulative totals a sample holds.
type counters struct {
	Received  float64 // relay_gateway_events_received_total
	Accepted  float64 // relay_gateway_events_accepted_total
	Rejected  float64 // relay_gateway_events_rejected_total
	Delivered float64 // relay_delivery_events_total{outcome="delivered"}
	Skipped   float64
	Dead      float64
	Retrying  float64
	Requests  float64 // every destination's relay_<type>_requests_total (isDestRequests)
	Throttled float64 // relay_klaviyo_throttled_total, other destinations' 429 class
	Retries   float64 // relay_klaviyo_retries_total
}

type sample struct {
	Minute time.Time
	At     time.Time
	counters
	HasGauges   bool // false for the baseline taken before any stats were read
	Depth       int64
	Oldest      time.Duration
	DeadLetters int64
}

type sampler struct {
	mu   sync.Mutex
	base *sample  // the first sample: the base of the first kept minute's rate
	ring []sample // oldest first, one per minute
}

func newSampler() *sampler { return &sampler{} }

// add keeps s as its minute's sample and forgets minutes older than the
// ring (plus one, the base of the oldest rate).
func (p *sampler) add(s sample) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.Minute = s.At.Truncate(time.Minute)
	if p.base == nil {
		b := s
		p.base = &b
	}
	if n := len(p.ring); n > 0 && !p.ring[n-1].Minute.Before(s.Minute) {
		if s.Minute.Equal(p.ring[n-1].Minute) {
			p.ring[n-1] = s
		}
		return
	}
	p.ring = append(p.ring, s)
	cut := s.Minute.Add(-(ringMinutes + 1) * time.Minute)
	for len(p.ring) > 0 && p.ring[0].Minute.Before(cut) {
		p.ring = p.ring[1:]
		p.base = nil // the oldest kept minute's base is gone with it
	}
}

// snapshot returns the kept minutes and, while the first kept minute is
// the first minute ever sampled, the first sample as the base of its rate
// (so a partial first minute already shows what happened since start).
func (p *sampler) snapshot() (base *sample, ring []sample) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ring = append([]sample(nil), p.ring...)
	if p.base != nil && len(ring) > 0 && p.base.At.Before(ring[0].At) {
		b := *p.base
		return &b, ring
	}
	return nil, ring
}

// metricsView is the registry's relay_* families, read once per render.
type metricsView struct {
	counters
	// Endpoints rows: each destination's requests by endpoint and status
	// class, with 429s and in-call retries (see isDestRequests).
	Endpoints []endpointRow
	// Outcomes are delivery outcomes per destination.
	Outcomes map[string]map[string]float64
}

type endpointRow struct {
	Dest, Endpoint string
	ByClass        map[string]float64
	Total          float64
	Throttled      float64
	Retries        float64
}

// statusClasses are the status_class label values, in column order.
func statusClasses() []string { return []string{"2xx", "4xx", "429", "5xx", "error"} }

// isDestRequests: a destination's request counter, by the convention
// every destination follows (docs/DEVELOPING.md): relay_<type>_requests_total
// registered on its Env.Metrics (so labelled destination), with a
// status_class label and, when it has several, an endpoint label.
func isDestRequests(name string, labels map[string]string) bool {
	_, dest := labels["destination"]
	_, class := labels["status_class"]
	return dest && class && strings.HasPrefix(name, "relay_") && strings.HasSuffix(name, "_requests_total")
}

func readMetrics(g prometheus.Gatherer) (metricsView, error) {
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		return metricsView{}, fmt.Errorf("gather metrics: %w", err)
	}
	v := metricsView{Outcomes: map[string]map[string]float64{}}
	rows := map[[2]string]*endpointRow{}
	row := func(dest, ep string) *endpointRow {
		k := [2]string{dest, ep}
		if rows[k] == nil {
			rows[k] = &endpointRow{Dest: dest, Endpoint: ep, ByClass: map[string]float64{}}
		}
		return rows[k]
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			val := m.GetCounter().GetValue()
			l := make(map[string]string, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetName() {
			case "relay_gateway_events_received_total":
				v.Received += val
			case "relay_gateway_events_accepted_total":
				v.Accepted += val
			case "relay_gateway_events_rejected_total":
				v.Rejected += val
			case "relay_delivery_events_total":
				switch l["outcome"] {
				case "delivered":
					v.Delivered += val
				case "skipped":
					v.Skipped += val
				case "dead":
					v.Dead += val
				case "retrying":
					v.Retrying += val
				}
				if v.Outcomes[l["destination"]] == nil {
					v.Outcomes[l["destination"]] = map[string]float64{}
				}
				v.Outcomes[l["destination"]][l["outcome"]] += val
			case "relay_klaviyo_throttled_total":
				v.Throttled += val
				row(l["destination"], l["endpoint"]).Throttled += val
			case "relay_klaviyo_retries_total":
				v.Retries += val
				row(l["destination"], l["endpoint"]).Retries += val
			default:
				if !isDestRequests(mf.GetName(), l) {
					continue
				}
				v.Requests += val
				ep := l["endpoint"]
				if ep == "" {
					ep = "all requests"
				}
				r := row(l["destination"], ep)
				r.ByClass[l["status_class"]] += val
				r.Total += val
				if l["status_class"] == "429" && mf.GetName() != "relay_klaviyo_requests_total" {
					// Klaviyo counts its 429s apart (relay_klaviyo_throttled_total).
					v.Throttled += val
					r.Throttled += val
				}
			}
		}
	}
	for _, r := range rows {
		v.Endpoints = append(v.Endpoints, *r)
	}
	sort.Slice(v.Endpoints, func(i, j int) bool {
		a, b := v.Endpoints[i], v.Endpoints[j]
		if a.Dest != b.Dest {
			return a.Dest < b.Dest
		}
		return a.Endpoint < b.Endpoint
	})
	return v, nil
}

// takeSample reads everything the overview shows and records a sample.
func (c *Console) takeSample(ctx context.Context) (sample, metricsView, error) {
	mv, err := readMetrics(c.deps.Metrics)
	if err != nil {
		return sample{}, mv, err
	}
	s := sample{At: c.cfg.Now(), counters: mv.counters, HasGauges: true}
	st, err := c.deps.Queue.Stats(ctx)
	if err != nil {
		return s, mv, fmt.Errorf("queue stats: %w", err)
	}
	s.Depth, s.Oldest = st.Depth, st.OldestAge
	if s.DeadLetters, err = c.deps.DeadLetters.CountDeadLetters(ctx, ""); err != nil {
		return s, mv, fmt.Errorf("count dead letters: %w", err)
	}
	c.samples.add(s)
	return s, mv, nil
}

// rate is one minute's growth of a counter.
type rate struct {
	Minute time.Time
	In     float64 // events received
	Out    float64 // events delivered
	Dead   float64 // events dead-lettered
	Reqs   float64 // destination requests
	T429   float64 // Klaviyo 429s
	Retry  float64 // retries (in-call and delivery retries)
}

// rates turns the ring into per-minute rates: each kept minute's growth
// since the previous kept minute (or, for the first, since base), divided
// by the minutes between (at least one: a partial minute counts as one).
func rates(base *sample, ring []sample) []rate {
	var out []rate
	for i := range ring {
		var a sample
		switch {
		case i > 0:
			a = ring[i-1]
		case base != nil:
			a = *base
		default:
			continue
		}
		b := ring[i]
		mins := b.Minute.Sub(a.Minute).Minutes()
		if mins < 1 {
			mins = 1
		}
		d := func(x, y float64) float64 { return max(0, y-x) / mins }
		out = append(out, rate{
			Minute: b.Minute,
			In:     d(a.Received, b.Received),
			Out:    d(a.Delivered, b.Delivered),
			Dead:   d(a.Dead, b.Dead),
			Reqs:   d(a.Requests, b.Requests),
			T429:   d(a.Throttled, b.Throttled),
			Retry:  d(a.Retries+a.Retrying, b.Retries+b.Retrying),
		})
	}
	return out
}

// RunSampler records an overview sample every interval until ctx ends, so
// the last hour's charts are complete even for minutes nobody had the
// console open.
func (c *Console) RunSampler(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, _, err := c.takeSample(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("console sample", slog.Any("err", err))
		}
	}
}
