package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/spec"
)

// maxTransformInput caps stdin: far above Segment's 500 KB batch and
// RudderStack's 4 MB request, low enough to fail clearly on a wrong file.
const maxTransformInput = 64 << 20

// runTransform is `relay transform [--settings FILE] [--received-at RFC3339]`
// (DESIGN.md §3): events on stdin, a JSON array of outcomes on stdout.
// Exit 0 when every event mapped or was skipped, 1 when any event has an
// error (the output is still complete), 2 on unreadable input or invalid
// settings.
func runTransform(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("transform", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settingsFile := fs.String("settings", "", "Klaviyo destination settings, JSON or YAML (default settings when absent)")
	receivedAt := fs.String("received-at", "", "when the events were received (RFC 3339), for clock-skew correction; none when absent")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: relay transform [--settings FILE] [--received-at RFC3339] < events.json")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relay transform: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	s := klaviyo.DefaultSettings()
	if *settingsFile != "" {
		data, err := os.ReadFile(*settingsFile)
		if err != nil {
			fmt.Fprintf(stderr, "relay transform: read settings: %v\n", err)
			return 2
		}
		if s, err = klaviyo.ParseSettings(data); err != nil {
			fmt.Fprintf(stderr, "relay transform: %s: %v\n", *settingsFile, err)
			return 2
		}
	}
	if err := s.Validate(); err != nil {
		fmt.Fprintf(stderr, "relay transform: invalid settings: %v\n", err)
		return 2
	}
	for _, w := range s.Warnings() {
		fmt.Fprintf(stderr, "relay transform: warning: %s\n", w)
	}
	if s.Mode != "" || s.Transformation != "" || s.Filter != nil || s.PropertyAllowlist != nil || s.TraitAllowlist != nil ||
		s.DropIP != nil || s.DropUserAgent != nil || s.StripPageURLs != nil || s.DropFreeText != nil || s.Identifiers != nil {
		fmt.Fprintln(stderr, "relay transform: warning: the privacy, transformation and filter settings are not applied here; the console's event tester applies them (docs/PRIVACY.md)")
	}

	opts := spec.Options{MaxEventBytes: 32768}
	if *receivedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, *receivedAt)
		if err != nil {
			fmt.Fprintf(stderr, "relay transform: --received-at %q is not an RFC 3339 time\n", *receivedAt)
			return 2
		}
		opts.ReceivedAt = t
	}

	body, err := io.ReadAll(io.LimitReader(stdin, maxTransformInput+1))
	if err != nil {
		fmt.Fprintf(stderr, "relay transform: read stdin: %v\n", err)
		return 2
	}
	if len(body) > maxTransformInput {
		fmt.Fprintf(stderr, "relay transform: input is larger than %d bytes\n", maxTransformInput)
		return 2
	}
	out, code, err := klaviyo.TransformOutput(body, opts, s)
	if err != nil {
		if errors.Is(err, spec.ErrMalformed) {
			fmt.Fprintf(stderr, "relay transform: unreadable input: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "relay transform: %v\n", err)
		}
		return klaviyo.ExitBadInput
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "relay transform: write output: %v\n", err)
		return klaviyo.ExitBadInput
	}
	return code
}
