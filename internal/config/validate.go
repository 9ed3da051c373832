package config

import (
	"fmt"

	"github.com/relaycdp/relay/internal/forwarded"
	"net"
	"net/url"
	"strings"
	"time"
)

// Validate checks the whole config once at start; the error names the
// field path and the reason.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("addr: %q is not host:port: %w", c.Addr, err)
	}
	if c.AdminAddr != "" {
		_, port, err := net.SplitHostPort(c.AdminAddr)
		if err != nil {
			return fmt.Errorf("adminAddr: %q is not host:port: %w", c.AdminAddr, err)
		}
		if c.AdminAddr == c.Addr && port != "0" {
			return fmt.Errorf("adminAddr: %q is addr too; leave adminAddr empty to serve /admin on addr", c.AdminAddr)
		}
	}
	if _, err := forwarded.Parse("trustedProxies", c.TrustedProxies); err != nil {
		return err
	}
	if c.Queue != "sqlite" && c.Queue != "jetstream" {
		return fmt.Errorf("queue: %q is not one of sqlite, jetstream", c.Queue)
	}
	if c.Store != "sqlite" && c.Store != "postgres" {
		return fmt.Errorf("store: %q is not one of sqlite, postgres", c.Store)
	}
	if c.Store == "postgres" && c.Postgres.DSN == "" {
		return fmt.Errorf("postgres.dsn: required when store is postgres")
	}
	if (c.Queue == "sqlite" || c.Store == "sqlite") && c.Data == "" {
		return fmt.Errorf("data: required for the embedded store")
	}
	if err := c.validateSources(); err != nil {
		return err
	}
	if err := c.validateDestinations(); err != nil {
		return err
	}
	switch {
	case c.Limits.MaxEventBytes <= 0:
		return fmt.Errorf("limits.maxEventBytes: must be positive")
	case c.Limits.MaxRequestBytes < c.Limits.MaxEventBytes:
		return fmt.Errorf("limits.maxRequestBytes: must be at least limits.maxEventBytes")
	case c.Limits.MaxBodyBytesInFlight != 0 && c.Limits.MaxBodyBytesInFlight < int64(c.Limits.MaxRequestBytes):
		return fmt.Errorf("limits.maxBodyBytesInFlight: must be at least limits.maxRequestBytes (or 0 for the default)")
	case c.Queue == "jetstream" && c.NATS.AckWait <= 0:
		return fmt.Errorf("nats.ackWait: must be positive")
	case c.Delivery.MaxRetryAge < time.Minute:
		return fmt.Errorf("delivery.maxRetryAge: must be at least 1m")
	case c.Delivery.Workers < 1:
		return fmt.Errorf("delivery.workers: must be at least 1")
	case c.Delivery.BatchWait < 0:
		return fmt.Errorf("delivery.batchWait: must not be negative")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("log.format: %q is not one of text, json", c.Log.Format)
	}
	return nil
}

func (c Config) validateSources() error {
	names := map[string]bool{}
	keys := map[string]string{}
	for i, s := range c.Sources {
		if s.Name == "" {
			return fmt.Errorf("sources[%d].name: required", i)
		}
		if names[s.Name] {
			return fmt.Errorf("sources[%d].name: %q is used twice", i, s.Name)
		}
		names[s.Name] = true
		for j, k := range s.WriteKeys {
			if k == "" {
				return fmt.Errorf("sources[%d].writeKeys[%d]: empty", i, j)
			}
			// Never print the key itself.
			if other, dup := keys[k]; dup {
				return fmt.Errorf("sources[%d].writeKeys[%d]: the same key is also a key of source %q", i, j, other)
			}
			keys[k] = s.Name
		}
	}
	return nil
}

func (c Config) validateDestinations() error {
	sources := map[string]bool{}
	for _, s := range c.Sources {
		sources[s.Name] = true
	}
	names := map[string]bool{}
	for i, d := range c.Destinations {
		path := fmt.Sprintf("destinations[%d]", i)
		if d.Name == "" {
			return fmt.Errorf("%s.name: required", path)
		}
		if names[d.Name] {
			return fmt.Errorf("%s.name: %q is used twice", path, d.Name)
		}
		names[d.Name] = true
		// Which types exist is the destination registry's knowledge
		// (internal/app/types.go checks them at start).
		if d.Type == "" {
			return fmt.Errorf("%s.type: required", path)
		}
		for j, s := range d.Sources {
			if !sources[s] {
				return fmt.Errorf("%s.sources[%d]: no source named %q", path, j, s)
			}
		}
		if d.Endpoint != "" {
			u, err := url.Parse(d.Endpoint)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%s.endpoint: %q is not an http(s) URL", path, d.Endpoint)
			}
		}
	}
	return nil
}
