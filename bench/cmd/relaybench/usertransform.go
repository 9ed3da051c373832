package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/presink"
	"github.com/relaycdp/relay/internal/usertransform"
)

// typicalTransformation is the kind of user transformation the bench runs
// (docs/PRIVACY.md): drop test users, compute a field, remove one.
const typicalTransformation = `export function transformEvent(event, metadata) {
  if (event.userId && event.userId.startsWith("test-")) return null;
  const p = event.properties || {};
  p.total_cents = Math.round((p.total || p.revenue || 0) * 100);
  delete p.internal_note;
  event.properties = p;
  return event;
}`

// benchUserTransform is the transform phase's corpus mix with a typical
// user transformation and the hipaa policy before the mapping: what
// delivery does per event for such a destination.
func benchUserTransform(in []transformInput, runs int, d time.Duration, progress io.Writer) (TransformCase, error) {
	c := TransformCase{Name: "corpus mix, transformation + hipaa"}
	s, err := klaviyo.ParseSettings([]byte(`{"privacyMode": "hipaa", "propertyAllowlist": ["total_cents", "order_id", "currency"]}`))
	if err != nil {
		return c, err
	}
	s.Transformation = typicalTransformation
	if err := s.Validate(); err != nil {
		return c, err
	}
	stage := presink.New("klaviyo", "klaviyo", usertransform.Limits{VMs: 1})
	one := func(x transformInput) (int, error) {
		res, err := stage.Run(context.Background(), s.PreSink(), "bench", x.ev)
		if err != nil {
			return 0, err
		}
		ops := 0
		for i := range res.Events {
			k, err := mapOne(&res.Events[i], s)
			if err != nil {
				return 0, nil // an event the policy leaves unmappable counts as done
			}
			ops += k
		}
		return ops, nil
	}
	total := 0
	for _, x := range in {
		k, err := one(x)
		if err != nil {
			return c, err
		}
		total += k
	}
	c.Ops = float64(total) / float64(len(in))
	var wallRates, cpuRates []float64
	l0 := loadAvg()
	for range runs {
		n, wall, cpu, mallocs, bytes, err := timeLoop(d, func(i int) error { _, err := one(in[i%len(in)]); return err })
		if err != nil {
			return c, fmt.Errorf("transform %s: %w", c.Name, err)
		}
		wallRates = append(wallRates, float64(n)/wall.Seconds())
		cpuRates = append(cpuRates, float64(n)/cpu.Seconds())
		c.AllocsPerEvent = float64(mallocs) / float64(n)
		c.BytesPerEvent = float64(bytes) / float64(n)
	}
	c.EventsPerSec, c.EventsPerCPUSec = newStat(wallRates), newStat(cpuRates)
	c.Load = (l0 + loadAvg()) / 2
	fmt.Fprintf(progress, "transform %-32s %-9s %8.0f events/s, %8.0f events/cpu-s, %5.0f allocs/event (load %.1f)\n",
		c.Name, "map", c.EventsPerSec.Median, c.EventsPerCPUSec.Median, c.AllocsPerEvent, c.Load)
	return c, nil
}
