package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/relaycdp/relay/internal/app"
	"github.com/relaycdp/relay/internal/config"
)

// runConfig is `relay config check --config F`: it loads and validates a
// config the way relay serve does (file, ${VAR} and RELAY_* from the
// environment, every field, each destination's settings) and starts
// nothing. Exit 0 valid, 1 invalid, 2 usage.
func runConfig(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: relay config check [--config relay.yaml]")
		return 2
	}
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "relay.yaml", "the config file to check")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relay config check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := checkConfig(*path, os.LookupEnv)
	if err != nil {
		problems := config.AsProblems(err)
		if len(problems) == 1 {
			fmt.Fprintf(stderr, "relay config check: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "relay config check: %s: %d problems\n", *path, len(problems))
			for _, p := range problems {
				fmt.Fprintf(stderr, "  - %v\n", p)
			}
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d sources, %d destinations, queue %s, store %s)\n",
		*path, len(cfg.Sources), len(cfg.Destinations), cfg.Queue, cfg.Store)
	return 0
}

// checkConfig loads the config as relay serve does and lists every
// problem: the file's (config.Validate) and what serve checks at start
// (app.CheckConfig, each destination's settings by its type). A file that
// cannot be read or parsed is the one problem reported.
func checkConfig(path string, env func(string) (string, bool)) (config.Config, error) {
	cfg, err := config.Load(path, env)
	var invalid config.Problems
	if err != nil && !errors.As(err, &invalid) {
		return cfg, err
	}
	if err := app.CheckConfig(cfg); err != nil {
		invalid = append(invalid, config.AsProblems(err)...)
	}
	return cfg, invalid.Err()
}
