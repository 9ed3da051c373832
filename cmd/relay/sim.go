package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/sim"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runSim serves the Klaviyo simulator until ctx is cancelled. It prints
// "relay sim: listening on http://HOST:PORT" on stdout once it accepts
// connections (tests read the address from it).
func runSim(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relay sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		keys, publicKeys, endpoints stringList
		cfg                         sim.Config
		f                           sim.Faults
	)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address (HOST:PORT; port 0 picks a free one)")
	fs.Var(&keys, "key", "private API key to accept (repeatable); default: the demo key "+sim.DemoKey)
	fs.Var(&publicKeys, "public-key", "company id (public key) to accept on /client/* (repeatable); default: any")
	noRL := fs.Bool("no-rate-limits", false, "do not enforce Klaviyo's rate limits")
	fs.DurationVar(&cfg.JobDelay, "job-delay", sim.DefaultJobDelay, "how long bulk jobs stay queued/processing")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "fraction of requests answered 500/503")
	fs.DurationVar(&f.Latency, "latency", 0, "latency added to every request")
	fs.Float64Var(&f.TimeoutRate, "timeout-rate", 0, "fraction of requests held until the client gives up")
	fs.DurationVar(&f.TimeoutHold, "timeout-hold", 0, "answer held requests 504 after this long (0: hold until the client gives up)")
	fs.Float64Var(&f.ResetRate, "reset-rate", 0, "fraction of requests whose connection is reset")
	fs.Float64Var(&f.Storm.Rate, "storm-rate", 0, "fraction of requests answered 429 (a rate-limit storm)")
	fs.IntVar(&f.Storm.RetryAfter, "storm-retry-after", 1, "Retry-After seconds of storm 429s")
	fs.DurationVar(&f.Storm.For, "storm-for", 0, "how long the storm lasts (0: until changed with POST /_sim/faults)")
	fs.Var(&endpoints, "fault-endpoint", `limit faults to this endpoint, e.g. "POST /api/events" (repeatable)`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relay sim: unexpected arguments %q\n", fs.Args())
		return 2
	}
	f.Endpoints = endpoints
	cfg.Keys, cfg.PublicKeys, cfg.Faults, cfg.RateLimits = keys, publicKeys, f, !*noRL

	log := slog.New(slog.NewTextHandler(stderr, nil))
	s, err := sim.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "relay sim: %v\n", err)
		return 2
	}
	defer s.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "relay sim: listen %s: %v\n", *addr, err)
		return 1
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "relay sim: listening on %s\n", url)
	if len(keys) == 0 {
		// The demo key is public by design, so it may be printed.
		fmt.Fprintf(stdout, "relay sim: accepting the demo API key %s (use --key to choose keys)\n", sim.DemoKey)
	} else {
		fmt.Fprintf(stdout, "relay sim: accepting %d API key(s) given with --key\n", len(keys))
	}
	rl := "enforced"
	if *noRL {
		rl = "off"
	}
	fmt.Fprintf(stdout, "relay sim: rate limits %s; state at %s/_sim/state, faults at %s/_sim/faults\n", rl, url, url)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "relay sim: serve: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	// Release requests held by faults before waiting for handlers.
	s.Close()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return 0
}
