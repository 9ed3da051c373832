package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Stat is one figure over several runs: every run's value, and the min,
// median and max, so run-to-run spread is visible.
type Stat struct {
	Runs   []float64 `json:"runs"`
	Min    float64   `json:"min"`
	Median float64   `json:"median"`
	Max    float64   `json:"max"`
}

func newStat(runs []float64) Stat {
	s := Stat{Runs: runs}
	if len(runs) == 0 {
		return s
	}
	c := slices.Clone(runs)
	slices.Sort(c)
	s.Min, s.Max = c[0], c[len(c)-1]
	if len(c)%2 == 1 {
		s.Median = c[len(c)/2]
	} else {
		s.Median = (c[len(c)/2-1] + c[len(c)/2]) / 2
	}
	return s
}

// fmtStat renders "median (min–max)" with the given format.
func fmtStat(s Stat, f string) string {
	if len(s.Runs) == 0 {
		return "—"
	}
	if len(s.Runs) == 1 {
		return fmt.Sprintf(f, s.Median)
	}
	return fmt.Sprintf(f+" ("+f+"–"+f+")", s.Median, s.Min, s.Max)
}

// Target is one of issue 7's targets and whether this run met it.
type Target struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Got    string `json:"got"`
	Met    bool   `json:"met"`
}

// Results is everything one `relaybench` run measured.
type Results struct {
	Machine   Machine           `json:"machine"`
	Flags     map[string]string `json:"flags"`
	Transform *TransformResult  `json:"transform,omitempty"`
	Ingest    *IngestResult     `json:"ingest,omitempty"`
	// IngestIdle is the ingest benchmark with Klaviyo unreachable: delivery
	// only claims and retries, so ingest has the cores to itself.
	IngestIdle *IngestResult `json:"ingest_idle,omitempty"`
	// IngestJetStream is the same ingest benchmark with queue: jetstream.
	IngestJetStream *IngestResult   `json:"ingest_jetstream,omitempty"`
	Delivery        *DeliveryResult `json:"delivery,omitempty"`
	Memory          *MemoryResult   `json:"memory,omitempty"`
	Targets         []Target        `json:"targets"`
	Seconds         float64         `json:"seconds"`
}

func (r *Results) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	r.markdown(&md)
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644)
}

func (r *Results) markdown(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "# Relay benchmark results\n\n")
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %s RAM, %s, %s; %s; load average (1 min) at start %.2f; run took %.0f s.\n\n",
		m.CPUs, m.CPUModel, m.MemTotal, m.Kernel, m.Go, m.Date, m.LoadAtStart, r.Seconds)
	fmt.Fprintf(w, "Figures are median (min–max) over the runs; `load` is the 1-minute load average during the measurement (%d CPUs: above %d, other processes were competing for the cores).\n\n", m.CPUs, m.CPUs)
	if r.Transform != nil {
		r.Transform.markdown(w)
	}
	if r.Ingest != nil {
		r.Ingest.markdown(w)
	}
	if r.IngestIdle != nil {
		r.IngestIdle.markdown(w)
	}
	if r.IngestJetStream != nil {
		r.IngestJetStream.markdown(w)
	}
	if r.Delivery != nil {
		r.Delivery.markdown(w)
	}
	if r.Memory != nil {
		r.Memory.markdown(w)
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(w, "## Targets\n\n| Target | Wanted | Got | Met |\n|---|---|---|---|\n")
		for _, t := range r.Targets {
			met := "no"
			if t.Met {
				met = "yes"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.Name, t.Target, t.Got, met)
		}
		fmt.Fprintln(w)
	}
	keys := make([]string, 0, len(r.Flags))
	for k := range r.Flags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(w, "Flags:")
	for _, k := range keys {
		fmt.Fprintf(w, " -%s=%s", k, r.Flags[k])
	}
	fmt.Fprintln(w)
}

func mb(kb int64) float64 { return float64(kb) / 1024 }
