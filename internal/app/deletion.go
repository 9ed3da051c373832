package app

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/deletion"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
	"github.com/relaycdp/relay/internal/store"
)

// openDeletion builds the user deletion worker over the destinations.
func (a *App) openDeletion() {
	var dests []deletion.Destination
	for _, d := range a.dests {
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
	a.deletion = deletion.New(deletion.Config{Destinations: dests}, a.store, a.queue, a.log)
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
	Env        func(string) (string, bool)
}

// StoreDeletion stores a deletion request directly in the configured store
// (no relay serve running); the next relay serve processes it.
func StoreDeletion(ctx context.Context, o ForgetOptions) (store.Deletion, error) {
	cfg, err := config.Load(o.ConfigPath, o.Env)
	if err != nil {
		return store.Deletion{}, err
	}
	if o.Data != "" {
		cfg.Data = o.Data
	}
	log := newLogger(cfg.Log, discard{})
	b, err := openBackends(ctx, cfg, o.Env, log)
	if err != nil {
		return store.Deletion{}, err
	}
	defer b.close(log)
	var names []deletion.Destination
	for _, d := range cfg.Destinations {
		names = append(names, deletion.Destination{Name: d.Name})
	}
	w := deletion.New(deletion.Config{Destinations: names}, b.store, b.queue, slog.New(slog.DiscardHandler))
	ds := []store.Deletion{{Subject: o.Subject, Origin: "cli", Dests: o.Dests, LocalOnly: o.LocalOnly}}
	if err := w.Submit(ctx, ds); err != nil {
		return store.Deletion{}, err
	}
	return ds[0], nil
}
