package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/delivery"
	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/presink"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
	"github.com/relaycdp/relay/internal/usertransform"
)

// dest is one configured destination: its type, live settings, instance
// (sink and connection test) and delivery workers.
type dest struct {
	cfg      config.Destination
	typ      *destination.Type
	settings atomic.Pointer[settingsBox]
	// applied is the stored settings version in force (0 before the first
	// save), so a refresh only re-parses what another node changed.
	applied  atomic.Int64
	instance destination.Instance
	workers  []*delivery.Worker
	stage    *presink.Stage // transformation, filter, privacy policy
	// suppressed names the regulation suppressing an event's user, or ""
	// (deletion.Suppressions.Check; set by openDeletion before delivery
	// starts).
	suppressed func(ev *spec.Event, region string) string
}

// settingsBox holds settings behind an atomic pointer (an interface value
// cannot be stored in one directly).
type settingsBox struct{ s destination.Settings }

func (d *dest) current() destination.Settings { return d.settings.Load().s }

// checkStart is what relay serve checks beyond config.Validate before it
// opens anything: the admin secrets' length and each destination's type.
func checkStart(cfg config.Config, types *destination.Registry) error {
	var p config.Problems
	if err := config.CheckAdminSecrets(cfg.Admin); err != nil {
		p = append(p, config.AsProblems(err)...)
	}
	for i, dc := range cfg.Destinations {
		if _, ok := types.Lookup(dc.Type); !ok && dc.Type != "" {
			p = append(p, fmt.Errorf("destinations[%d].type: %q is not a known destination type (%s)", i, dc.Type, strings.Join(types.Names(), ", ")))
		}
	}
	return p.Err()
}

// CheckConfig is `relay config check` beyond config.Load: what relay serve
// checks at start, and each destination's settings in the file parsed by
// its type, every problem listed.
func CheckConfig(cfg config.Config) error {
	types, err := Types()
	if err != nil {
		return err
	}
	var p config.Problems
	if err := checkStart(cfg, types); err != nil {
		p = append(p, config.AsProblems(err)...)
	}
	for _, dc := range cfg.Destinations {
		typ, ok := types.Lookup(dc.Type)
		if !ok {
			continue // reported above
		}
		raw, err := fileSettings(dc)
		if err == nil {
			_, err = typ.Parse(raw)
		}
		for _, e := range joined(err) {
			p = append(p, fmt.Errorf("destinations %s.settings: %w", dc.Name, e))
		}
	}
	return p.Err()
}

// joined lists the errors an errors.Join holds, err alone otherwise (none
// for nil): a type's Parse joins one error per setting.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// fileSettings is a destination's settings from the config file as the
// JSON document its type parses ({} when there are none).
func fileSettings(dc config.Destination) ([]byte, error) {
	if dc.Settings == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(dc.Settings)
}

func (a *App) openDestinations(ctx context.Context) error {
	metrics := delivery.NewMetrics(a.reg)
	for _, dc := range a.cfg.Destinations {
		typ, _ := a.types.Lookup(dc.Type) // checked at start
		d := &dest{cfg: dc, typ: typ}
		s, err := a.loadSettings(ctx, d)
		if err != nil {
			return err
		}
		for _, w := range s.Warnings() {
			a.log.Warn("destination settings", slog.String("dest", dc.Name), slog.String("warning", w))
		}
		d.settings.Store(&settingsBox{s})
		if ds, err := a.store.DestSettings(ctx, dc.Name); err == nil {
			d.applied.Store(ds.Version)
		}
		log := a.log.With(slog.String("dest", dc.Name))
		d.instance, err = typ.Open(destination.Env{
			Name:     dc.Name,
			Endpoint: dc.Endpoint,
			Settings: d.current,
			Log:      log,
			Metrics:  prometheus.WrapRegistererWith(prometheus.Labels{"destination": dc.Name}, a.reg),
			Limiter:  a.limiter,
			CPU:      a.cpu,
			Late:     delivery.NewLate(delivery.Config{Dest: dc.Name, PhoneRegion: d.phoneRegion}, a.store, metrics),
		})
		if err != nil {
			return fmt.Errorf("destinations %s: %w", dc.Name, err)
		}
		// A missing key is said at start, not discovered through retries.
		if why := waitingOf(d.instance)(); why != "" {
			a.log.Warn("destination cannot send yet", slog.String("dest", dc.Name), slog.String("problem", why))
		}
		d.stage = presink.New(dc.Name, dc.Type, usertransform.Limits{VMs: max(a.cfg.Delivery.Workers, 1)})
		for range a.cfg.Delivery.Workers {
			d.workers = append(d.workers, delivery.New(delivery.Config{
				Dest:        dc.Name,
				Title:       typ.Title,
				Sink:        d.instance,
				BatchWait:   a.cfg.Delivery.BatchWait,
				MaxRetryAge: a.cfg.Delivery.MaxRetryAge,
				CPU:         a.cpu,
				Stages:      append([]destination.Stage{d.suppressionStage()}, stagesOf(d.instance)...),
				PhoneRegion: d.phoneRegion,
				Waiting:     waitingOf(d.instance),
				PreSink:     d.preSinkFor(),
				Audit:       a.audit(),
			}, a.queue, a.store, a.log, metrics))
		}
		a.dests = append(a.dests, d)
	}
	return nil
}

// closeInstance ends what the destination runs beside its batches (the
// Klaviyo sink's import job followers), once delivery has stopped.
func (d *dest) closeInstance() {
	if c, ok := d.instance.(interface{ Close() }); ok {
		c.Close()
	}
}

func (d *dest) start(ctx context.Context, g *errgroup.Group) {
	for _, w := range d.workers {
		g.Go(func() error { return w.Run(ctx) })
	}
}

// loadSettings resolves a destination's settings. The config file's
// settings are applied when they changed since they were last applied (so
// editing relay.yaml and restarting works); otherwise the stored ones,
// which the console may have edited since, stay.
func (a *App) loadSettings(ctx context.Context, d *dest) (destination.Settings, error) {
	dc := d.cfg
	fileJSON, err := fileSettings(dc)
	if err != nil {
		return nil, fmt.Errorf("destinations %s.settings: %w", dc.Name, err)
	}
	sum := sha256.Sum256(fileJSON)
	marker := "config-hash:" + dc.Name
	seen, err := a.store.DestSettings(ctx, marker)
	fileChanged := errors.Is(err, store.ErrNotFound) || (err == nil && string(seen.Settings) != `"`+hex.EncodeToString(sum[:])+`"`)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("load settings of %s: %w", dc.Name, err)
	}
	raw := fileJSON
	if !fileChanged {
		stored, err := a.store.DestSettings(ctx, dc.Name)
		if err == nil {
			raw = stored.Settings
		}
	}
	s, err := d.typ.Parse(raw)
	if err != nil {
		return s, fmt.Errorf("destinations %s.settings: %w", dc.Name, err)
	}
	if fileChanged {
		if _, err := a.store.PutDestSettings(ctx, dc.Name, raw, store.AnyVersion); err != nil {
			return s, fmt.Errorf("save settings of %s: %w", dc.Name, err)
		}
		hash, _ := json.Marshal(hex.EncodeToString(sum[:]))
		if _, err := a.store.PutDestSettings(ctx, marker, hash, store.AnyVersion); err != nil {
			return s, fmt.Errorf("save settings of %s: %w", dc.Name, err)
		}
	}
	return s, nil
}

// ApplySettings validates and saves a destination's settings (from the
// console) and makes the next delivery batch use them.
func (a *App) ApplySettings(ctx context.Context, name string, raw json.RawMessage, ifVersion int64) (store.DestSettings, error) {
	d := a.dest(name)
	if d == nil {
		return store.DestSettings{}, fmt.Errorf("destination %q: %w", name, store.ErrNotFound)
	}
	s, err := d.typ.Parse(raw)
	if err != nil {
		return store.DestSettings{}, err
	}
	saved, err := a.store.PutDestSettings(ctx, name, raw, ifVersion)
	if err != nil {
		return saved, err
	}
	d.settings.Store(&settingsBox{s})
	d.applied.Store(saved.Version)
	return saved, nil
}

// Settings returns a destination's live settings.
func (a *App) Settings(name string) (destination.Settings, bool) {
	if d := a.dest(name); d != nil {
		return d.current(), true
	}
	return nil, false
}

// DestType returns a destination's type.
func (a *App) DestType(name string) (*destination.Type, bool) {
	if d := a.dest(name); d != nil {
		return d.typ, true
	}
	return nil, false
}

func (a *App) dest(name string) *dest {
	for _, d := range a.dests {
		if d.cfg.Name == name {
			return d
		}
	}
	return nil
}

// refreshSettings picks up settings saved by other nodes (through their
// consoles) every interval, so a change applies cluster-wide without a
// restart. On one node it finds nothing new.
func (a *App) refreshSettings(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, d := range a.dests {
			ds, err := a.store.DestSettings(ctx, d.cfg.Name)
			if err != nil || ds.Version == d.applied.Load() {
				continue
			}
			s, err := d.typ.Parse(ds.Settings)
			if err != nil {
				a.log.Error("stored settings are invalid; keeping the current ones", slog.String("dest", d.cfg.Name), slog.Any("err", err))
				d.applied.Store(ds.Version)
				continue
			}
			d.settings.Store(&settingsBox{s})
			d.applied.Store(ds.Version)
			a.log.Info("settings changed", slog.String("dest", d.cfg.Name), slog.Int64("version", ds.Version))
		}
	}
}
