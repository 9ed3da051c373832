package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/relaycdp/relay/bench/corpus"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/openapi"
	"github.com/relaycdp/relay/internal/sim"
)

// Bulk endpoints and their item limits per request (DESIGN.md §7,
// internal/klaviyo/openapi/README.md: events 1,000 per job, profiles 10,000 per job).
const (
	eventBulk   = "POST /api/event-bulk-create-jobs"
	profileBulk = "POST /api/profile-bulk-import-jobs"
)

var bulkItems = map[klaviyo.OpKind]struct {
	endpoint string
	max      int
}{
	klaviyo.OpEvent:   {eventBulk, 1000},
	klaviyo.OpProfile: {profileBulk, 10000},
}

// EndpointUse is how delivery used one Klaviyo endpoint in one run.
type EndpointUse struct {
	Endpoint  string  `json:"endpoint"`
	Requests  int     `json:"requests"`
	Accepted  int     `json:"accepted"` // 2xx
	Throttled int     `json:"throttled"`
	Items     int     `json:"items"` // in accepted requests
	PerReq    float64 `json:"items_per_accepted_request"`
}

// DeliveryRun is one delivery run.
type DeliveryRun struct {
	IngestSeconds float64 `json:"ingest_s"`
	// DrainSeconds runs from the first ingest request to the last Klaviyo
	// request that completed the expected items.
	DrainSeconds float64       `json:"drain_s"`
	EventsPerSec float64       `json:"events_per_s"`
	Endpoints    []EndpointUse `json:"endpoints"`
	// WindowBoundSeconds is the least time the simulator's clock-aligned
	// fixed windows allowed for the same requests from the same start.
	WindowBoundSeconds float64 `json:"window_bound_s"`
	// Stored and Duplicates check the simulator's state at the end.
	StoredEvents      int     `json:"stored_events"`
	StoredProfiles    int     `json:"stored_profiles"`
	ResentItems       int     `json:"resent_items"`
	DeadLetters       int     `json:"dead_letters"`
	RetryAfterIgnored int     `json:"retry_after_violations"`
	Load              float64 `json:"load"`
}

// DeliveryResult is the delivery benchmark.
type DeliveryResult struct {
	Events int `json:"input_events"`
	// ExpectedOps counts the Klaviyo operations the corpus maps to, by
	// endpoint.
	ExpectedOps map[string]int `json:"expected_ops"`
	// BoundEventsPerSec is the most input events/s the steady rate limits
	// allow when every request is full: the slowest endpoint's
	// steady_per_min/60 × items per request, scaled by the ops each input
	// event makes on it.
	BoundEventsPerSec float64       `json:"bound_events_per_s"`
	BoundSeconds      float64       `json:"bound_drain_s"`
	BoundNote         string        `json:"bound_note"`
	Runs              []DeliveryRun `json:"runs"`
	Drain             Stat          `json:"drain_s"`
	Achieved          Stat          `json:"events_per_s"`
	Ratio             Stat          `json:"ratio_to_steady_bound"`
	WindowRatio       Stat          `json:"ratio_to_window_bound"`
}

// expectedOps maps the first n corpus events with default settings and
// counts the operations per bulk endpoint.
func expectedOps(n int) (map[string]int, error) {
	s, err := klaviyo.ParseSettings([]byte("{}"))
	if err != nil {
		return nil, err
	}
	g := corpus.New()
	out := map[string]int{}
	var buf []byte
	for range n {
		buf, _ = g.Next(buf[:0])
		ev, err := parseOne(buf)
		if err != nil {
			return nil, err
		}
		res, err := klaviyo.Map(ev, s)
		if err != nil {
			return nil, err
		}
		for _, op := range res.Ops {
			b, ok := bulkItems[op.Kind]
			if !ok {
				return nil, fmt.Errorf("corpus maps to a %s op; the bound does not cover it", op.Kind)
			}
			out[b.endpoint]++
		}
	}
	return out, nil
}

// steadyBound is the fastest drain the steady (per-minute) limits allow
// for the expected ops, in seconds.
func steadyBound(ops map[string]int, limits map[string]openapi.Limit) float64 {
	worst := 0.0
	for _, b := range bulkItems {
		reqs := math.Ceil(float64(ops[b.endpoint]) / float64(b.max))
		worst = max(worst, reqs/(float64(limits[b.endpoint].SteadyPerMin)/60))
	}
	return worst
}

// windowBound is the least time, from start, in which the simulator's
// clock-aligned fixed windows (burst per second, steady per minute) let
// reqs requests through.
func windowBound(start time.Time, reqs int, l openapi.Limit) time.Duration {
	t := start
	sec, min := t.Unix(), t.Unix()/60
	secN, minN := 0, 0
	var last time.Time
	for range reqs {
		for {
			if s := t.Unix(); s != sec {
				sec, secN = s, 0
			}
			if m := t.Unix() / 60; m != min {
				min, minN = m, 0
			}
			switch {
			case minN >= l.SteadyPerMin:
				t = time.Unix((min+1)*60, 0)
				continue
			case secN >= l.BurstPerSecond:
				t = time.Unix(sec+1, 0)
				continue
			}
			break
		}
		secN++
		minN++
		last = t
	}
	return last.Sub(start)
}

type deliveryOpts struct {
	relayBin string
	root     string
	events   int
	runs     int
	batch    int
	conc     int
	timeout  time.Duration
}

// startSim serves an in-process simulator with Klaviyo's rate limits on.
func startSim() (*sim.Sim, string, func(), error) {
	s, err := sim.New(sim.Config{Keys: []string{benchAPIKey}, RateLimits: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, "", nil, err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return s, "http://" + ln.Addr().String(), func() { srv.Close(); s.Close() }, nil
}

// startSimProcess runs `bin sim` (Klaviyo's rate limits on) on a free
// loopback port and returns its endpoint, its pid and a stop function.
//
// The simulator stands in for Klaviyo, whose work does not run on relay's
// cores in production, yet here it validates every bulk request against
// the OpenAPI schema on the same two cores (about half a core while relay
// delivers at Klaviyo's burst rate). It runs at nice 19, so it takes the
// CPU relay leaves idle rather than preempting relay's request handling;
// its CPU is still measured and reported.
func startSimProcess(ctx context.Context, bin string) (string, int, func(), error) {
	cmd := exec.CommandContext(ctx, "nice", "-n", "19", bin, "sim", "--addr", "127.0.0.1:0", "--key", benchAPIKey)
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("start %s sim: %w", bin, err)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if _, url, ok := strings.Cut(lines.Text(), "listening on "); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return strings.TrimSpace(url), cmd.Process.Pid, stop, nil
		}
	}
	stop()
	return "", 0, nil, fmt.Errorf("%s sim exited before listening", bin)
}

func benchDelivery(ctx context.Context, o deliveryOpts, progress io.Writer) (*DeliveryResult, error) {
	ops, err := expectedOps(o.events)
	if err != nil {
		return nil, err
	}
	limits, err := openapi.RateLimits()
	if err != nil {
		return nil, err
	}
	res := &DeliveryResult{Events: o.events, ExpectedOps: ops}
	res.BoundSeconds = steadyBound(ops, limits)
	res.BoundEventsPerSec = float64(o.events) / res.BoundSeconds
	res.BoundNote = fmt.Sprintf("steady limits: %s %d/min × 1,000 events, %s %d/min × 10,000 profiles",
		eventBulk, limits[eventBulk].SteadyPerMin, profileBulk, limits[profileBulk].SteadyPerMin)
	var drain, achieved, ratio, wratio []float64
	for run := range o.runs {
		dr, err := deliveryRun(ctx, o, ops, limits, progress)
		if err != nil {
			return nil, fmt.Errorf("delivery run %d: %w", run+1, err)
		}
		res.Runs = append(res.Runs, *dr)
		drain = append(drain, dr.DrainSeconds)
		achieved = append(achieved, dr.EventsPerSec)
		ratio = append(ratio, dr.EventsPerSec/res.BoundEventsPerSec)
		wratio = append(wratio, dr.WindowBoundSeconds/dr.DrainSeconds)
		fmt.Fprintf(progress, "delivery run %d: %d events drained in %.1f s (%.0f events/s, %.2f of the steady bound %.0f/s, %.2f of the window bound %.1f s); ingest %.1f s; %d dead letters; load %.1f\n",
			run+1, o.events, dr.DrainSeconds, dr.EventsPerSec, ratio[run], res.BoundEventsPerSec, wratio[run], dr.WindowBoundSeconds, dr.IngestSeconds, dr.DeadLetters, dr.Load)
		for _, e := range dr.Endpoints {
			fmt.Fprintf(progress, "  %s: %d requests, %d accepted, %d throttled, %.0f items per accepted request\n", e.Endpoint, e.Requests, e.Accepted, e.Throttled, e.PerReq)
		}
	}
	res.Drain, res.Achieved, res.Ratio, res.WindowRatio = newStat(drain), newStat(achieved), newStat(ratio), newStat(wratio)
	return res, nil
}

func deliveryRun(ctx context.Context, o deliveryOpts, ops map[string]int, limits map[string]openapi.Limit, progress io.Writer) (*DeliveryRun, error) {
	s, url, closeSim, err := startSim()
	if err != nil {
		return nil, err
	}
	defer closeSim()
	r, err := startRelay(ctx, o.relayBin, o.root, url, nil)
	if err != nil {
		return nil, err
	}
	defer r.stop()
	l0 := loadAvg()

	dr := &DeliveryRun{}
	c := newClient(o.conc)
	defer c.CloseIdleConnections()
	st := newStream(o.events, o.batch)
	t0 := time.Now()
	in := closedLoop(ctx, c, r.url("/v1/batch"), o.conc, st.next)
	dr.IngestSeconds = time.Since(t0).Seconds()
	if in.Failed > 0 || in.Accepted != int64(o.events) {
		return nil, fmt.Errorf("ingest: %d of %d events accepted, failures %v", in.Accepted, o.events, in.Statuses)
	}

	// Wait until relay's queue is empty (every event delivered or
	// dead-lettered) and the simulator has applied every bulk job.
	deadline := time.Now().Add(o.timeout)
	for {
		depth, err := r.metric(ctx, "relay_queue_depth")
		if err == nil && depth == 0 {
			// Depth is read at most once a second: confirm nothing is
			// being delivered or waiting for a retry either.
			busy, err2 := r.metric(ctx, "relay_queue_executing")
			retry, err3 := r.metric(ctx, "relay_queue_retry_waiting")
			if err2 == nil && err3 == nil && busy+retry == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("not drained after %s: queue depth %v (%v); delivered %v of %v\n%s",
				o.timeout, depth, err, itemsByEndpoint(s.Requests()), ops, tail(r.Logs(), 2000))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err := waitJobs(ctx, s); err != nil {
		return nil, err
	}
	dead, _ := r.metric(ctx, "relay_dead_letters")
	dr.DeadLetters = int(dead)
	recs := s.Requests()
	var last time.Time
	byEP := map[string]*EndpointUse{}
	for _, rec := range recs {
		if rec.Time.After(last) && rec.Status >= 200 && rec.Status < 300 && strings.HasPrefix(rec.Endpoint, "POST ") {
			last = rec.Time
		}
		e := byEP[rec.Endpoint]
		if e == nil {
			e = &EndpointUse{Endpoint: rec.Endpoint}
			byEP[rec.Endpoint] = e
		}
		e.Requests++
		switch {
		case rec.Status >= 200 && rec.Status < 300:
			e.Accepted++
			e.Items += max(rec.Items, 1)
		case rec.Status == 429:
			e.Throttled++
		}
	}
	for _, e := range byEP {
		if e.Accepted > 0 {
			e.PerReq = float64(e.Items) / float64(e.Accepted)
		}
		dr.Endpoints = append(dr.Endpoints, *e)
	}
	sort.Slice(dr.Endpoints, func(i, j int) bool { return dr.Endpoints[i].Endpoint < dr.Endpoints[j].Endpoint })
	dr.DrainSeconds = last.Sub(t0).Seconds()
	dr.EventsPerSec = float64(o.events) / dr.DrainSeconds
	for ep, n := range ops {
		var maxItems int
		for _, b := range bulkItems {
			if b.endpoint == ep {
				maxItems = b.max
			}
		}
		w := windowBound(t0, (n+maxItems-1)/maxItems, limits[ep])
		dr.WindowBoundSeconds = max(dr.WindowBoundSeconds, w.Seconds())
	}
	got := itemsByEndpoint(recs)
	for ep, want := range ops {
		dr.ResentItems += max(got[ep]-want, 0)
	}
	dr.RetryAfterIgnored = len(sim.RetryAfterViolations(recs))

	// Check what Klaviyo holds.
	state := s.State()
	type key struct{ metric, id, profile string }
	seen := map[key]bool{}
	for _, e := range state.Events {
		seen[key{e.Metric, e.UniqueID, e.ProfileID}] = true
	}
	dr.StoredEvents, dr.StoredProfiles = len(seen), len(state.Profiles)
	if want := ops[eventBulk]; dr.StoredEvents != want {
		fmt.Fprintf(progress, "delivery: the simulator holds %d distinct events, %d expected\n", dr.StoredEvents, want)
	}
	dr.Load = (l0 + loadAvg()) / 2
	return dr, nil
}

// waitJobs waits until the simulator has applied every bulk job.
func waitJobs(ctx context.Context, s *sim.Sim) error {
	deadline := time.Now().Add(time.Minute)
	for {
		pending := 0
		for _, j := range s.State().Jobs {
			if j.Status != "complete" {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d simulator jobs still pending", pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// itemsByEndpoint sums the items of accepted requests per endpoint (a
// single call counts one).
func itemsByEndpoint(recs []sim.RequestRecord) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		if r.Status >= 200 && r.Status < 300 {
			out[r.Endpoint] += max(r.Items, 1)
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func (d *DeliveryResult) markdown(w io.Writer) {
	fmt.Fprintf(w, "## Delivery\n\n%d corpus events ingested at full speed into `relay serve` (default delivery settings), delivered to the simulator (in process, Klaviyo's rate limits on). They map to %v operations. The drain time runs from the first ingest request to the last accepted Klaviyo request.\n\n",
		d.Events, d.ExpectedOps)
	fmt.Fprintf(w, "Bound: %s → at most %.0f input events/s, %.1f s for this corpus. Klaviyo's windows are fixed and clock-aligned, so a run shorter than a few minutes can beat the steady bound by using a partial minute's budget at burst speed; the window bound is the least time those windows allow for the same requests from the run's actual start (it varies with the start's second within the minute).\n\n",
		d.BoundNote, d.BoundEventsPerSec, d.BoundSeconds)
	fmt.Fprintf(w, "| Figure | median (min–max) |\n|---|---|\n")
	fmt.Fprintf(w, "| Time to drain (s) | %s |\n", fmtStat(d.Drain, "%.1f"))
	fmt.Fprintf(w, "| Achieved input events/s | %s |\n", fmtStat(d.Achieved, "%.0f"))
	fmt.Fprintf(w, "| Achieved / steady bound | %s |\n", fmtStat(d.Ratio, "%.2f"))
	fmt.Fprintf(w, "| Window bound / drain time | %s |\n", fmtStat(d.WindowRatio, "%.2f"))
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| Run | Endpoint | requests | accepted | throttled (429) | items per accepted request |\n|---|---|---|---|---|---|\n")
	for i, r := range d.Runs {
		for _, e := range r.Endpoints {
			fmt.Fprintf(w, "| %d | %s | %d | %d | %d | %.0f |\n", i+1, e.Endpoint, e.Requests, e.Accepted, e.Throttled, e.PerReq)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| Run | ingest (s) | drain (s) | window bound (s) | events stored | profiles stored | items resent | dead letters | Retry-After violations | load |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for i, r := range d.Runs {
		fmt.Fprintf(w, "| %d | %.1f | %.1f | %.1f | %d | %d | %d | %d | %d | %.1f |\n", i+1, r.IngestSeconds, r.DrainSeconds, r.WindowBoundSeconds,
			r.StoredEvents, r.StoredProfiles, r.ResentItems, r.DeadLetters, r.RetryAfterIgnored, r.Load)
	}
	fmt.Fprintln(w)
}
