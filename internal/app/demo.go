package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/store"
)

// demo is `relay serve --demo`: an in-process Klaviyo simulator, a demo
// source with a write key, and (when the config names no destination) a
// Klaviyo destination pointed at the simulator.
type demo struct {
	sim      *sim.Sim
	srv      *http.Server
	simURL   string
	writeKey string
}

const (
	demoSource  = "demo"
	demoDest    = "klaviyo"
	demoPublic  = "DEMO01"
	demoListID  = "DemoList"
	demoSimAddr = "127.0.0.1:0"
)

func startDemo(ctx context.Context, cfg *config.Config, st store.SourceAdmin, log *slog.Logger) (*demo, error) {
	s, err := sim.New(sim.Config{Keys: []string{sim.DemoKey}, PublicKeys: []string{demoPublic}, RateLimits: true}, log.With(slog.String("component", "sim")))
	if err != nil {
		return nil, fmt.Errorf("demo simulator: %w", err)
	}
	ln, err := net.Listen("tcp", demoSimAddr)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("demo simulator: %w", err)
	}
	d := &demo{sim: s, simURL: "http://" + ln.Addr().String()}
	d.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.srv.Serve(ln) }()

	if len(cfg.Destinations) == 0 {
		cfg.Destinations = append(cfg.Destinations, config.Destination{
			Name:     demoDest,
			Type:     "klaviyo",
			Endpoint: d.simURL,
			Settings: map[string]any{"privateApiKey": sim.DemoKey, "publicApiKey": demoPublic, "listId": demoListID},
		})
	}
	if d.writeKey, err = demoWriteKey(ctx, st); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// demoWriteKey reuses the demo source's active key across runs on the same
// data dir, so a saved curl command keeps working.
func demoWriteKey(ctx context.Context, st store.SourceAdmin) (string, error) {
	srcs, err := st.Sources(ctx)
	if err != nil {
		return "", fmt.Errorf("demo source: %w", err)
	}
	for _, s := range srcs {
		if s.Name != demoSource {
			continue
		}
		for _, k := range s.WriteKeys {
			if k.RevokedAt.IsZero() {
				return k.Key, nil
			}
		}
	}
	if _, err := st.CreateSource(ctx, demoSource); err != nil && !errors.Is(err, store.ErrExists) {
		return "", fmt.Errorf("demo source: %w", err)
	}
	k, err := st.CreateWriteKey(ctx, demoSource)
	if err != nil {
		return "", fmt.Errorf("demo write key: %w", err)
	}
	return k.Key, nil
}

func (d *demo) banner(w io.Writer, addr, adminToken string) {
	fmt.Fprintf(w, `
Relay is running (demo mode: Klaviyo is a local simulator).

  Write key:      %[2]s
  Ingest API:     http://%[1]s/v1/{identify,track,page,screen,group,alias,batch}
  Console:        http://%[1]s/admin/   (admin token: %[3]s)
  Simulator:      %[4]s/_sim/state   (what "Klaviyo" now holds)
  Metrics:        http://%[1]s/metrics

Try it:

  curl -u '%[2]s:' -H 'Content-Type: application/json' http://%[1]s/v1/track \
    -d '{"userId":"user-1","event":"Order Completed","properties":{"order_id":"o-1","revenue":25,"products":[{"product_id":"p-1","name":"Mug","price":12.5,"quantity":2}]},"context":{"traits":{"email":"jane@example.com"}}}'

  curl -s %[4]s/_sim/state

`, addr, d.writeKey, adminToken, d.simURL)
}

func (d *demo) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
	d.sim.Close()
}
