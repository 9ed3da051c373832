// Command relayprof is `relay serve` plus net/http/pprof on a separate
// loopback listener, so the benchmark can profile relay under load
// (relaybench -profile) without putting pprof in the product binary.
//
//	relayprof serve --config relay.yaml --data DIR --addr HOST:PORT --pprof 127.0.0.1:6060
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/relaycdp/relay/internal/app"
	"github.com/relaycdp/relay/internal/cpubudget"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: relayprof serve --config FILE --data DIR --addr HOST:PORT --pprof HOST:PORT")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("relayprof serve", flag.ExitOnError)
	cfg := fs.String("config", "", "relay.yaml")
	data := fs.String("data", "", "data directory")
	addr := fs.String("addr", "", "ingest listen address")
	pp := fs.String("pprof", "127.0.0.1:6060", "pprof listen address")
	_ = fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	ln, err := net.Listen("tcp", *pp)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relayprof: listen %s: %v\n", *pp, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "relayprof: pprof: %v\n", err)
		}
	}()
	defer srv.Close()

	cores := cpubudget.TuneRuntime(os.LookupEnv) // as relay serve does
	err = app.Run(ctx, app.Options{ConfigPath: *cfg, Addr: *addr, Data: *data, Env: os.LookupEnv, Out: os.Stdout, Cores: cores})
	if err != nil {
		fmt.Fprintf(os.Stderr, "relayprof serve: %v\n", err)
		os.Exit(1)
	}
}
