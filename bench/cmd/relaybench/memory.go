package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// MemoryPoint is relay serve's memory with a number of events queued.
type MemoryPoint struct {
	Queued int64   `json:"queued"`
	RSSMB  float64 `json:"rss_mb"`
	PeakMB float64 `json:"peak_rss_mb"`
	DataMB float64 `json:"data_dir_mb"`
	Load   float64 `json:"load"`
}

// MemoryResult is resident memory of relay serve as undelivered events
// pile up (Klaviyo unreachable).
type MemoryResult struct {
	Events    int           `json:"events"`
	IdleRSSMB float64       `json:"idle_rss_mb"`
	Points    []MemoryPoint `json:"points"`
	// GrowthBytesPerEvent is (RSS at the last point − RSS at the first) /
	// (events between them).
	GrowthBytesPerEvent float64 `json:"growth_bytes_per_event"`
	IngestEventsPerSec  float64 `json:"ingest_events_per_s"`
}

type memoryOpts struct {
	relayBin string
	root     string
	events   int
	batch    int
	conc     int
}

func benchMemory(ctx context.Context, o memoryOpts, progress io.Writer) (*MemoryResult, error) {
	// Klaviyo is down: a loopback port nobody listens on, so every event
	// stays queued (delivery retries with backoff).
	down, err := freeAddr()
	if err != nil {
		return nil, err
	}
	r, err := startRelay(ctx, o.relayBin, o.root, "http://"+down, nil)
	if err != nil {
		return nil, err
	}
	defer r.stop()
	time.Sleep(time.Second)
	res := &MemoryResult{Events: o.events}
	idle, _ := r.rssKB()
	res.IdleRSSMB = mb(idle)
	c := newClient(o.conc)
	defer c.CloseIdleConnections()
	st := newStream(o.events, o.batch)
	var marks []int
	for _, m := range []int{100_000, 250_000, 500_000, 750_000, 1_000_000, 2_000_000, 5_000_000} {
		if m < o.events {
			marks = append(marks, m)
		}
	}
	marks = append(marks, o.events)
	sent := 0
	var ingestTime time.Duration
	for _, m := range marks {
		seg := &stream{g: st.g, left: m - sent, batch: o.batch}
		t0 := time.Now()
		in := closedLoop(ctx, c, r.url("/v1/batch"), o.conc, seg.next)
		ingestTime += time.Since(t0)
		if in.Failed > 0 {
			return nil, fmt.Errorf("ingest: %d requests failed: %v", in.Failed, in.Statuses)
		}
		sent = m
		// Let group commit and delivery's first failed claims settle.
		time.Sleep(3 * time.Second)
		depth, err := r.metric(ctx, "relay_queue_depth")
		if err != nil {
			return nil, err
		}
		now, peak := r.rssKB()
		p := MemoryPoint{Queued: int64(depth), RSSMB: mb(now), PeakMB: mb(peak), DataMB: float64(r.dataBytes()) / (1 << 20), Load: loadAvg()}
		res.Points = append(res.Points, p)
		fmt.Fprintf(progress, "memory: %d events sent, %d queued: RSS %.0f MB (peak %.0f MB), data dir %.0f MB, load %.1f\n",
			sent, p.Queued, p.RSSMB, p.PeakMB, p.DataMB, p.Load)
	}
	res.IngestEventsPerSec = float64(o.events) / ingestTime.Seconds()
	if n := len(res.Points); n > 1 {
		a, b := res.Points[0], res.Points[n-1]
		res.GrowthBytesPerEvent = (b.RSSMB - a.RSSMB) * (1 << 20) / float64(b.Queued-a.Queued)
	}
	return res, nil
}

func (m *MemoryResult) markdown(w io.Writer) {
	fmt.Fprintf(w, "## Memory\n\n`relay serve` with Klaviyo unreachable (delivery retrying), fed %d corpus events; RSS is /proc/PID/status VmRSS 3 s after each step (peak: VmHWM). Idle RSS before ingest: %.0f MB. Ingest ran at %.0f events/s.\n\n",
		m.Events, m.IdleRSSMB, m.IngestEventsPerSec)
	fmt.Fprintf(w, "| Events queued | RSS (MB) | peak RSS (MB) | data dir (MB) | load |\n|---|---|---|---|---|\n")
	for _, p := range m.Points {
		fmt.Fprintf(w, "| %d | %.0f | %.0f | %.0f | %.1f |\n", p.Queued, p.RSSMB, p.PeakMB, p.DataMB, p.Load)
	}
	fmt.Fprintf(w, "\nGrowth from the first to the last step: %.0f bytes of RSS per queued event.\n\n", m.GrowthBytesPerEvent)
}
