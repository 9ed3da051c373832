package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/presink"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/usertransform"
)

// transformUsage is `relay transform -h`: what goes in, what comes out, and
// what the exit codes mean.
const transformUsage = `usage: relay transform [flags] < events > outcomes

Maps Segment/RudderStack events to the Klaviyo requests they mean, one
event at a time, in constant memory (any number of events).

Input (detected; a UTF-8 byte-order mark and whitespace are ignored):
  - one JSON array of events, of any length;
  - or JSON objects one after another, usually one a line (NDJSON); each
    object is an event or a batch envelope {"batch":[...]}.
Events without a timestamp are dated by the time they are read, as the
server dates what it receives (--received-at fixes that time instead).
The settings' transformation, filter and privacy policy run before the
mapping, as in delivery: dropped keys and console.log lines are warnings.

Output: one outcome per event, in input order:
  {"messageId":...,"requests":[...]}, with "skipped" when it maps to
  nothing, or {"messageId":...,"error":{"code":...,"message":...}}.
  --format json (default) writes a JSON array, ndjson one outcome a line;
  compact unless --pretty.

Exit codes:
  0  every event mapped or was skipped; no events at all (empty input, [])
     writes an empty array
  1  some event has an error (its outcome says which and why); the output
     is complete: one event's error never stops the others
  2  invalid flags or settings, or input that cannot be read
     further (not JSON, truncated, no comma between events, a line that is
     not an object...): stderr names the event's index, line and byte
     offset; the outcomes of the events before it were written, and a JSON
     array is left unclosed

Flags:
`

// transformGCPercent is the GOGC `relay transform` runs with unless GOGC is
// set: its live heap is one event's (a few MB at most), so the default 100
// collected every few hundred events, ~15% of its CPU on the benchmark
// corpus; 400 costs ~20 MB more RSS (docs/BENCHMARKS.md).
const transformGCPercent = 400

// runTransform is `relay transform` (DESIGN.md §3) with the wall clock.
func runTransform(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(transformGCPercent)
	}
	return transformWithClock(time.Now)(ctx, args, stdin, stdout, stderr)
}

// transformWithClock is `relay transform` reading the received time of
// events from now (tests fix it).
func transformWithClock(now func() time.Time) command {
	return func(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
		opts, s, code := transformFlags(args, stderr)
		if code >= 0 {
			return code
		}
		opts.Now = now
		_, code, err := klaviyo.TransformStream(stdin, stdout, opts, s)
		if err != nil {
			if errors.Is(err, spec.ErrMalformed) {
				fmt.Fprintf(stderr, "relay transform: unreadable input: %v\n", err)
			} else {
				fmt.Fprintf(stderr, "relay transform: %v\n", err)
			}
		}
		return code
	}
}

// transformFlags parses the flags and the settings; code is the exit code
// when they are invalid (or -h), else -1.
func transformFlags(args []string, stderr io.Writer) (opts klaviyo.StreamOptions, s klaviyo.Settings, code int) {
	fs := flag.NewFlagSet("transform", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settingsFile := fs.String("settings", "", "Klaviyo destination settings, JSON or YAML (default settings when absent)")
	receivedAt := fs.String("received-at", "", "when the events were received (RFC 3339): the received time of every event, and timestamps are\nskew-corrected against it as the server does; default: the time each event is read, no correction")
	format := fs.String("format", "json", "output: json (one JSON array) or ndjson (one outcome a line)")
	pretty := fs.Bool("pretty", false, "indent the output")
	fs.Usage = func() {
		fmt.Fprint(stderr, transformUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return opts, s, 0
		}
		return opts, s, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relay transform: unexpected argument %q (events are read from stdin)\n", fs.Arg(0))
		return opts, s, 2
	}
	switch *format {
	case "json", "ndjson":
	default:
		fmt.Fprintf(stderr, "relay transform: --format %q: want json or ndjson\n", *format)
		return opts, s, 2
	}
	opts = klaviyo.StreamOptions{MaxEventBytes: 32768, NDJSON: *format == "ndjson", Pretty: *pretty}
	if *receivedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, *receivedAt)
		if err != nil {
			fmt.Fprintf(stderr, "relay transform: --received-at %q is not an RFC 3339 time\n", *receivedAt)
			return opts, s, 2
		}
		opts.ReceivedAt = t
	}

	s = klaviyo.DefaultSettings()
	if *settingsFile != "" {
		data, err := os.ReadFile(*settingsFile)
		if err != nil {
			fmt.Fprintf(stderr, "relay transform: read settings: %v\n", err)
			return opts, s, 2
		}
		if s, err = klaviyo.ParseSettings(data); err != nil {
			fmt.Fprintf(stderr, "relay transform: %s: %v\n", *settingsFile, err)
			return opts, s, 2
		}
	}
	if err := s.Validate(); err != nil {
		fmt.Fprintf(stderr, "relay transform: invalid settings: %v\n", err)
		return opts, s, 2
	}
	for _, w := range s.Warnings() {
		fmt.Fprintf(stderr, "relay transform: warning: %s\n", w)
	}
	if presink.Applies(s.PreSink()) {
		opts.Stage = preSinkStage(s)
	}
	return opts, s, -1
}

// preSinkStage runs the settings' transformation, filter and privacy
// policy before mapping, as relay serve's delivery does, so the output is
// what would be sent.
func preSinkStage(s klaviyo.Settings) func(ev *spec.Event) (klaviyo.StageResult, error) {
	stage := presink.New("relay-transform", "klaviyo", usertransform.Limits{VMs: 1})
	return func(ev *spec.Event) (klaviyo.StageResult, error) {
		pr, err := stage.Run(context.Background(), s.PreSink(), "relay-transform", ev)
		return klaviyo.StageResult{Events: pr.Events, Skipped: pr.Skipped, Dropped: pr.Dropped, Logs: pr.Logs}, err
	}
}
