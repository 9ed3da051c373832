package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/gateway"
	"github.com/relaycdp/relay/internal/store"
)

// keyResolver adapts the store's write-key check to the gateway's.
type keyResolver struct{ s store.KeyResolver }

func (k keyResolver) SourceForKey(ctx context.Context, key string) (string, bool, error) {
	src, err := k.s.ResolveWriteKey(ctx, key)
	if errors.Is(err, store.ErrUnknownWriteKey) || errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return src, true, nil
}

// rejectionLog records events refused at ingest in the delivery log, so
// the console shows why an event never reached delivery.
type rejectionLog struct{ s store.DeliveryLog }

func (r rejectionLog) Rejected(ctx context.Context, source string, items []gateway.Rejection) error {
	entries := make([]store.LogEntry, 0, len(items))
	for _, it := range items {
		id := it.MessageID
		if id == "" {
			// The log is keyed by message id; an event without a readable
			// one is still shown, under its position in the request.
			id = fmt.Sprintf("(no messageId: event %d of a request at %s)", it.Index, it.ReceivedAt.Format("15:04:05.000"))
		}
		entries = append(entries, store.LogEntry{
			MessageID: id,
			Source:    source,
			Type:      it.Type,
			Status:    store.StatusRejected,
			Detail:    it.Reason,
			Time:      it.ReceivedAt,
		})
	}
	return r.s.Record(ctx, entries)
}

// routes maps each source to the destinations it feeds. A destination
// without a sources list takes every source.
type routes map[string][]string

func newRoutes(cfg config.Config) routes {
	r := routes{}
	for _, d := range cfg.Destinations {
		srcs := d.Sources
		if len(srcs) == 0 {
			for _, s := range cfg.Sources {
				srcs = append(srcs, s.Name)
			}
			srcs = append(srcs, anySource)
		}
		for _, s := range srcs {
			r[s] = append(r[s], d.Name)
		}
	}
	return r
}

// anySource stands for sources created in the console, which the config
// file cannot name: destinations without a sources list take them too.
const anySource = "*"

func (r routes) Destinations(source string) []string {
	if d, ok := r[source]; ok {
		return d
	}
	return r[anySource]
}

func seedSources(srcs []config.Source) []store.Source {
	out := make([]store.Source, 0, len(srcs))
	for _, s := range srcs {
		ss := store.Source{Name: s.Name}
		for _, k := range s.WriteKeys {
			ss.WriteKeys = append(ss.WriteKeys, store.WriteKey{Key: k, Seeded: true})
		}
		out = append(out, ss)
	}
	return out
}

// adminToken is the configured console token (its length checked with
// the config, config.CheckAdminSecrets), or a random one for this run.
func adminToken(configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate admin token: %w", err)
	}
	return "adm_" + hex.EncodeToString(b), nil
}

// localAdminURL is where a process on this machine reaches the console
// served on addr (a wildcard listen address means loopback works).
func localAdminURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/admin"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/admin"
}
