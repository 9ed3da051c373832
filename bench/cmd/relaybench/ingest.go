package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// IngestResult is the ingest benchmark: the most events relay serve
// accepts (answered 200, so durably queued) with a closed-loop load
// generator, then request latency with an open-loop generator at half
// that rate.
type IngestResult struct {
	Batch       int    `json:"batch_events"`
	BodyBytes   int    `json:"avg_body_bytes"`
	Concurrency int    `json:"concurrency"`
	Seconds     int    `json:"seconds_per_phase"`
	Destination string `json:"destination"`
	// Queue is the queue backend: "sqlite" (embedded) or "jetstream".
	Queue string `json:"queue"`
	// Sustained is accepted events/s at saturation.
	Sustained Stat `json:"sustained_events_per_s"`
	// RelayCores is relay serve's CPU time / wall time at saturation (2 =
	// both cores); LoadgenCores the same for the load generator and the
	// simulator's process together.
	RelayCores   Stat `json:"relay_cores"`
	LoadgenCores Stat `json:"loadgen_cores"`
	// EventsPerRelayCPUSec is accepted events per CPU-second of relay
	// serve: the figure the load generator's share of the cores does not
	// distort.
	EventsPerRelayCPUSec Stat `json:"events_per_relay_cpu_s"`
	// HalfRate is the open-loop rate, events/s (half of each run's
	// sustained figure).
	HalfRate Stat `json:"half_rate_events_per_s"`
	P50ms    Stat `json:"p50_ms"`
	P99ms    Stat `json:"p99_ms"`
	P999ms   Stat `json:"p999_ms"`
	MaxMs    Stat `json:"max_ms"`
	// Failed counts non-200 answers over all runs and phases, by status.
	Failed map[string]int64 `json:"failed"`
	Load   Stat             `json:"load"`
	// Profile is the CPU profile of relay serve at saturation, when taken.
	Profile string `json:"profile,omitempty"`
	// Trace is the execution trace of relay serve at half load, when taken.
	Trace string `json:"trace,omitempty"`
}

type ingestOpts struct {
	relayBin       string
	root           string
	endpoint       string  // Klaviyo base URL relay delivers to during ingest
	simPID         int     // the simulator's process, whose CPU counts with the load generator's
	latencyRate    float64 // events/s of the latency phase; 0: half the run's sustained rate
	destName       string
	runs           int
	dur            time.Duration
	batch          int
	conc           int
	corpusSize     int
	pprofAddr      string   // relayprof's --pprof address, "" for none
	halfAllocsPath string   // allocations during the half-load phase (with pprofAddr)
	queue          string   // "sqlite" or "jetstream"
	env            []string // relay serve's extra environment (the JetStream queue)
	profilePath    string
	tracePath      string
	// halfProfilePath is the CPU profile of the half-load phase.
	halfProfilePath string
}

func benchIngest(ctx context.Context, o ingestOpts, progress io.Writer) (*IngestResult, error) {
	bodies := prebuilt(o.corpusSize, o.batch)
	total := 0
	for _, b := range bodies {
		total += len(b.b)
	}
	res := &IngestResult{Batch: o.batch, BodyBytes: total / len(bodies), Concurrency: o.conc, Seconds: int(o.dur.Seconds()),
		Destination: o.destName, Queue: o.queue, Failed: map[string]int64{}}
	var sus, rcores, lcores, perCPU, half, p50, p99, p999, pmax, load []float64
	for run := range o.runs {
		var extra []string
		if o.pprofAddr != "" {
			extra = []string{"--pprof", o.pprofAddr}
		}
		r, err := startRelay(ctx, o.relayBin, o.root, o.endpoint, o.env, extra...)
		if err != nil {
			return nil, err
		}
		url := r.url("/v1/batch")
		c := newClient(o.conc * 2)
		var cursor atomic.Int64
		next := func() (body, bool) { return bodies[int(cursor.Add(1)-1)%len(bodies)], true }
		// Warm up: connections, page cache, SQLite's first pages.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		closedLoop(wctx, c, url, o.conc, next)
		cancel()

		l0 := loadAvg()
		profDone := make(chan error, 1)
		if o.pprofAddr != "" && run == 0 {
			go func() { profDone <- fetchPprof(ctx, o.pprofAddr, "profile", o.dur, o.profilePath) }()
		} else {
			profDone <- nil
		}
		rc0, sc0 := procCPU(r.pid()), selfCPU()+procCPU(o.simPID)
		sctx, cancel := context.WithTimeout(ctx, o.dur)
		sat := closedLoop(sctx, c, url, o.conc, next)
		cancel()
		rc, sc := procCPU(r.pid())-rc0, selfCPU()+procCPU(o.simPID)-sc0
		if err := <-profDone; err != nil {
			fmt.Fprintf(progress, "ingest: CPU profile: %v\n", err)
		} else if o.pprofAddr != "" && run == 0 {
			res.Profile = o.profilePath
		}
		rate := float64(sat.Accepted) / sat.Elapsed.Seconds()
		if sat.Accepted == 0 {
			r.stop()
			return nil, fmt.Errorf("no event accepted at saturation: %v\n%s", sat.Statuses, tail(r.Logs(), 2000))
		}
		sus = append(sus, rate)
		rcores = append(rcores, rc.Seconds()/sat.Elapsed.Seconds())
		lcores = append(lcores, sc.Seconds()/sat.Elapsed.Seconds())
		perCPU = append(perCPU, float64(sat.Accepted)/rc.Seconds())
		for k, v := range sat.Statuses {
			if k != "200" {
				res.Failed[k] += v
			}
		}
		if ctx.Err() != nil {
			r.stop()
			return nil, ctx.Err()
		}

		// Half load, open loop.
		halfRate := rate / 2
		if o.latencyRate > 0 {
			halfRate = o.latencyRate
		}
		reqRate := halfRate / float64(o.batch)
		traceDone := make(chan error, 3)
		if o.pprofAddr != "" && run == 0 {
			// An execution trace of the half-load phase shows where the
			// latency tail comes from (go tool trace, or -pprof=sched); the
			// CPU and allocation profiles beside it, what the cores did
			// meanwhile. They start with the measured part and end a
			// second after it, so writing them out (a burst of CPU) is not
			// measured.
			window := o.dur + time.Second
			go func() {
				select {
				case <-time.After(latencyWarmup):
				case <-ctx.Done():
				}
				go func() { traceDone <- fetchPprof(ctx, o.pprofAddr, "trace", window, o.tracePath) }()
				go func() { traceDone <- fetchPprof(ctx, o.pprofAddr, "profile", window, o.halfProfilePath) }()
				go func() { traceDone <- fetchPprof(ctx, o.pprofAddr, "allocs", window, o.halfAllocsPath) }()
			}()
		} else {
			traceDone <- nil
			traceDone <- nil
			traceDone <- nil
		}
		hl := openLoop(ctx, c, url, reqRate, latencyWarmup, o.dur, o.conc*4, bodies)
		if err := errors.Join(<-traceDone, <-traceDone, <-traceDone); err != nil {
			fmt.Fprintf(progress, "ingest: trace: %v\n", err)
		} else if o.pprofAddr != "" && run == 0 {
			res.Trace = o.tracePath
		}
		lat := sortedLatencies(hl)
		for k, v := range hl.Statuses {
			if k != "200" {
				res.Failed[k] += v
			}
		}
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		half = append(half, halfRate)
		p50 = append(p50, ms(percentile(lat, 50)))
		p99 = append(p99, ms(percentile(lat, 99)))
		p999 = append(p999, ms(percentile(lat, 99.9)))
		pmax = append(pmax, ms(percentile(lat, 100)))
		l := (l0 + loadAvg()) / 2
		load = append(load, l)
		fmt.Fprintf(progress, "ingest run %d: %.0f events/s accepted (relay %.2f cores, load generator %.2f cores, %d failed); at %.0f events/s: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d requests, %d failed); load %.1f\n",
			run+1, rate, rcores[run], lcores[run], sat.Failed, halfRate, p50[run], p99[run], pmax[run], hl.Requests, hl.Failed, l)
		c.CloseIdleConnections()
		r.stop()
	}
	res.Sustained, res.RelayCores, res.LoadgenCores, res.EventsPerRelayCPUSec = newStat(sus), newStat(rcores), newStat(lcores), newStat(perCPU)
	res.HalfRate, res.P50ms, res.P99ms, res.P999ms, res.MaxMs, res.Load = newStat(half), newStat(p50), newStat(p99), newStat(p999), newStat(pmax), newStat(load)
	return res, nil
}

// latencyWarmup is how long the half-load phase runs at its rate before
// its latencies count. It starts right after the saturation phase, whose
// aftermath (its last requests' commits, GC, delivery catching up on the
// backlog it left) held the phase's worst latencies in its first 100–200 ms
// (execution trace of 2026-11-27: server-side p99 24.7 ms over the whole
// phase, 20.5 ms without its first 0.2 s). That is not half-load
// behaviour; the saturation phase has the same warm-up.
const latencyWarmup = 2 * time.Second

// fetchPprof saves relayprof's CPU profile or execution trace (kind)
// taken over d.
func fetchPprof(ctx context.Context, addr, kind string, d time.Duration, path string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, int(d.Seconds())), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (in *IngestResult) markdown(w io.Writer) {
	queue := "SQLite queue, synchronous=FULL"
	if in.Queue == "jetstream" {
		queue = "NATS JetStream queue at 127.0.0.1:4222, file store, default sync"
	}
	title := in.Queue
	if strings.HasPrefix(in.Destination, "an unreachable") {
		title += ", delivery idle"
	}
	fmt.Fprintf(w, "## Ingest (%s)\n\n`relay serve` (%s) on loopback; the load generator posts `/v1/batch` bodies of %d corpus events (%d bytes on average) over %d keep-alive connections; delivery runs meanwhile to %s. %d s per phase, each after %d s of warm-up at its load.\n\n",
		title, queue, in.Batch, in.BodyBytes, in.Concurrency, in.Destination, in.Seconds, int(latencyWarmup.Seconds()))
	fmt.Fprintf(w, "| Figure | median (min–max) |\n|---|---|\n")
	fmt.Fprintf(w, "| Sustained accepted events/s (closed loop) | %s |\n", fmtStat(in.Sustained, "%.0f"))
	fmt.Fprintf(w, "| relay serve CPU at saturation (cores) | %s |\n", fmtStat(in.RelayCores, "%.2f"))
	fmt.Fprintf(w, "| load generator + simulator CPU (cores) | %s |\n", fmtStat(in.LoadgenCores, "%.2f"))
	fmt.Fprintf(w, "| Events per relay CPU-second | %s |\n", fmtStat(in.EventsPerRelayCPUSec, "%.0f"))
	fmt.Fprintf(w, "| Open-loop rate (half of sustained), events/s | %s |\n", fmtStat(in.HalfRate, "%.0f"))
	fmt.Fprintf(w, "| p50 request latency at half load (ms) | %s |\n", fmtStat(in.P50ms, "%.1f"))
	fmt.Fprintf(w, "| p99 request latency at half load (ms) | %s |\n", fmtStat(in.P99ms, "%.1f"))
	fmt.Fprintf(w, "| p99.9 (ms) | %s |\n", fmtStat(in.P999ms, "%.1f"))
	fmt.Fprintf(w, "| max (ms) | %s |\n", fmtStat(in.MaxMs, "%.1f"))
	fmt.Fprintf(w, "| load average | %s |\n", fmtStat(in.Load, "%.1f"))
	fmt.Fprintf(w, "| failed requests | %v |\n", in.Failed)
	if in.Profile != "" {
		fmt.Fprintf(w, "\nCPU profile of relay serve at saturation (run 1): `%s` (`go tool pprof -top %s`).\n", in.Profile, in.Profile)
	}
	if in.Trace != "" {
		fmt.Fprintf(w, "Execution trace at half load (run 1): `%s` (`go tool trace %s`).\n", in.Trace, in.Trace)
	}
	fmt.Fprintln(w)
}
