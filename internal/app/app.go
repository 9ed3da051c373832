// Package app owns wiring Relay's parts into the running `relay serve`:
// config, stores, queue, gateway, delivery workers, console, metrics and
// the HTTP server, and their start and shutdown order.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/relaycdp/relay/internal/authlimit"
	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/console"
	"github.com/relaycdp/relay/internal/cpubudget"
	"github.com/relaycdp/relay/internal/datadir"
	"github.com/relaycdp/relay/internal/deletion"
	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/forwarded"
	"github.com/relaycdp/relay/internal/gateway"
	"github.com/relaycdp/relay/internal/ratelimit"
	"github.com/relaycdp/relay/internal/readiness"
	"github.com/relaycdp/relay/internal/store"
)

// Options are what the command line adds to the config file.
type Options struct {
	ConfigPath string
	Addr       string // overrides config addr when set
	Data       string // overrides config data when set
	Demo       bool   // in-process simulator, demo source and destination
	// Env reads the environment (os.LookupEnv in production).
	Env func(string) (string, bool)
	// Out receives the start banner (write key, console URL, curl example).
	Out io.Writer
	// Ready, when set, is called with the bound address once serving.
	Ready func(addr string)
	// AdminAddr overrides config adminAddr when set; AdminReady is called
	// with its bound address once serving.
	AdminAddr  string
	AdminReady func(addr string)
	// Cores is the CPU cores relay may use, for the CPU budget
	// (cpubudget.TuneRuntime returns it); 0 means GOMAXPROCS.
	Cores int
	// LimitMemory sets the runtime's soft memory limit from the config's
	// in-flight budget (cpubudget.LimitMemory); relay serve sets it.
	LimitMemory bool
}

// App is a running relay serve.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	reg     *prometheus.Registry
	store   store.Store
	queue   appQueue
	limiter ratelimit.Limiter // destinations' rate limits kept in the store
	// types are the destination types relay knows (types.go).
	types *destination.Registry
	lock  *datadir.Lock // the data dir's, nil when nothing is kept there
	// cpu is shared by ingest parsing (first) and delivery's mapping.
	cpu     *cpubudget.Budget
	dests   []*dest
	gateway *gateway.Gateway
	demo    *demo
	console *console.Console // nil until handler() built it
	admin   string           // console token
	// authLimit throttles failed admin authentications per address on
	// the console and the deletion API alike.
	authLimit *authlimit.Limiter

	ready *readiness.Checker // GET /ready and the console's overview
	// deletion forgets users (deletion API, relay forget).
	deletion *deletion.Worker
}

// ErrStart marks a Run that failed before serving (config, data dir
// lock, store or queue): the error says which and why.
var ErrStart = errors.New("cannot start")

// Run starts Relay and serves until ctx is cancelled, then shuts down in
// order: stop accepting HTTP, stop delivery (finishing in-flight batches),
// close the queue and the store.
func Run(ctx context.Context, opts Options) error {
	a, err := build(ctx, opts)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	defer a.close()
	return a.serve(ctx, opts)
}

func build(ctx context.Context, opts Options) (*App, error) {
	if opts.Env == nil {
		opts.Env = os.LookupEnv
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	cfg, err := config.Load(opts.ConfigPath, opts.Env)
	if err != nil {
		return nil, err
	}
	if opts.Addr != "" {
		cfg.Addr = opts.Addr
	}
	if opts.Data != "" {
		cfg.Data = opts.Data
	}
	if opts.AdminAddr != "" {
		cfg.AdminAddr = opts.AdminAddr
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	types, err := Types()
	if err != nil {
		return nil, err
	}
	if err := checkStart(cfg, types); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: newLogger(cfg.Log, os.Stderr), reg: prometheus.NewRegistry(), types: types}
	if opts.LimitMemory {
		inFlight := cfg.Limits.MaxBodyBytesInFlight
		if inFlight == 0 {
			inFlight = gateway.DefaultMaxBodyBytesInFlight
		}
		a.log.Debug("memory limit", slog.Int64("bytes", cpubudget.LimitMemory(opts.Env, inFlight)))
	}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.open(ctx, opts); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *App) open(ctx context.Context, opts Options) error {
	b, err := openBackends(ctx, a.cfg, opts.Env, a.log)
	if err != nil {
		return err
	}
	a.store, a.queue, a.limiter, a.lock = b.store, b.queue, b.limiter, b.lock
	a.cpu = cpubudget.Default()
	if opts.Cores > 0 {
		a.cpu = cpubudget.ForCores(opts.Cores)
	}
	if opts.Demo {
		if a.demo, err = startDemo(ctx, &a.cfg, a.store, a.log); err != nil {
			return err
		}
	}
	if err := a.store.SeedSources(ctx, seedSources(a.cfg.Sources)); err != nil {
		return fmt.Errorf("seed sources: %w", err)
	}
	if a.admin, err = adminToken(a.cfg.Admin.Token); err != nil {
		return err
	}
	proxies, _ := forwarded.Parse("trustedProxies", a.cfg.TrustedProxies) // checked by Validate
	a.authLimit = authlimit.New(nil, proxies)
	if err := a.openDestinations(ctx); err != nil {
		return err
	}
	if err := a.openDeletion(ctx); err != nil {
		return err
	}
	a.reg.MustRegister(newStateCollector(a.queue, a.store))
	a.ready = a.newReadiness()
	return a.openGateway()
}

func (a *App) openGateway() error {
	gw, err := gateway.New(gateway.Config{
		MaxRequestBytes: int64(a.cfg.Limits.MaxRequestBytes),
		MaxEventBytes:   a.cfg.Limits.MaxEventBytes,
		MaxQueueDepth:   a.cfg.Limits.MaxQueueDepth,
		// Bodies in flight: bounds ingest's memory (issue 14).
		MaxBodyBytesInFlight:          a.cfg.Limits.MaxBodyBytesInFlight,
		MaxBodyBytesInFlightPerSource: a.cfg.Limits.MaxBodyBytesInFlightPerSource,
	}, gateway.Deps{
		Queue:      a.queue,
		Sources:    keyResolver{a.store},
		Routes:     newRoutes(a.cfg),
		Rejections: rejectionLog{a.store},
		Depth:      a.queue,
		CPU:        a.cpu,
	}, a.log, a.reg)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	a.gateway = gw
	return nil
}

func (a *App) handler() http.Handler {
	mux := http.NewServeMux()
	if a.cfg.AdminAddr == "" {
		mux.Handle("GET /ready", a.ready.Handler())
		a.mountAdmin(mux)
	} else {
		mux.Handle("GET /ready", a.ready.PublicHandler())
	}
	mux.Handle("/", a.gateway.Handler())
	a.deviceMode().Register(mux)
	return mux
}

func (a *App) serve(ctx context.Context, opts Options) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	srv := a.gateway.Server(ln.Addr().String())
	srv.Handler = a.handler()
	addr := ln.Addr().String()
	admin, err := a.listenAdmin()
	if err != nil {
		ln.Close()
		return err
	}
	cfgFrom := opts.ConfigPath
	if cfgFrom == "" {
		cfgFrom = "embedded defaults"
	}
	a.log.Info("relay serving", slog.String("addr", addr), slog.String("config", cfgFrom), slog.Int("destinations", len(a.dests)))
	if a.demo != nil {
		a.demo.banner(opts.Out, addr, a.admin)
	} else if a.cfg.Admin.Token == "" {
		fmt.Fprintf(opts.Out, "Console: http://%s/admin/  (admin token for this run: %s)\n", consoleAddr(addr, admin), a.admin)
	}
	if a.lock != nil {
		// `relay replay` finds the admin API here while this process runs:
		// on adminAddr's listener when there is one.
		adminAt := addr
		if admin != nil {
			adminAt = admin.addr()
		}
		if err := a.lock.SetAdminURL(localAdminURL(adminAt)); err != nil {
			a.log.Warn("record admin URL in the lock file", slog.Any("err", err))
		}
	}
	if opts.Ready != nil {
		opts.Ready(addr)
	}
	if admin != nil && opts.AdminReady != nil {
		opts.AdminReady(admin.addr())
	}

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	g, gctx := errgroup.WithContext(workCtx)
	for _, d := range a.dests {
		d.start(gctx, g)
	}
	g.Go(func() error { return a.refreshSettings(gctx, 5*time.Second) })
	g.Go(func() error { return a.deletion.Run(gctx) })
	if a.console != nil {
		g.Go(func() error { return a.console.RunSampler(gctx, 30*time.Second) })
	}
	g.Go(func() error {
		return store.RunPruner(gctx, a.store, time.Minute, store.Retention(a.cfg.Retention), a.log)
	})
	serveErr := make(chan error, 2) // the ingest and the admin listener
	go func() { serveErr <- srv.Serve(ln) }()
	if admin != nil {
		admin.serve(serveErr)
	}

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		a.log.Error("http server stopped", slog.Any("err", err))
	}
	// Stop accepting first: an SDK that gets no answer retries elsewhere or
	// later; an answered request is already committed.
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	if admin != nil {
		admin.shutdown(shutCtx)
	}
	stopWork()
	if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) {
		a.log.Warn("workers stopped", slog.Any("err", werr))
	}
	for _, d := range a.dests {
		d.closeInstance()
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (a *App) close() {
	if a.demo != nil {
		a.demo.close()
	}
	if a.queue != nil {
		if err := a.queue.Close(); err != nil {
			a.log.Error("close queue", slog.Any("err", err))
		}
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.log.Error("close store", slog.Any("err", err))
		}
	}
	if err := a.lock.Close(); err != nil {
		a.log.Error("release data dir", slog.Any("err", err))
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
