package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// mountAdmin adds /admin and /metrics to mux: the ingest mux when there is
// no adminAddr, the admin listener's otherwise.
func (a *App) mountAdmin(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	a.registerDeletionAPI(mux)
	mux.Handle("/admin/", a.consoleHandler())
}

// adminServer is the listener of adminAddr, so the ingest port can face
// the internet alone: it serves /admin and /metrics (and /ready, for
// probes on the private side); the ingest port then serves neither.
type adminServer struct {
	srv *http.Server
	ln  net.Listener
}

func (a *App) listenAdmin() (*adminServer, error) {
	if a.cfg.AdminAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", a.cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on adminAddr %s: %w", a.cfg.AdminAddr, err)
	}
	mux := http.NewServeMux()
	a.mountAdmin(mux)
	mux.Handle("GET /ready", a.ready.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	return &adminServer{srv: srv, ln: ln}, nil
}

func (s *adminServer) addr() string { return s.ln.Addr().String() }

func (s *adminServer) serve(errs chan<- error) {
	go func() { errs <- s.srv.Serve(s.ln) }()
}

func (s *adminServer) shutdown(ctx context.Context) {
	_ = s.srv.Shutdown(ctx)
}

// consoleAddr is where the console is served.
func consoleAddr(ingest string, admin *adminServer) string {
	if admin != nil {
		return admin.addr()
	}
	return ingest
}
