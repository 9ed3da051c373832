package main

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// deleteStreams removes the streams and key-value buckets a JetStream run
// made (named by its prefix), so benchmarks leave NATS as they found it.
func deleteStreams(url, prefix string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var mine []string
	for n := range names.Name() {
		if strings.HasPrefix(n, prefix+"_") || strings.HasPrefix(n, "KV_"+prefix+"_") {
			mine = append(mine, n)
		}
	}
	if err := names.Err(); err != nil {
		return err
	}
	for _, n := range mine {
		if err := js.DeleteStream(ctx, n); err != nil {
			return err
		}
	}
	return nil
}
