package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaycdp/relay/bench/corpus"
)

// rudderTransformerPerCore is rudder-transformer's Klaviyo transform on the
// same corpus, events per second on one core (issue 13's reference), and
// transformProcTarget the whole-process target: 20 times that.
const (
	rudderTransformerPerCore = 10041
	transformProcTarget      = 200000
)

// TransformProcess is `relay transform` as a whole process: start, read
// the corpus from a file, map, write the outcomes, exit.
type TransformProcess struct {
	What   string `json:"what"`
	Events int    `json:"events"`
	Bytes  int64  `json:"input_bytes"`
	Pinned string `json:"pinned"` // how it was held to one core
	// EventsPerSec is events over the process's wall time; EventsPerCPUSec
	// over its user+system CPU time.
	EventsPerSec    Stat    `json:"events_per_s"`
	EventsPerCPUSec Stat    `json:"events_per_cpu_s"`
	MaxRSSMB        float64 `json:"max_rss_mb"`
	Load            float64 `json:"load"`
}

// writeCorpusArray writes the first n corpus events as one JSON array.
func writeCorpusArray(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	g := corpus.New()
	var buf []byte
	w.WriteByte('[')
	for i := range n {
		if i > 0 {
			w.WriteByte(',')
		}
		buf, _ = g.Next(buf[:0])
		w.Write(buf)
	}
	w.WriteString("]\n")
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	return st.Size(), f.Close()
}

// benchTransformProcess runs `relay transform` on n corpus events, runs
// times, on one core: under taskset -c 0 when there is one (GOMAXPROCS=1
// too), else with GOMAXPROCS=1 alone. Output goes to /dev/null.
func benchTransformProcess(ctx context.Context, relayBin, dir string, n, runs int, progress io.Writer) (*TransformProcess, error) {
	in := filepath.Join(dir, "transform-corpus.json")
	size, err := writeCorpusArray(in, n)
	if err != nil {
		return nil, fmt.Errorf("write corpus: %w", err)
	}
	defer os.Remove(in)
	argv := []string{relayBin, "transform"}
	pinned := "GOMAXPROCS=1 (no taskset)"
	if ts, err := exec.LookPath("taskset"); err == nil {
		argv = append([]string{ts, "-c", "0"}, argv...)
		pinned = "taskset -c 0, GOMAXPROCS=1"
	}
	res := &TransformProcess{
		What:   fmt.Sprintf("`relay transform` (default flags: compact JSON array out) as a whole process on %d corpus events in one JSON array (%d MB) read from a file, output to /dev/null, on one core (%s)", n, size>>20, pinned),
		Events: n, Bytes: size, Pinned: pinned,
	}
	var wall, cpu []float64
	l0 := loadAvg()
	for run := range runs + 1 { // run 0 warms the page cache and is not counted
		stdin, err := os.Open(in)
		if err != nil {
			return nil, err
		}
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			stdin.Close()
			return nil, err
		}
		var stderr strings.Builder
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, null, &stderr
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			stdin.Close()
			null.Close()
			return nil, fmt.Errorf("start relay transform: %w", err)
		}
		// The peak RSS is polled from /proc (VmHWM, sampled every 20 ms):
		// a child's rusage counts the parent's pages it shared before exec.
		done := make(chan struct{})
		hwm := make(chan int64, 1)
		go func() {
			var peak int64
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				// Start returned after the exec: this is taskset's or relay's.
				if kb, err := procKB(cmd.Process.Pid, "VmHWM"); err == nil {
					peak = max(peak, kb)
				}
				select {
				case <-done:
					hwm <- peak
					return
				case <-tick.C:
				}
			}
		}()
		err = cmd.Wait()
		elapsed := time.Since(t0)
		close(done)
		peakKB := <-hwm
		stdin.Close()
		null.Close()
		// Exit 1 (some corpus event has a per-event error) is a complete run.
		if err != nil && cmd.ProcessState.ExitCode() != 1 {
			return nil, fmt.Errorf("relay transform: %v: %s", err, stderr.String())
		}
		st := cmd.ProcessState
		if run == 0 {
			continue
		}
		c := st.UserTime() + st.SystemTime()
		wall = append(wall, float64(n)/elapsed.Seconds())
		cpu = append(cpu, float64(n)/c.Seconds())
		res.MaxRSSMB = max(res.MaxRSSMB, mb(peakKB))
		fmt.Fprintf(progress, "transform process: %d events in %.2f s (%.2f s CPU): %.0f events/s\n", n, elapsed.Seconds(), c.Seconds(), float64(n)/elapsed.Seconds())
	}
	res.EventsPerSec, res.EventsPerCPUSec = newStat(wall), newStat(cpu)
	res.Load = (l0 + loadAvg()) / 2
	return res, nil
}

func (p *TransformProcess) markdown(w io.Writer) {
	fmt.Fprintf(w, "### Whole process\n\n%s. The first run warms the page cache and is not counted.\n\n", p.What)
	fmt.Fprintf(w, "| events/s (wall) | events per CPU-second | × rudder-transformer (%d/core) | target | max RSS | load |\n|---|---|---|---|---|---|\n", rudderTransformerPerCore)
	fmt.Fprintf(w, "| %s | %s | %.1f× | ≥ %d | %.0f MB | %.1f |\n\n", fmtStat(p.EventsPerSec, "%.0f"), fmtStat(p.EventsPerCPUSec, "%.0f"),
		p.EventsPerSec.Median/rudderTransformerPerCore, transformProcTarget, p.MaxRSSMB, p.Load)
}
