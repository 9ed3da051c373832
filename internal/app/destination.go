package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/delivery"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
	"github.com/relaycdp/relay/internal/presink"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
	"github.com/relaycdp/relay/internal/usertransform"
)

// destination is one configured Klaviyo destination: its live settings,
// its client and its delivery workers.
type destination struct {
	cfg      config.Destination
	settings atomic.Pointer[klaviyo.Settings]
	// applied is the stored settings version in force (0 before the first
	// save), so a refresh only re-parses what another node changed.
	applied atomic.Int64
	client  *kapi.Client
	workers []*delivery.Worker
	stage   *presink.Stage // transformation, filter, privacy policy
	// suppressed names the regulation suppressing an event's user, or ""
	// (deletion.Suppressions.Check; set by openDeletion).
	suppressed func(ev *spec.Event, region string) string
}

func (a *App) openDestinations(ctx context.Context) error {
	metrics := delivery.NewMetrics(a.reg)
	for _, dc := range a.cfg.Destinations {
		d := &destination{cfg: dc}
		s, err := a.loadSettings(ctx, dc)
		if err != nil {
			return err
		}
		// A missing key is said at start, not discovered through retries.
		if why := s.MissingKey(); why != "" {
			a.log.Warn("destination key missing", slog.String("dest", dc.Name), slog.String("problem", why))
		}
		for _, w := range s.Warnings() {
			a.log.Warn("destination settings", slog.String("dest", dc.Name), slog.String("warning", w))
		}
		d.settings.Store(&s)
		if ds, err := a.store.DestSettings(ctx, dc.Name); err == nil {
			d.applied.Store(ds.Version)
		}
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"destination": dc.Name}, a.reg)
		d.client, err = kapi.New(kapi.Config{BaseURL: dc.Endpoint, Revision: s.Revision, Limiter: a.limiter}, a.log.With(slog.String("dest", dc.Name)), reg)
		if err != nil {
			return fmt.Errorf("destinations %s: klaviyo client: %w", dc.Name, err)
		}
		d.stage = presink.New(dc.Name, usertransform.Limits{VMs: max(a.cfg.Delivery.Workers, 1)})
		for range a.cfg.Delivery.Workers {
			d.workers = append(d.workers, delivery.New(delivery.Config{
				Dest:        dc.Name,
				Settings:    func() klaviyo.Settings { return *d.settings.Load() },
				BatchWait:   a.cfg.Delivery.BatchWait,
				MaxRetryAge: a.cfg.Delivery.MaxRetryAge,
				CPU:         a.cpu,
				PreSink:     d.preSink,
				Audit:       a.audit(),
			}, a.queue, d.client, a.store, a.log, metrics))
		}
		a.dests = append(a.dests, d)
	}
	return nil
}

func (d *destination) start(ctx context.Context, g *errgroup.Group) {
	for _, w := range d.workers {
		g.Go(func() error { return w.Run(ctx) })
	}
}

// loadSettings resolves a destination's settings. The config file's
// settings are applied when they changed since they were last applied (so
// editing relay.yaml and restarting works); otherwise the stored ones,
// which the console may have edited since, stay.
func (a *App) loadSettings(ctx context.Context, dc config.Destination) (klaviyo.Settings, error) {
	fileJSON, err := json.Marshal(dc.Settings)
	if err != nil {
		return klaviyo.Settings{}, fmt.Errorf("destinations %s.settings: %w", dc.Name, err)
	}
	if dc.Settings == nil {
		fileJSON = []byte("{}")
	}
	sum := sha256.Sum256(fileJSON)
	marker := "config-hash:" + dc.Name
	seen, err := a.store.DestSettings(ctx, marker)
	fileChanged := errors.Is(err, store.ErrNotFound) || (err == nil && string(seen.Settings) != `"`+hex.EncodeToString(sum[:])+`"`)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return klaviyo.Settings{}, fmt.Errorf("load settings of %s: %w", dc.Name, err)
	}
	raw := fileJSON
	if !fileChanged {
		stored, err := a.store.DestSettings(ctx, dc.Name)
		if err == nil {
			raw = stored.Settings
		}
	}
	s, err := klaviyo.ParseSettings(raw)
	if err != nil {
		return s, fmt.Errorf("destinations %s.settings: %w", dc.Name, err)
	}
	if err := s.Validate(); err != nil {
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
func (a *App) ApplySettings(ctx context.Context, dest string, raw json.RawMessage, ifVersion int64) (store.DestSettings, error) {
	var d *destination
	for _, x := range a.dests {
		if x.cfg.Name == dest {
			d = x
		}
	}
	if d == nil {
		return store.DestSettings{}, fmt.Errorf("destination %q: %w", dest, store.ErrNotFound)
	}
	s, err := klaviyo.ParseSettings(raw)
	if err != nil {
		return store.DestSettings{}, err
	}
	if err := s.Validate(); err != nil {
		return store.DestSettings{}, err
	}
	saved, err := a.store.PutDestSettings(ctx, dest, raw, ifVersion)
	if err != nil {
		return saved, err
	}
	d.settings.Store(&s)
	d.applied.Store(saved.Version)
	return saved, nil
}

// Settings returns a destination's live settings.
func (a *App) Settings(dest string) (klaviyo.Settings, bool) {
	for _, d := range a.dests {
		if d.cfg.Name == dest {
			return *d.settings.Load(), true
		}
	}
	return klaviyo.Settings{}, false
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
			s, err := klaviyo.ParseSettings(ds.Settings)
			if err == nil {
				err = s.Validate()
			}
			if err != nil {
				a.log.Error("stored settings are invalid; keeping the current ones", slog.String("dest", d.cfg.Name), slog.Any("err", err))
				d.applied.Store(ds.Version)
				continue
			}
			d.settings.Store(&s)
			d.applied.Store(ds.Version)
			a.log.Info("settings changed", slog.String("dest", d.cfg.Name), slog.Int64("version", ds.Version))
		}
	}
}
