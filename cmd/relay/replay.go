package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/relaycdp/relay/internal/app"
)

func runReplay(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "relay.yaml (default: ./relay.yaml if present, else embedded defaults)")
	data := fs.String("data", "", "data directory of the relay whose dead letters to replay (overrides config)")
	dest := fs.String("dest", "", "replay every pending dead letter of this destination")
	id := fs.Int64("id", 0, "replay only this dead letter")
	since := fs.String("since", "", "with --dest: only dead letters created since this RFC 3339 time or this long ago (e.g. 2h)")
	_ = fs.Bool("dead-letter", true, "replay dead letters (the only source of replays: the delivery log keeps no payloads)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*dest == "") == (*id == 0) {
		fmt.Fprintln(stderr, "relay replay: give exactly one of --dest NAME or --id N")
		return 2
	}
	var from time.Time
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "relay replay: --since: %v\n", err)
			return 2
		}
		from = t
	}
	*cfgPath = configPath(*cfgPath)
	n, err := app.Replay(ctx, app.ReplayOptions{ConfigPath: *cfgPath, Data: *data, Dest: *dest, ID: *id, Since: from, Env: os.LookupEnv})
	if err != nil {
		fmt.Fprintf(stderr, "relay replay: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "re-enqueued %d dead letter(s); a running relay serve delivers them with the current settings\n", n)
	return 0
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a positive duration", s)
	}
	return now.Add(-d), nil
}
