// Package config owns relay.yaml: its shape, defaults, environment
// overrides and validation. Destination settings are kept raw here; the
// destination's own package validates them (klaviyo.ParseSettings).
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole of relay.yaml.
type Config struct {
	// Addr serves the ingest API, /health and /ready, and /admin and
	// /metrics unless AdminAddr is set.
	Addr string `yaml:"addr"`
	// AdminAddr, when set, serves /admin and /metrics on a listener of
	// their own (and Addr no longer does), so the ingest port can face the
	// internet alone.
	AdminAddr string `yaml:"adminAddr"`
	// TrustedProxies are the CIDRs (or addresses) of reverse proxies whose
	// X-Forwarded-Proto: https marks the console's session cookie Secure.
	TrustedProxies []string `yaml:"trustedProxies"`
	// Data is the directory of the embedded SQLite store and queue.
	Data  string `yaml:"data"`
	Admin Admin  `yaml:"admin"`
	// Sources are the SDK-facing sources and their write keys. Keys created
	// in the console are kept in the store in addition to these.
	Sources      []Source      `yaml:"sources"`
	Destinations []Destination `yaml:"destinations"`
	// Queue is the queue backend: sqlite (embedded, default) or jetstream.
	Queue string `yaml:"queue"`
	// Store holds the delivery log, dead letters, settings and write keys:
	// sqlite (embedded, default) or postgres.
	Store    string   `yaml:"store"`
	NATS     NATS     `yaml:"nats"`
	Postgres Postgres `yaml:"postgres"`
	Limits   Limits   `yaml:"limits"`
	Delivery Delivery `yaml:"delivery"`
	// Retention bounds what the store keeps.
	Retention Retention `yaml:"retention"`
	Log       Log       `yaml:"log"`
}

// Admin protects the console.
type Admin struct {
	// Token is required to use /admin. Empty: a random token is generated
	// at start and printed once.
	Token string `yaml:"token"`
	// DeletionKey also authenticates the user deletion API (RudderStack's
	// and Segment's regulation endpoints), so a privacy tool need not hold
	// the admin token. Empty: only the admin token does.
	DeletionKey string `yaml:"deletionKey"`
}

// Source is one SDK-facing source.
type Source struct {
	Name      string   `yaml:"name"`
	WriteKeys []string `yaml:"writeKeys"`
}

// Destination is one delivery target.
type Destination struct {
	Name string `yaml:"name"`
	// Type is a registered destination type ("klaviyo", "webhook").
	Type    string   `yaml:"type"`
	Sources []string `yaml:"sources"`
	// Endpoint is the destination's base URL (Klaviyo's API, a
	// simulator's in tests and demos), when its type uses one.
	Endpoint string         `yaml:"endpoint"`
	Settings map[string]any `yaml:"settings"`
}

// NATS configures the JetStream queue.
type NATS struct {
	URL string `yaml:"url"`
	// Prefix names the streams, subjects and buckets; nodes that share
	// work use the same one (default RELAY).
	Prefix string `yaml:"prefix"`
	// AckWait is how long a silent node (killed, partitioned) keeps its
	// unfinished jobs before JetStream hands them to another node
	// (default 30s).
	AckWait time.Duration `yaml:"ackWait"`
}

// Postgres configures the PostgreSQL store.
type Postgres struct {
	DSN string `yaml:"dsn"`
}

// Limits bound what ingest accepts.
type Limits struct {
	MaxRequestBytes int   `yaml:"maxRequestBytes"`
	MaxEventBytes   int   `yaml:"maxEventBytes"`
	MaxQueueDepth   int64 `yaml:"maxQueueDepth"`
	// MaxBodyBytesInFlight bounds the request bytes all ingest requests
	// hold at once (0: the gateway's default, 48 MB); past it, 429.
	MaxBodyBytesInFlight int64 `yaml:"maxBodyBytesInFlight"`
	// MaxBodyBytesInFlightPerSource bounds one source's part of it (0:
	// three quarters of it), so a source sending large batches flat out
	// leaves room for the others.
	MaxBodyBytesInFlightPerSource int64 `yaml:"maxBodyBytesInFlightPerSource"`
}

// Delivery tunes the delivery workers.
type Delivery struct {
	// BatchWait is how long delivery waits to fill a bulk request.
	BatchWait time.Duration `yaml:"batchWait"`
	// MaxRetryAge is how long an event whose delivery keeps failing for
	// reasons that can pass (429, 5xx, timeouts) is retried before it is
	// dead-lettered. Failures Klaviyo says cannot pass (4xx) dead-letter at
	// once.
	MaxRetryAge time.Duration `yaml:"maxRetryAge"`
	// Workers per destination.
	Workers int `yaml:"workers"`
}

// Retention bounds the store's delivery log, replayed dead letters and
// audit log, pruned every minute; zero keeps without limit. Dead letters
// not replayed are never pruned.
type Retention struct {
	LogMaxRows     int64         `yaml:"logMaxRows"`
	LogMaxAge      time.Duration `yaml:"logMaxAge"`
	ReplayedMaxAge time.Duration `yaml:"replayedMaxAge"`
	// AuditMaxAge is zero by default: the audit log is a compliance record
	// (HIPAA asks for six years of documentation), so expiring it is the
	// operator's decision.
	AuditMaxAge time.Duration `yaml:"auditMaxAge"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Default returns the embedded defaults: everything on SQLite in ./data.
func Default() Config {
	return Config{
		Addr:  "127.0.0.1:8080",
		Data:  "./data",
		Queue: "sqlite",
		Store: "sqlite",
		NATS:  NATS{URL: "nats://127.0.0.1:4222", Prefix: "RELAY", AckWait: 30 * time.Second},
		Limits: Limits{
			MaxRequestBytes: 4 << 20,
			MaxEventBytes:   32 << 10,
			MaxQueueDepth:   5_000_000,
		},
		Delivery:  Delivery{BatchWait: 500 * time.Millisecond, MaxRetryAge: 24 * time.Hour, Workers: 2},
		Retention: Retention{LogMaxRows: 1_000_000, LogMaxAge: 30 * 24 * time.Hour, ReplayedMaxAge: 30 * 24 * time.Hour},
		Log:       Log{Level: "info", Format: "text"},
	}
}

// Load reads the YAML file at path (none when path is empty) over the
// defaults, expands ${VAR} references from the environment (so secrets can
// stay out of the file), then applies RELAY_* overrides, then validates.
func Load(path string, env func(string) (string, bool)) (Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if err := Parse(raw, env, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// ErrMissingEnv means the file references an environment variable that is
// not set.
var ErrMissingEnv = errors.New("environment variable not set")

// Parse decodes YAML into cfg, refusing unknown keys, and expands ${VAR}
// references inside the parsed values (see expandEnv).
func Parse(raw []byte, env func(string) (string, bool), cfg *Config) error {
	marks := newEnvMarks(raw)
	var doc yaml.Node
	if err := yaml.Unmarshal(marks.hide(raw), &doc); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty, or only comments: the defaults stand
	}
	if err := marks.expandEnv(&doc, "", env); err != nil {
		return err
	}
	if err := checkKnownFields(&doc, reflect.TypeOf(cfg)); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if err := doc.Decode(cfg); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	return nil
}

// applyEnv applies the RELAY_* variables. A destination's secrets and list
// id can be set with RELAY_DEST_<NAME>_<SETTING>, e.g.
// RELAY_DEST_KLAVIYO_PRIVATEAPIKEY, so they need not be in the file.
func applyEnv(cfg *Config, env func(string) (string, bool)) error {
	str := map[string]*string{
		"RELAY_ADDR":         &cfg.Addr,
		"RELAY_ADMIN_ADDR":   &cfg.AdminAddr,
		"RELAY_DATA":         &cfg.Data,
		"RELAY_ADMIN_TOKEN":  &cfg.Admin.Token,
		"RELAY_DELETION_KEY": &cfg.Admin.DeletionKey,
		"RELAY_QUEUE":        &cfg.Queue,
		"RELAY_STORE":        &cfg.Store,
		"RELAY_NATS_URL":     &cfg.NATS.URL,
		"RELAY_NATS_PREFIX":  &cfg.NATS.Prefix,
		"RELAY_POSTGRES_DSN": &cfg.Postgres.DSN,
		"RELAY_LOG_LEVEL":    &cfg.Log.Level,
		"RELAY_LOG_FORMAT":   &cfg.Log.Format,
	}
	for name, p := range str {
		if v, ok := env(name); ok {
			*p = v
		}
	}
	if v, ok := env("RELAY_TRUSTED_PROXIES"); ok {
		cfg.TrustedProxies = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cfg.TrustedProxies = append(cfg.TrustedProxies, p)
			}
		}
	}
	if v, ok := env("RELAY_NATS_ACK_WAIT"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("RELAY_NATS_ACK_WAIT: %q is not a positive duration", v)
		}
		cfg.NATS.AckWait = d
	}
	if v, ok := env("RELAY_LIMITS_MAX_QUEUE_DEPTH"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("RELAY_LIMITS_MAX_QUEUE_DEPTH: %q is not an integer", v)
		}
		cfg.Limits.MaxQueueDepth = n
	}
	for i := range cfg.Destinations {
		d := &cfg.Destinations[i]
		prefix := "RELAY_DEST_" + envName(d.Name) + "_"
		for _, key := range settingEnvKeys {
			if v, ok := env(prefix + strings.ToUpper(key)); ok {
				if d.Settings == nil {
					d.Settings = map[string]any{}
				}
				d.Settings[key] = v
			}
		}
		if v, ok := env(prefix + "ENDPOINT"); ok {
			d.Endpoint = v
		}
	}
	return nil
}

// settingEnvKeys are the destination settings that may come from the
// environment: the secrets, and the list id that differs per environment.
var settingEnvKeys = []string{"privateApiKey", "publicApiKey", "listId"}

func envName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, s)
}
