package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/relaycdp/relay/internal/app"
	"github.com/relaycdp/relay/internal/cpubudget"
)

func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "relay.yaml (default: ./relay.yaml if present, else embedded defaults)")
	addr := fs.String("addr", "", "listen address for the ingest API, console and metrics (overrides config)")
	data := fs.String("data", "", "directory of the embedded store and queue (overrides config)")
	adminAddr := fs.String("admin-addr", "", "separate listen address for /admin and /metrics, which addr then does not serve (overrides config adminAddr)")
	demo := fs.Bool("demo", false, "start an in-process Klaviyo simulator with a demo source and destination")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	*cfgPath = configPath(*cfgPath)
	// Spare Ps for goroutines blocked in fsyncs, and a GC target (see TuneRuntime).
	cores := cpubudget.TuneRuntime(os.LookupEnv)
	err := app.Run(ctx, app.Options{
		Cores:       cores,
		LimitMemory: true,
		ConfigPath:  *cfgPath,
		Addr:        *addr,
		Data:        *data,
		AdminAddr:   *adminAddr,
		Demo:        *demo,
		Env:         os.LookupEnv,
		Out:         stdout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "relay serve: %s\n", oneLine(err))
		if errors.Is(err, app.ErrStart) {
			return 2
		}
		return 1
	}
	return 0
}

// configPath is the --config given, else ./relay.yaml when there is one,
// else "" (embedded defaults): serve, forget and replay find the same file.
func configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if _, err := os.Stat("relay.yaml"); err == nil {
		return "relay.yaml"
	}
	return ""
}

// oneLine keeps an error (a driver's may span lines) on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
