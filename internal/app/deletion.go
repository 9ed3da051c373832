package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/deletion"
	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

// openDeletion builds the user deletion worker over the destinations and
// loads the suppression list, which every destination checks its events
// against before anything else (suppressionStage).
func (a *App) openDeletion(ctx context.Context) error {
	sup, err := deletion.NewSuppressions(ctx, a.store, a.log)
	if err != nil {
		return fmt.Errorf("suppression list: %w", err)
	}
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relay_suppressed_events_total",
		Help: "Events not delivered because a suppression regulation covers their user.",
	}, []string{"destination"})
	a.reg.MustRegister(dropped)
	var dests []deletion.Destination
	for _, d := range a.dests {
		counter := dropped.WithLabelValues(d.cfg.Name)
		d.suppressed = func(ev *spec.Event, region string) string {
			reg := sup.Check(ev, region)
			if reg != "" {
				counter.Inc()
			}
			return reg
		}
		// Destinations that can delete a profile (Klaviyo's) take part.
		k, ok := d.instance.(interface {
			Client() *kapi.Client
			Account() (apiKey, phoneRegion string)
		})
		if !ok {
			continue
		}
		dests = append(dests, deletion.Destination{Name: d.cfg.Name, Client: k.Client(), Account: k.Account})
	}
	a.deletion = deletion.New(deletion.Config{Destinations: dests, Suppressions: sup}, a.store, a.queue, a.log)
	return nil
}

// registerDeletionAPI mounts the deletion API (RudderStack's and Segment's
// regulation endpoints, /admin/api/deletions) on mux.
func (a *App) registerDeletionAPI(mux *http.ServeMux) {
	deletion.NewAPI(a.deletion, a.store, a.authLimit, a.log, a.admin, a.cfg.Admin.DeletionKey).Register(mux)
}

// ForgetOptions are `relay forget`'s when no relay serve answers: the
// request is stored for the next one to process.
type ForgetOptions struct {
	ConfigPath string
	Data       string
	Subject    store.DeletionSubject
	Dests      []string
	LocalOnly  bool
	// Suppress also suppresses the user's future events.
	Suppress bool
	Env      func(string) (string, bool)
}

// withWorker runs fn with a deletion worker over the configured store
// that only stores requests (relay forget without a running relay serve).
// A data dir given with --data is created when new (a request stored
// ahead of the first relay serve that runs with it); one taken from the
// config or the defaults must already hold relay serve's data
// (ErrNoData): a typo or a forgotten --data must not leave the request
// where no server reads it.
func (o ForgetOptions) withWorker(ctx context.Context, fn func(w *deletion.Worker) error) error {
	cfg, err := config.Load(o.ConfigPath, o.Env)
	if err != nil {
		return err
	}
	open := openExistingBackends
	if o.Data != "" {
		cfg.Data, open = o.Data, openBackends
	}
	log := newLogger(cfg.Log, discard{})
	b, err := open(ctx, cfg, o.Env, log)
	if err != nil {
		return err
	}
	defer b.close(log)
	var names []deletion.Destination
	for _, d := range cfg.Destinations {
		names = append(names, deletion.Destination{Name: d.Name})
	}
	sup, err := deletion.NewSuppressions(ctx, b.store, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	return fn(deletion.New(deletion.Config{Destinations: names, Suppressions: sup}, b.store, b.queue, slog.New(slog.DiscardHandler)))
}

// StoreDeletion stores a deletion request directly in the configured store
// (no relay serve running); the next relay serve processes it.
func StoreDeletion(ctx context.Context, o ForgetOptions) (store.Deletion, error) {
	ds := []store.Deletion{{Subject: o.Subject, Origin: "cli", Dests: o.Dests, LocalOnly: o.LocalOnly}}
	err := o.withWorker(ctx, func(w *deletion.Worker) error {
		if o.Suppress {
			return w.SubmitSuppressed(ctx, ds)
		}
		return w.Submit(ctx, ds)
	})
	if err != nil {
		return store.Deletion{}, err
	}
	return ds[0], nil
}

// StoreSuppression suppresses o.Subject (or, with unsuppress, lifts the
// suppressions of o.Subject's identifiers and of regulation) directly in
// the configured store; a running relay serve applies it at its next
// refresh. It says what it did.
func StoreSuppression(ctx context.Context, o ForgetOptions, unsuppress bool, regulation string) (string, error) {
	var said string
	err := o.withWorker(ctx, func(w *deletion.Worker) error {
		if unsuppress {
			var subjects []store.DeletionSubject
			if !o.Subject.Empty() {
				subjects = append(subjects, o.Subject)
			}
			n, err := w.Unsuppress(ctx, regulation, subjects)
			said = fmt.Sprintf("%d suppression(s) lifted", n)
			return err
		}
		ss, err := w.Suppress(ctx, []store.DeletionSubject{o.Subject}, "cli")
		if err == nil {
			said = "suppression " + ss[0].Regulation + " stored"
		}
		return err
	})
	return said, err
}

// suppressionStage is every destination's first pre-sink stage: a
// suppressed user's event is settled as skipped, naming the regulation,
// and never reaches the sink.
func (d *dest) suppressionStage() destination.Stage {
	return destination.StageFunc(func(_ context.Context, job *destination.Job) *destination.Result {
		if d.suppressed == nil {
			return nil
		}
		if reg := d.suppressed(job.Event, d.phoneRegion()); reg != "" {
			return &destination.Result{Outcome: destination.Skipped, Detail: "suppressed by regulation " + reg}
		}
		return nil
	})
}

// phoneRegion reads national phone numbers: Klaviyo's defaultPhoneCountry,
// else none.
func (d *dest) phoneRegion() string {
	if s, ok := d.current().(klaviyo.Settings); ok {
		return s.DefaultPhoneCountry
	}
	return ""
}
