// Command relaybench is `make bench`: it measures Relay's transform, ingest,
// delivery and memory figures (issue 7) on this machine and writes them to
// build/bench/results.{json,md}, printing the Markdown table too.
//
// It runs `relay serve` as a separate process on loopback (built from
// ./cmd/relay unless -relay names a binary), drives it with its own load
// generator (net/http, keep-alive, many goroutines) posting batches of the
// benchmark corpus (bench/corpus, a port of bench/gen-corpus.js), and runs
// the Klaviyo simulator in process with Klaviyo's rate limits on.
//
// Defaults take about 8–10 minutes on 2 cores; -quick takes about 2. See
// docs/BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("relaybench", flag.ExitOnError)
	var (
		relayBin      = fs.String("relay", "", "relay binary (default: go build ./cmd/relay into -out)")
		out           = fs.String("out", "build/bench", "results directory")
		only          = fs.String("only", "transform,ingest,ingest-idle,ingest-jetstream,delivery,memory", "comma-separated benchmarks to run (ingest-idle: ingest with Klaviyo unreachable, so delivery only retries; ingest-jetstream needs NATS at -nats)")
		natsURL       = fs.String("nats", "nats://127.0.0.1:4222", "NATS server for ingest-jetstream")
		runs          = fs.Int("runs", 3, "runs of the transform and ingest benchmarks")
		transformTime = fs.Duration("transform-time", time.Second, "time per transform run")
		transformN    = fs.Int("transform-events", 100000, "corpus events for the whole-process `relay transform` figure")
		ingestTime    = fs.Duration("ingest-time", 10*time.Second, "time per ingest phase (saturation, then half load)")
		ingestBatch   = fs.Int("ingest-batch", 100, "events per /v1/batch request")
		ingestConc    = fs.Int("ingest-conc", 16, "concurrent connections at saturation")
		latencyRate   = fs.Float64("latency-rate", 0, "events/s of the ingest latency phase (0: half the run's sustained rate); a fixed rate compares builds at the same load")
		ingestDest    = fs.String("ingest-dest", "sim", "where relay delivers during the ingest benchmark: sim (relay sim in its own process, rate limits on) or down (an unreachable port: delivery only retries)")
		ingestCorpus  = fs.Int("ingest-corpus", 50000, "distinct corpus events the ingest load cycles through")
		deliveryN     = fs.Int("delivery-events", 200000, "events for the delivery benchmark")
		deliveryRuns  = fs.Int("delivery-runs", 2, "runs of the delivery benchmark")
		memoryN       = fs.Int("memory-events", 1000000, "events queued for the memory benchmark")
		profile       = fs.Bool("profile", false, "run relay serve as bench/cmd/relayprof and save a CPU profile of the first ingest saturation phase to -out/ingest-cpu.pprof")
		quick         = fs.Bool("quick", false, "small run: 1 run each, 5 s phases, 20,000 delivery events, 200,000 memory events")
	)
	_ = fs.Parse(os.Args[1:])
	if *quick {
		*runs, *ingestTime, *deliveryN, *deliveryRuns, *memoryN = 1, 5*time.Second, 20000, 1, 200000
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		want[strings.TrimSpace(s)] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	progress := os.Stderr

	res := &Results{Machine: machine(), Flags: map[string]string{}}
	fs.Visit(func(f *flag.Flag) { res.Flags[f.Name] = f.Value.String() })
	fmt.Fprintf(progress, "relaybench: %d CPUs (%s), %s, load %.2f\n", res.Machine.CPUs, res.Machine.CPUModel, res.Machine.Go, res.Machine.LoadAtStart)

	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "relaybench:", err)
		return 1
	}
	root, err := os.MkdirTemp("", "relaybench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "relaybench:", err)
		return 1
	}
	defer os.RemoveAll(root)

	needRelay := want["transform"] || want["ingest"] || want["ingest-idle"] || want["ingest-jetstream"] || want["delivery"] || want["memory"]
	pprofAddr := ""
	if needRelay {
		if *relayBin == "" {
			*relayBin = filepath.Join(*out, "relay")
			if err := goBuild(*relayBin, "./cmd/relay"); err != nil {
				fmt.Fprintln(os.Stderr, "relaybench:", err)
				return 1
			}
		}
	}
	ingestBin := *relayBin
	if *profile && want["ingest"] {
		ingestBin = filepath.Join(*out, "relayprof")
		if err := goBuild(ingestBin, "./bench/cmd/relayprof"); err != nil {
			fmt.Fprintln(os.Stderr, "relaybench:", err)
			return 1
		}
		if pprofAddr, err = freeAddr(); err != nil {
			fmt.Fprintln(os.Stderr, "relaybench:", err)
			return 1
		}
	}

	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "relaybench: %s: %v\n", what, err)
		return 1
	}
	if want["transform"] {
		if res.Transform, err = benchTransform(*runs, *transformTime, progress); err != nil {
			return fail("transform", err)
		}
		if res.Transform.Process, err = benchTransformProcess(ctx, *relayBin, root, *transformN, *runs, progress); err != nil {
			return fail("transform process", err)
		}
	}
	for _, v := range []struct{ name, queue, dest string }{
		{"ingest", "sqlite", *ingestDest},
		// Beside the run with delivery draining the backlog at Klaviyo's
		// burst rate on the same two cores: ingest alone.
		{"ingest-idle", "sqlite", "down"},
		{"ingest-jetstream", "jetstream", *ingestDest},
	} {
		name, q := v.name, v.queue
		if !want[name] {
			continue
		}
		// The simulator runs as its own process here: in the load
		// generator's process its request validation (bursts of tens of
		// milliseconds per bulk job) delayed the generator's goroutines,
		// and that showed up as relay's latency.
		endpoint, simPID, closeSim, err := startSimProcess(ctx, *relayBin)
		if err != nil {
			return fail(name, err)
		}
		destName := "the simulator (`relay sim`, its own process, rate limits on)"
		if v.dest == "down" {
			down, err := freeAddr()
			if err != nil {
				return fail(name, err)
			}
			endpoint, destName = "http://"+down, "an unreachable Klaviyo (delivery claims and retries only)"
		}
		o := ingestOpts{
			relayBin: ingestBin, root: root, endpoint: endpoint, simPID: simPID, destName: destName, queue: q,
			runs: *runs, dur: *ingestTime, batch: *ingestBatch, conc: *ingestConc, corpusSize: *ingestCorpus, latencyRate: *latencyRate,
			pprofAddr: pprofAddr, profilePath: filepath.Join(*out, "ingest-cpu.pprof"), tracePath: filepath.Join(*out, "ingest-halfload.trace"),
			halfProfilePath: filepath.Join(*out, "ingest-halfload-cpu.pprof"), halfAllocsPath: filepath.Join(*out, "ingest-halfload-allocs.pprof"),
		}
		if name != "ingest" {
			o.pprofAddr = "" // the profiles are of the main run
		}
		prefix := fmt.Sprintf("BENCH%d", time.Now().UnixNano()%1e9)
		if q == "jetstream" {
			// Its own stream names, so a run never meets an earlier one's.
			o.env = []string{"RELAY_QUEUE=jetstream", "RELAY_NATS_URL=" + *natsURL, "RELAY_NATS_PREFIX=" + prefix}
		}
		r, err := benchIngest(ctx, o, progress)
		closeSim()
		if q == "jetstream" {
			if derr := deleteStreams(*natsURL, prefix); derr != nil {
				fmt.Fprintf(progress, "ingest-jetstream: delete streams %s_*: %v\n", prefix, derr)
			}
		}
		if err != nil {
			return fail(name, err)
		}
		switch name {
		case "ingest":
			res.Ingest = r
		case "ingest-idle":
			res.IngestIdle = r
		default:
			res.IngestJetStream = r
		}
	}
	if want["delivery"] {
		if res.Delivery, err = benchDelivery(ctx, deliveryOpts{
			relayBin: *relayBin, root: root, events: *deliveryN, runs: *deliveryRuns, batch: 100, conc: 8,
			timeout: 15 * time.Minute,
		}, progress); err != nil {
			return fail("delivery", err)
		}
	}
	if want["memory"] {
		if res.Memory, err = benchMemory(ctx, memoryOpts{relayBin: *relayBin, root: root, events: *memoryN, batch: 100, conc: 8}, progress); err != nil {
			return fail("memory", err)
		}
	}
	res.Targets = targets(res)
	res.Seconds = time.Since(start).Seconds()
	if err := res.write(*out); err != nil {
		return fail("write results", err)
	}
	res.markdown(os.Stdout)
	fmt.Fprintf(progress, "relaybench: wrote %s and %s\n", filepath.Join(*out, "results.json"), filepath.Join(*out, "results.md"))
	return 0
}

func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// targets compares the figures with issue 7's targets.
func targets(r *Results) []Target {
	var ts []Target
	if t := r.Transform; t != nil && t.Process != nil {
		p := t.Process
		ts = append(ts, Target{fmt.Sprintf("`relay transform`, whole process, %d corpus events, one core", p.Events),
			fmt.Sprintf("≥ %d events/s (20× rudder-transformer's %d)", transformProcTarget, rudderTransformerPerCore),
			fmt.Sprintf("%.0f events/s (median), %.1f×", p.EventsPerSec.Median, p.EventsPerSec.Median/rudderTransformerPerCore),
			p.EventsPerSec.Median >= transformProcTarget})
	}
	if in := r.Ingest; in != nil {
		ts = append(ts, Target{"Ingest sustained (2 cores)", "≥ 50,000 events/s", fmt.Sprintf("%.0f events/s (median)", in.Sustained.Median), in.Sustained.Median >= 50000})
		ts = append(ts, Target{"Ingest p99 at half load", "< 25 ms", fmt.Sprintf("%.1f ms (median of runs)", in.P99ms.Median), in.P99ms.Median < 25 && len(in.P99ms.Runs) > 0})
	}
	if in := r.IngestIdle; in != nil {
		ts = append(ts, Target{"Ingest sustained, delivery idle", "≥ 50,000 events/s", fmt.Sprintf("%.0f events/s (median)", in.Sustained.Median), in.Sustained.Median >= 50000})
		ts = append(ts, Target{"Ingest p99 at half load, delivery idle", "< 25 ms", fmt.Sprintf("%.1f ms (median of runs)", in.P99ms.Median), in.P99ms.Median < 25 && len(in.P99ms.Runs) > 0})
	}
	if d := r.Delivery; d != nil {
		ts = append(ts, Target{"Delivery throughput / rate-limit bound", "≥ 0.9", fmt.Sprintf("%.2f of the steady bound (median)", d.Ratio.Median), d.Ratio.Median >= 0.9})
	}
	if m := r.Memory; m != nil && len(m.Points) > 0 {
		last := m.Points[len(m.Points)-1]
		ok := last.RSSMB < 300
		ts = append(ts, Target{fmt.Sprintf("RSS with %d events queued", last.Queued), "< 300 MB", fmt.Sprintf("%.0f MB (peak %.0f MB)", last.RSSMB, last.PeakMB), ok && last.Queued >= 1_000_000})
	}
	return ts
}
