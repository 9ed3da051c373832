// Package sim owns Relay's Klaviyo simulator: an in-memory Klaviyo that
// serves every operation of the embedded OpenAPI subset
// (internal/klaviyo/openapi), validates each request the way Klaviyo does
// (auth, revision header, media type, body schema, plus the semantic checks
// the schema cannot express), keeps profiles, events, lists, subscriptions
// and bulk jobs, enforces Klaviyo's per-endpoint rate limits and injects
// faults on request. Tests, benchmarks and `relay serve --demo` run it in
// process; `relay sim` serves it alone.
//
// Besides Klaviyo's API it serves, without authentication:
//
//	GET  /_sim/state   JSON snapshot (State); ?requestLog=false leaves the log out
//	GET  /_sim/faults  current Faults
//	POST /_sim/faults  replace Faults (JSON body, see Faults)
//	POST /_sim/reset   forget profiles, events, lists, jobs, counters and rate windows
//
// Relay additions to Klaviyo's responses are marked "relay addition" where
// they are made (the profile import job's inline "errors" attribute); the
// rest follows the spec and Klaviyo's docs. Known simplifications:
//   - /api/events and all /client/* calls are applied before the 202 is
//     sent (Klaviyo processes them asynchronously); bulk jobs are applied
//     after Config.JobDelay, in the order they were accepted.
//   - Events are deduplicated as Klaviyo documents: same profile, metric
//     and unique_id (which defaults to the event time to the second).
//   - Conflicting identifiers: profile-import/PATCH answer 409
//     duplicate_profile; events and subscription jobs attach to the first
//     profile found (id, email, phone_number, external_id, anonymous_id)
//     and leave the other profile's identifier where it is.
//   - Item-count limits answer 400 with a pointer to the array; byte
//     limits answer 413. Unknown profile ids answer 400 with a pointer.
//   - Lists are created on first use and have no double opt-in: subscribe
//     jobs subscribe at once. Unsubscribe removes from the given list and
//     sets UNSUBSCRIBED (Klaviyo may unsubscribe globally).
//   - GET /api/profiles supports equals(...) and any(...) filters on
//     email, phone_number, external_id, anonymous_id and id only.
//   - An unknown company_id (when Config.PublicKeys is set) answers 400.
//
// Faults never reach the store: a faulted request is not applied.
//
// Locking: s.mu guards the data store, job states, counters and the
// request log; s.rlMu guards the rate-limit windows; s.fmu guards the
// faults; s.jobs.mu guards the pending-job queue. Only one nesting exists:
// s.mu, then s.jobs.mu (enqueueJob); never the reverse.
package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo/openapi"
)

// DemoKey is the private API key the simulator accepts when Config.Keys is
// empty (what `relay sim` without --key uses, and prints).
const DemoKey = "pk_relay_sim_demo"

// DefaultJobDelay is how long bulk jobs stay queued/processing when
// Config.JobDelay is zero.
const DefaultJobDelay = 50 * time.Millisecond

// Config configures a simulator. The zero value is usable: it accepts
// DemoKey, any company id, enforces no rate limits and completes jobs after
// DefaultJobDelay.
type Config struct {
	// Keys are the private API keys accepted on /api/* (Authorization:
	// Klaviyo-API-Key <key>). Empty means DemoKey only.
	Keys []string
	// PublicKeys are the company ids (site ids) accepted on /client/*.
	// Empty means any non-empty company_id.
	PublicKeys []string
	// Faults are injected from the start (see SetFaults).
	Faults Faults
	// RateLimits enforces Klaviyo's per-endpoint burst and steady windows
	// per API key (per company id on /client/*). `relay sim` turns it on.
	RateLimits bool
	// JobDelay is how long a bulk job stays queued and processing before it
	// is applied and completes; 0 means DefaultJobDelay, negative means as
	// soon as the job worker runs.
	JobDelay time.Duration
	// Clock returns the current time (timestamps, rate-limit windows,
	// storms). Nil means time.Now. Job scheduling always uses real time.
	Clock func() time.Time
	// MaxRequestLog caps the request log kept for Requests() and
	// /_sim/state; 0 means 1,000,000 records. Counters are never capped.
	MaxRequestLog int
}

// Sim is an in-memory Klaviyo. It is safe for concurrent use.
type Sim struct {
	cfg       Config
	log       *slog.Logger
	validator *openapi.Validator
	schemas   *schemaIndex
	routes    []route
	limits    map[string]openapi.Limit
	keys      map[string]bool
	public    map[string]bool
	now       func() time.Time
	jobDelay  time.Duration

	fmu         sync.Mutex
	faults      Faults
	faultsSetAt time.Time

	rlMu    sync.Mutex
	windows map[string]*window

	mu   sync.Mutex
	data *store
	reqs requestLog

	jobs    *jobQueue
	closing chan struct{}
	closed  sync.Once
	wg      sync.WaitGroup
}

// New builds a simulator and starts its job worker; call Close to stop it.
func New(cfg Config, log *slog.Logger) (*Sim, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Faults.validate(); err != nil {
		return nil, fmt.Errorf("sim faults: %w", err)
	}
	v, err := openapi.NewValidator(context.Background())
	if err != nil {
		return nil, fmt.Errorf("sim validator: %w", err)
	}
	schemas, err := newSchemaIndex(openapi.SpecJSON)
	if err != nil {
		return nil, fmt.Errorf("sim schemas: %w", err)
	}
	limits, err := openapi.RateLimits()
	if err != nil {
		return nil, fmt.Errorf("sim rate limits: %w", err)
	}
	routes, err := buildRoutes(limits)
	if err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:       cfg,
		log:       log,
		validator: v,
		schemas:   schemas,
		routes:    routes,
		limits:    limits,
		keys:      map[string]bool{},
		public:    map[string]bool{},
		now:       cfg.Clock,
		jobDelay:  cfg.JobDelay,
		windows:   map[string]*window{},
		data:      newStore(),
		closing:   make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.jobDelay == 0 {
		s.jobDelay = DefaultJobDelay
	}
	if s.jobDelay < 0 {
		s.jobDelay = 0
	}
	keys := cfg.Keys
	if len(keys) == 0 {
		keys = []string{DemoKey}
	}
	for _, k := range keys {
		if k == "" {
			return nil, errors.New("sim: empty API key in Config.Keys")
		}
		s.keys[k] = true
	}
	for _, k := range cfg.PublicKeys {
		if k == "" {
			return nil, errors.New("sim: empty company id in Config.PublicKeys")
		}
		s.public[k] = true
	}
	max := cfg.MaxRequestLog
	if max <= 0 {
		max = 1_000_000
	}
	s.reqs = newRequestLog(max)
	s.faults = cfg.Faults
	s.faultsSetAt = s.now()
	s.jobs = newJobQueue()
	s.wg.Add(1)
	go s.runJobs()
	return s, nil
}

// Close stops the job worker (pending jobs are left unapplied) and releases
// requests held by the timeout fault. It is safe to call more than once.
func (s *Sim) Close() {
	s.closed.Do(func() { close(s.closing) })
	s.wg.Wait()
}

// Handler returns the simulator's HTTP handler (Klaviyo's API and /_sim/*).
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// SetFaults replaces the injected faults. A storm's For period starts now.
func (s *Sim) SetFaults(f Faults) {
	s.log.Info("sim faults set", slog.Float64("error_rate", f.ErrorRate), slog.Duration("latency", f.Latency),
		slog.Float64("timeout_rate", f.TimeoutRate), slog.Float64("reset_rate", f.ResetRate),
		slog.Float64("storm_rate", f.Storm.Rate), slog.Any("endpoints", f.Endpoints))
	s.fmu.Lock()
	s.faults = f
	s.faultsSetAt = s.now()
	s.fmu.Unlock()
}

// Faults returns the faults in force.
func (s *Sim) Faults() Faults {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.faults
}

// Reset forgets all data, jobs, counters, the request log and the rate
// windows. Keys and faults stay.
func (s *Sim) Reset() {
	s.jobs.clear()
	s.mu.Lock()
	s.data = newStore()
	s.reqs.reset()
	s.mu.Unlock()
	s.rlMu.Lock()
	s.windows = map[string]*window{}
	s.rlMu.Unlock()
}

// KeyHash is the short, non-reversible name of an API key (or company id)
// used in the request log: the first 12 hex digits of its SHA-256. Raw keys
// are never stored in state output.
func KeyHash(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:6])
}

// route is one operation: method and path template, split in segments.
type route struct {
	method   string
	template string
	segs     []string
	limit    openapi.Limit
	client   bool // /client/*: company_id, no private key
}

func buildRoutes(limits map[string]openapi.Limit) ([]route, error) {
	var rs []route
	for k, l := range limits {
		method, tmpl, ok := strings.Cut(k, " ")
		if !ok {
			return nil, fmt.Errorf("sim: bad rate-limit key %q", k)
		}
		rs = append(rs, route{method: method, template: tmpl, segs: splitPath(tmpl), limit: l,
			client: strings.HasPrefix(tmpl, "/client/")})
	}
	return rs, nil
}

func splitPath(p string) []string { return strings.Split(strings.Trim(p, "/"), "/") }

// match finds the route for a method and path. It returns the path
// parameters, and whether the path exists under another method (405).
func (s *Sim) match(method, path string) (*route, map[string]string, bool) {
	segs := splitPath(path)
	pathKnown := false
	for i := range s.routes {
		r := &s.routes[i]
		if len(r.segs) != len(segs) {
			continue
		}
		var params map[string]string
		ok := true
		for j, t := range r.segs {
			if strings.HasPrefix(t, "{") {
				if segs[j] == "" {
					ok = false
					break
				}
				if params == nil {
					params = map[string]string{}
				}
				params[strings.Trim(t, "{}")] = segs[j]
				continue
			}
			if t != segs[j] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		pathKnown = true
		if r.method == method {
			return r, params, true
		}
	}
	return nil, nil, pathKnown
}
