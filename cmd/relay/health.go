package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// runHealth asks a running relay serve for /health (alive) or, with
// --ready, /ready (can accept events): exit 0 when it answers 200, 1
// otherwise. It is the container HEALTHCHECK, as distroless images have
// no curl.
func runHealth(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defAddr := "127.0.0.1:8080"
	if v, ok := os.LookupEnv("RELAY_ADDR"); ok && v != "" {
		defAddr = v
	}
	addr := fs.String("addr", defAddr, "address relay serve listens on (the default is $RELAY_ADDR when set)")
	ready := fs.Bool("ready", false, "check /ready (queue, store, destinations) instead of /health")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	target, err := localURL(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "relay health: --addr: %v\n", err)
		return 2
	}
	path := "/health"
	if *ready {
		path = "/ready"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target+path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "relay health: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "relay health: %s: %v\n", path, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	stdout.Write(body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "relay health: %s answered %s\n", path, resp.Status)
		return 1
	}
	return 0
}

// localURL turns a listen address into a URL to reach it from the same
// host: a wildcard or empty host (":8080", "0.0.0.0:8080", "[::]:8080")
// means loopback.
func localURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}
