package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/relaycdp/relay/internal/forwarded"
)

// Problems is every problem a check found, each naming its field path, so
// that an operator fixes a config in one pass instead of one per restart.
type Problems []error

func (p Problems) Error() string {
	if len(p) == 1 {
		return p[0].Error()
	}
	msgs := make([]string, len(p))
	for i, e := range p {
		msgs[i] = e.Error()
	}
	// One line: start failures are read in logs and journals.
	return fmt.Sprintf("%d problems: %s", len(p), strings.Join(msgs, "; "))
}

// Unwrap lets errors.Is and errors.As see each problem.
func (p Problems) Unwrap() []error { return p }

// Err is p as an error: nil when there is no problem.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

// add records a problem.
func (p *Problems) add(format string, args ...any) {
	*p = append(*p, fmt.Errorf(format, args...))
}

// Validate checks the whole config once at start; the error (Problems)
// names every field that is wrong and why.
func (c Config) Validate() error {
	var p Problems
	c.validateListeners(&p)
	c.validateBackends(&p)
	c.validateSources(&p)
	c.validateDestinations(&p)
	c.validateLimits(&p)
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		p.add("log.format: %q is not one of text, json", c.Log.Format)
	}
	return p.Err()
}

func (c Config) validateListeners(p *Problems) {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		p.add("addr: %q is not host:port: %w", c.Addr, err)
	}
	if c.AdminAddr != "" {
		_, port, err := net.SplitHostPort(c.AdminAddr)
		if err != nil {
			p.add("adminAddr: %q is not host:port: %w", c.AdminAddr, err)
		} else if c.AdminAddr == c.Addr && port != "0" {
			p.add("adminAddr: %q is addr too; leave adminAddr empty to serve /admin on addr", c.AdminAddr)
		}
	}
	if _, err := forwarded.Parse("trustedProxies", c.TrustedProxies); err != nil {
		*p = append(*p, err)
	}
}

func (c Config) validateBackends(p *Problems) {
	if c.Queue != "sqlite" && c.Queue != "jetstream" {
		p.add("queue: %q is not one of sqlite, jetstream", c.Queue)
	}
	if c.Store != "sqlite" && c.Store != "postgres" {
		p.add("store: %q is not one of sqlite, postgres", c.Store)
	}
	if c.Store == "postgres" && c.Postgres.DSN == "" {
		p.add("postgres.dsn: required when store is postgres")
	}
	if (c.Queue == "sqlite" || c.Store == "sqlite") && c.Data == "" {
		p.add("data: required for the embedded store")
	}
	if c.Queue == "jetstream" && c.NATS.AckWait <= 0 {
		p.add("nats.ackWait: must be positive")
	}
}

func (c Config) validateLimits(p *Problems) {
	if c.Limits.MaxEventBytes <= 0 {
		p.add("limits.maxEventBytes: must be positive")
	} else if c.Limits.MaxRequestBytes < c.Limits.MaxEventBytes {
		p.add("limits.maxRequestBytes: must be at least limits.maxEventBytes")
	}
	if c.Limits.MaxBodyBytesInFlight != 0 && c.Limits.MaxBodyBytesInFlight < int64(c.Limits.MaxRequestBytes) {
		p.add("limits.maxBodyBytesInFlight: must be at least limits.maxRequestBytes (or 0 for the default)")
	}
	if share := c.Limits.MaxBodyBytesInFlightPerSource; share != 0 {
		switch {
		case share < int64(c.Limits.MaxRequestBytes):
			p.add("limits.maxBodyBytesInFlightPerSource: must be at least limits.maxRequestBytes (or 0 for the default)")
		case c.Limits.MaxBodyBytesInFlight != 0 && share > c.Limits.MaxBodyBytesInFlight:
			p.add("limits.maxBodyBytesInFlightPerSource: must not be over limits.maxBodyBytesInFlight")
		}
	}
	if c.Delivery.MaxRetryAge < time.Minute {
		p.add("delivery.maxRetryAge: must be at least 1m")
	}
	if c.Delivery.Workers < 1 {
		p.add("delivery.workers: must be at least 1")
	}
	if c.Delivery.BatchWait < 0 {
		p.add("delivery.batchWait: must not be negative")
	}
	r := c.Retention
	for _, f := range []struct {
		name     string
		negative bool
	}{{"logMaxRows", r.LogMaxRows < 0}, {"logMaxAge", r.LogMaxAge < 0}, {"replayedMaxAge", r.ReplayedMaxAge < 0}, {"auditMaxAge", r.AuditMaxAge < 0}} {
		if f.negative {
			p.add("retention.%s: must not be negative (0 keeps without limit)", f.name)
		}
	}
}

func (c Config) validateSources(p *Problems) {
	names := map[string]bool{}
	keys := map[string]string{}
	for i, s := range c.Sources {
		switch {
		case s.Name == "":
			p.add("sources[%d].name: required", i)
		case names[s.Name]:
			p.add("sources[%d].name: %q is used twice", i, s.Name)
		}
		names[s.Name] = true
		for j, k := range s.WriteKeys {
			if k == "" {
				p.add("sources[%d].writeKeys[%d]: empty", i, j)
				continue
			}
			// Never print the key itself.
			if other, dup := keys[k]; dup {
				p.add("sources[%d].writeKeys[%d]: the same key is also a key of source %q", i, j, other)
			}
			keys[k] = s.Name
		}
	}
}

func (c Config) validateDestinations(p *Problems) {
	sources := map[string]bool{}
	for _, s := range c.Sources {
		sources[s.Name] = true
	}
	names := map[string]bool{}
	for i, d := range c.Destinations {
		path := fmt.Sprintf("destinations[%d]", i)
		switch {
		case d.Name == "":
			p.add("%s.name: required", path)
		case names[d.Name]:
			p.add("%s.name: %q is used twice", path, d.Name)
		}
		names[d.Name] = true
		// Which types exist is the destination registry's knowledge
		// (internal/app checks them at start and in relay config check).
		if d.Type == "" {
			p.add("%s.type: required", path)
		}
		for j, s := range d.Sources {
			if !sources[s] {
				p.add("%s.sources[%d]: no source named %q", path, j, s)
			}
		}
		if d.Endpoint != "" {
			u, err := url.Parse(d.Endpoint)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.add("%s.endpoint: %q is not an http(s) URL", path, d.Endpoint)
			}
		}
	}
}

// MinSecretLen is the shortest admin token or deletion key relay serve
// accepts: throttling slows guessing; only length makes it hopeless.
const MinSecretLen = 16

// CheckAdminSecrets refuses a configured admin token or deletion key too
// short to resist guessing; empty is fine (a random admin token per run;
// no deletion key). relay serve and relay config check both call it; the
// other commands only present a token to a running server.
func CheckAdminSecrets(a Admin) error {
	var p Problems
	for _, s := range []struct{ field, value string }{{"admin.token", a.Token}, {"admin.deletionKey", a.DeletionKey}} {
		if n := utf8.RuneCountInString(s.value); s.value != "" && n < MinSecretLen {
			p.add("%s: must be at least %d characters, got %d; generate one with `openssl rand -hex 16`", s.field, MinSecretLen, n)
		}
	}
	return p.Err()
}

// AsProblems lists the problems in err: each of a Problems, else err alone.
func AsProblems(err error) Problems {
	var p Problems
	if errors.As(err, &p) {
		return p
	}
	return Problems{err}
}
