package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/klaviyo"
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
		fmt.Fprintf(stderr, "relay config check: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d sources, %d destinations, queue %s, store %s)\n",
		*path, len(cfg.Sources), len(cfg.Destinations), cfg.Queue, cfg.Store)
	return 0
}

func checkConfig(path string, env func(string) (string, bool)) (config.Config, error) {
	cfg, err := config.Load(path, env)
	if err != nil {
		return cfg, err
	}
	if err := config.CheckAdminToken(cfg.Admin.Token); err != nil {
		return cfg, err
	}
	for _, d := range cfg.Destinations {
		raw, err := json.Marshal(d.Settings)
		if err != nil {
			return cfg, fmt.Errorf("destinations %s.settings: %w", d.Name, err)
		}
		if d.Settings == nil {
			raw = []byte("{}")
		}
		s, err := klaviyo.ParseSettings(raw)
		if err == nil {
			err = s.Validate()
		}
		if err != nil {
			return cfg, fmt.Errorf("destinations %s.settings: %w", d.Name, err)
		}
	}
	return cfg, nil
}
