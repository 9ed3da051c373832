package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/relaycdp/relay/internal/console"
	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/forwarded"
)

// consoleHandler builds the admin console from the app's parts, to be
// mounted at /admin/.
func (a *App) consoleHandler() http.Handler {
	names := make([]string, 0, len(a.dests))
	for _, d := range a.dests {
		names = append(names, d.cfg.Name)
	}
	// Validate checked the CIDRs; an error cannot happen here.
	proxies, _ := forwarded.Parse("trustedProxies", a.cfg.TrustedProxies)
	c, err := console.New(console.Config{Token: a.admin, Secure: proxies.Secure, Limiter: a.authLimit}, console.Deps{
		Log:             a.store,
		DeadLetters:     a.store,
		Sources:         a.store,
		Settings:        a,
		StoredSettings:  a.store,
		Queue:           a.queue,
		Pinger:          destPinger{a},
		Metrics:         a.reg,
		Destinations:    names,
		Readiness:       a.ready, // set by open, before the handler is built
		Audit:           a.auditReader(),
		Transformations: transformationVersions{a.store},
		Deletions:       a.store,
	}, a.log.With(slog.String("component", "console")))
	if err != nil {
		// Only a wiring bug gets here; serve everything else regardless.
		a.log.Error("admin console unavailable", slog.Any("err", err))
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "admin console unavailable: see the server log", http.StatusInternalServerError)
		})
	}
	a.console = c
	return c.Handler()
}

// destPinger is the console's "test connection": one harmless call by the
// destination's own instance (its endpoint, client and rate limits).
type destPinger struct{ a *App }

func (p destPinger) Ping(ctx context.Context, name string, s destination.Settings) (bool, string) {
	if d := p.a.dest(name); d != nil {
		return d.instance.Ping(ctx, s)
	}
	return false, fmt.Sprintf("No destination named %q.", name)
}
