// Command relay is Relay's one binary: serve, transform, sim, replay,
// forget, health, config check, version.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// command is one subcommand: it gets its own arguments and the standard
// streams, and returns the process exit code.
type command func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int

func commands() map[string]command {
	return map[string]command{
		"serve":     runServe,
		"transform": runTransform,
		"sim":       runSim,
		"replay":    runReplay,
		"version":   runVersion,
		"health":    runHealth,
		"config":    runConfig,
		"forget":    runForget,
	}
}

const usage = `usage: relay <command> [flags]

commands:
  serve      run the ingest API, queue, delivery and console
  transform  map events on stdin to the Klaviyo requests they mean
  sim        run the Klaviyo simulator
  replay     re-enqueue dead-lettered events
  health     ask a running relay for /health (or /ready with --ready)
  config     config check --config F: validate a config, start nothing
  forget     delete a user: queued events, log, dead letters, Klaviyo profile
  version    print the version, commit, Go version and build date
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "relay: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	return cmd(ctx, args[1:], stdin, stdout, stderr)
}
