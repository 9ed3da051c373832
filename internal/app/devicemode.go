package app

import (
	"context"

	"github.com/relaycdp/relay/internal/devicemode"
	"github.com/relaycdp/relay/internal/klaviyo"
)

// deviceResolver gives devicemode the live settings of the Klaviyo
// destinations a write key's source feeds.
type deviceResolver struct {
	a      *App
	keys   keyResolver
	routes routes
}

func (r deviceResolver) Resolve(ctx context.Context, writeKey string) ([]klaviyo.Settings, bool, error) {
	source, ok, err := r.keys.SourceForKey(ctx, writeKey)
	if err != nil || !ok {
		return nil, ok, err
	}
	var out []klaviyo.Settings
	for _, name := range r.routes.Destinations(source) {
		if s, ok := r.a.Settings(name); ok {
			if ks, ok := s.(klaviyo.Settings); ok {
				out = append(out, ks)
			}
		}
	}
	return out, true, nil
}

func (a *App) deviceMode() *devicemode.Server {
	return devicemode.New(deviceResolver{a: a, keys: keyResolver{a.store}, routes: newRoutes(a.cfg)}, a.log)
}
