package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/relaycdp/relay/bench/corpus"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/spec"
)

// TransformCase is one event shape's mapping cost, per input event, on
// one goroutine.
type TransformCase struct {
	Name string `json:"name"`
	// Parse says whether spec.Parse of the event's JSON is inside the
	// timed loop ("parse+map") or done once outside it ("map").
	Parse bool    `json:"parse"`
	Ops   float64 `json:"ops_per_event"`
	// EventsPerSec is wall-clock; EventsPerCPUSec divides by the process's
	// CPU time (all threads, GC included), which other processes on a busy
	// machine do not inflate.
	EventsPerSec    Stat    `json:"events_per_s"`
	EventsPerCPUSec Stat    `json:"events_per_cpu_s"`
	AllocsPerEvent  float64 `json:"allocs_per_event"`
	BytesPerEvent   float64 `json:"alloc_bytes_per_event"`
	Load            float64 `json:"load"`
}

// TransformResult is the mapping benchmark.
type TransformResult struct {
	What  string          `json:"what"`
	Cases []TransformCase `json:"cases"`
	// Process is `relay transform` as a whole process on one core.
	Process *TransformProcess `json:"process,omitempty"`
}

// transformInput is an event's JSON and its parsed form.
type transformInput struct {
	raw []byte
	ev  *spec.Event
}

func parseOne(raw []byte) (*spec.Event, error) {
	b, err := spec.Parse(raw, spec.Options{})
	if err != nil {
		return nil, err
	}
	if len(b.Items) != 1 || b.Items[0].Err != nil {
		return nil, fmt.Errorf("parse %s: %+v", raw, b.Items)
	}
	return &b.Items[0].Event, nil
}

// transformInputs picks the cases from the corpus: its first identify, its
// first track, its first Order Completed grown to 10 products, and the
// first 10,000 events as the whole mix.
func transformInputs() (map[string][]transformInput, []string, error) {
	evs, kinds := corpus.Events(10000)
	var identify, track, order []byte
	for i, e := range evs {
		switch {
		case kinds[i] == corpus.Identify && identify == nil:
			identify = e
		case kinds[i] == corpus.Track && track == nil:
			track = e
		case kinds[i] == corpus.Order && order == nil:
			order = e
		}
	}
	order10, err := growProducts(order, 10)
	if err != nil {
		return nil, nil, err
	}
	out := map[string][]transformInput{}
	add := func(name string, raws ...[]byte) error {
		for _, r := range raws {
			ev, err := parseOne(r)
			if err != nil {
				return err
			}
			out[name] = append(out[name], transformInput{r, ev})
		}
		return nil
	}
	names := []string{"identify", "track", "Order Completed (10 products)", "corpus mix"}
	for i, raws := range [][][]byte{{identify}, {track}, {order10}, evs} {
		if err := add(names[i], raws...); err != nil {
			return nil, nil, err
		}
	}
	return out, names, nil
}

// growProducts repeats an Order Completed's products, with new ids, until
// it has n.
func growProducts(raw []byte, n int) ([]byte, error) {
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	props := ev["properties"].(map[string]any)
	ps := props["products"].([]any)
	for i := len(ps); i < n; i++ {
		p := map[string]any{}
		for k, v := range ps[i%3].(map[string]any) {
			p[k] = v
		}
		p["product_id"] = fmt.Sprintf("prod_x%d", i)
		p["sku"] = fmt.Sprintf("SKU-X%d", i)
		ps = append(ps, p)
	}
	props["products"] = ps
	return json.Marshal(ev)
}

// mapOne is what delivery does per event after the queue, as
// internal/klaviyo's benchmarks measure it: Map, then Op.Request and
// json.Marshal of every op.
func mapOne(ev *spec.Event, s klaviyo.Settings) (int, error) {
	res, err := klaviyo.Map(ev, s)
	if err != nil {
		return 0, err
	}
	for _, op := range res.Ops {
		if _, err := json.Marshal(op.Request(s).Body); err != nil {
			return 0, err
		}
	}
	return len(res.Ops), nil
}

// timeLoop runs f for about d and returns iterations, wall and CPU time,
// and allocations.
func timeLoop(d time.Duration, f func(i int) error) (n int, wall, cpu time.Duration, mallocs, bytes uint64, err error) {
	// Warm up, then measure.
	for i := range 200 {
		if err := f(i); err != nil {
			return 0, 0, 0, 0, 0, err
		}
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	c0, t0 := selfCPU(), time.Now()
	for ; ; n++ {
		if n%64 == 0 && time.Since(t0) >= d {
			break
		}
		if err := f(n); err != nil {
			return 0, 0, 0, 0, 0, err
		}
	}
	wall, cpu = time.Since(t0), selfCPU()-c0
	runtime.ReadMemStats(&m1)
	return n, wall, cpu, m1.Mallocs - m0.Mallocs, m1.TotalAlloc - m0.TotalAlloc, nil
}

func benchTransform(runs int, d time.Duration, progress io.Writer) (*TransformResult, error) {
	inputs, names, err := transformInputs()
	if err != nil {
		return nil, err
	}
	s, err := klaviyo.ParseSettings([]byte("{}"))
	if err != nil {
		return nil, err
	}
	res := &TransformResult{What: "per input event on one goroutine: map = klaviyo.Map + Op.Request + json.Marshal of each op (as internal/klaviyo's benchmarks); parse+map adds spec.Parse of the event's JSON; default settings"}
	for _, name := range names {
		in := inputs[name]
		for _, parse := range []bool{false, true} {
			c := TransformCase{Name: name, Parse: parse}
			total := 0
			for _, x := range in {
				k, _ := mapOne(x.ev, s)
				total += k
			}
			c.Ops = float64(total) / float64(len(in))
			var wallRates, cpuRates []float64
			l0 := loadAvg()
			for range runs {
				f := func(i int) error {
					x := in[i%len(in)]
					ev := x.ev
					if parse {
						var err error
						if ev, err = parseOne(x.raw); err != nil {
							return err
						}
					}
					_, err := mapOne(ev, s)
					return err
				}
				n, wall, cpu, mallocs, bytes, err := timeLoop(d, f)
				if err != nil {
					return nil, fmt.Errorf("transform %s: %w", name, err)
				}
				wallRates = append(wallRates, float64(n)/wall.Seconds())
				cpuRates = append(cpuRates, float64(n)/cpu.Seconds())
				c.AllocsPerEvent = float64(mallocs) / float64(n)
				c.BytesPerEvent = float64(bytes) / float64(n)
			}
			c.EventsPerSec, c.EventsPerCPUSec = newStat(wallRates), newStat(cpuRates)
			c.Load = (l0 + loadAvg()) / 2
			fmt.Fprintf(progress, "transform %-32s %-9s %8.0f events/s, %8.0f events/cpu-s, %5.0f allocs/event (load %.1f)\n",
				name, mode(parse), c.EventsPerSec.Median, c.EventsPerCPUSec.Median, c.AllocsPerEvent, c.Load)
			res.Cases = append(res.Cases, c)
		}
	}
	c, err := benchUserTransform(inputs["corpus mix"], runs, d, progress)
	if err != nil {
		return nil, err
	}
	res.Cases = append(res.Cases, c)
	return res, nil
}

func mode(parse bool) string {
	if parse {
		return "parse+map"
	}
	return "map"
}

func (t *TransformResult) markdown(w io.Writer) {
	fmt.Fprintf(w, "## Transform\n\n%s.\n\n", t.What)
	fmt.Fprintf(w, "| Event | Mode | Klaviyo ops/event | events/s (wall) | events per CPU-second | allocs/event | bytes/event | load |\n|---|---|---|---|---|---|---|---|\n")
	for _, c := range t.Cases {
		fmt.Fprintf(w, "| %s | %s | %.2g | %s | %s | %.0f | %.0f | %.1f |\n", c.Name, mode(c.Parse), c.Ops,
			fmtStat(c.EventsPerSec, "%.0f"), fmtStat(c.EventsPerCPUSec, "%.0f"), c.AllocsPerEvent, c.BytesPerEvent, c.Load)
	}
	fmt.Fprintln(w)
	if t.Process != nil {
		t.Process.markdown(w)
	}
}
