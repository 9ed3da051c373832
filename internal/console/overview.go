package console

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/readiness"
	"github.com/relaycdp/relay/internal/store"
)

type overviewData struct {
	pageData
	Now       time.Time
	Sample    sample
	Metrics   metricsView
	Last      rate // the latest minute's rates
	HasRate   bool
	Charts    []chart
	ByDest    []destQueue
	LogCounts []statusCount
	Classes   []string
	Ready     *readiness.Report // nil without Deps.Readiness
}

type destQueue struct {
	Dest     string
	Depth    int64
	Outcomes map[string]float64
}

type statusCount struct {
	Status store.Status
	N      int64
}

func (c *Console) overviewPage(w http.ResponseWriter, r *http.Request) {
	d, err := c.overview(r)
	if err != nil {
		d.Error = err.Error()
	}
	c.render(w, r, http.StatusOK, "overview", d)
}

// overviewStats is the self-refreshing part of the overview (htmx).
func (c *Console) overviewStats(w http.ResponseWriter, r *http.Request) {
	d, err := c.overview(r)
	if err != nil {
		d.Error = err.Error()
	}
	c.renderPartial(w, r, "overview", "stats", d)
}

func (c *Console) overview(r *http.Request) (*overviewData, error) {
	d := &overviewData{pageData: pageData{Title: "Overview", Nav: "overview"}, Now: c.cfg.Now(), Classes: statusClasses()}
	if c.deps.Readiness != nil {
		rep := c.deps.Readiness.Report(r.Context())
		d.Ready = &rep
	}
	s, mv, err := c.takeSample(r.Context())
	d.Sample, d.Metrics = s, mv
	base, ring := c.samples.snapshot()
	rs := rates(base, ring)
	if n := len(rs); n > 0 {
		d.Last, d.HasRate = rs[n-1], true
	}
	d.Charts = buildCharts(d.Now, ring, rs)
	if err != nil {
		return d, err
	}
	st, err := c.deps.Queue.Stats(r.Context())
	if err == nil {
		for _, dest := range c.deps.Destinations {
			d.ByDest = append(d.ByDest, destQueue{Dest: dest, Depth: st.ByDest[dest], Outcomes: mv.Outcomes[dest]})
		}
	}
	counts, err := c.deps.Log.CountLog(r.Context(), "")
	if err != nil {
		return d, fmt.Errorf("count delivery log: %w", err)
	}
	for _, st := range store.Statuses() {
		if n := counts[st]; n > 0 {
			d.LogCounts = append(d.LogCounts, statusCount{Status: st, N: n})
		}
	}
	return d, nil
}

// chart is an inline SVG line chart of the last hour, one point per
// minute that has a sample.
type chart struct {
	Title    string
	W, H     int
	Max      string
	Series   []chartSeries
	Empty    bool
	GridY    []float64
	Left     string
	Right    string
	PlotLeft int
}

type chartSeries struct {
	Label  string
	Class  string
	Points string
	Dots   []point
	Last   string
}

type point struct{ X, Y float64 }

const (
	chartW, chartH = 640, 150
	padL, padR     = 44, 10
	padT, padB     = 10, 22
)

func buildCharts(now time.Time, ring []sample, rs []rate) []chart {
	end := now.Truncate(time.Minute)
	start := end.Add(-(ringMinutes - 1) * time.Minute)
	type vals struct {
		label, class string
		at           []time.Time
		v            []float64
	}
	series := func(label, class string, f func(rate) float64) vals {
		s := vals{label: label, class: class}
		for _, r := range rs {
			if !r.Minute.Before(start) {
				s.at, s.v = append(s.at, r.Minute), append(s.v, f(r))
			}
		}
		return s
	}
	depth := vals{label: "queue depth", class: "s1"}
	oldest := vals{label: "oldest (s)", class: "s3"}
	for _, s := range ring {
		if s.HasGauges && !s.Minute.Before(start) {
			depth.at, depth.v = append(depth.at, s.Minute), append(depth.v, float64(s.Depth))
			oldest.at, oldest.v = append(oldest.at, s.Minute), append(oldest.v, s.Oldest.Seconds())
		}
	}
	groups := []struct {
		title string
		s     []vals
	}{
		{"Events per minute", []vals{
			series("in", "s1", func(r rate) float64 { return r.In }),
			series("delivered", "s2", func(r rate) float64 { return r.Out }),
			series("dead-lettered", "s4", func(r rate) float64 { return r.Dead }),
		}},
		{"Queue", []vals{depth, oldest}},
		{"Klaviyo per minute", []vals{
			series("requests", "s1", func(r rate) float64 { return r.Reqs }),
			series("429s", "s4", func(r rate) float64 { return r.T429 }),
			series("retries", "s3", func(r rate) float64 { return r.Retry }),
		}},
	}
	var out []chart
	for _, g := range groups {
		ch := chart{Title: g.title, W: chartW, H: chartH, Left: "−60 min", Right: "now", PlotLeft: padL, Empty: true}
		top := 0.0
		for _, s := range g.s {
			for _, v := range s.v {
				top = max(top, v)
			}
		}
		top = niceCeil(top)
		ch.Max = fmtNum(top)
		ch.GridY = []float64{padT, padT + (chartH-padT-padB)/2.0, chartH - padB}
		x := func(t time.Time) float64 {
			return padL + t.Sub(start).Minutes()/float64(ringMinutes-1)*float64(chartW-padL-padR)
		}
		y := func(v float64) float64 { return chartH - padB - v/top*float64(chartH-padT-padB) }
		for _, s := range g.s {
			cs := chartSeries{Label: s.label, Class: s.class, Last: "—"}
			var pts []string
			for i := range s.v {
				p := point{X: math.Round(x(s.at[i])*10) / 10, Y: math.Round(y(s.v[i])*10) / 10}
				pts = append(pts, strconv.FormatFloat(p.X, 'f', 1, 64)+","+strconv.FormatFloat(p.Y, 'f', 1, 64))
				cs.Dots = append(cs.Dots, p)
				ch.Empty = false
			}
			if n := len(s.v); n > 0 {
				cs.Last = fmtNum(s.v[n-1])
			}
			cs.Points = strings.Join(pts, " ")
			ch.Series = append(ch.Series, cs)
		}
		out = append(out, ch)
	}
	return out
}

// niceCeil rounds a chart's top up to 1, 2 or 5 × 10^n (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*exp {
			return m * exp
		}
	}
	return 10 * exp
}
