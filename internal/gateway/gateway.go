// Package gateway owns Relay's HTTP ingest API: the Segment/RudderStack
// tracking endpoints that unchanged SDKs post to (clients.md §1, §2, §4, §6).
// It authenticates write keys, decompresses and size-limits bodies, parses
// them with spec.Parse, fans every valid event out to the destinations of its
// source as queue.Messages, and answers 200 only once the queue has made them
// durable. Per-event problems never fail a request; they are recorded through
// Rejections for the console's delivery log. The one exception is an event
// over MaxEventBytes sent alone to a single-event route: it is answered 400
// (and recorded), since a 200 would claim it was kept.
//
// Status codes the ingest endpoints answer (and the fuzz test enforces):
//
//	200 accepted (also /v1/m, which is ignored)
//	204 CORS preflight (OPTIONS)
//	400 body unreadable: bad gzip, not JSON, empty batch, more than
//	    spec.MaxBatchEvents events (spec.ErrMalformed); or the one event of
//	    a single-event route (/v1/track, …) is over MaxEventBytes
//	401 missing write key, or unknown/revoked write key ("invalid write key");
//	    the key must come in a header (or ?writeKey= on the beacon route)
//	    except on analytics.js's routes, and is checked before the body is read
//	413 also answered before reading when Content-Length is over the limit
//	404 unknown path; 405 wrong method (ServeMux)
//	408 the body could not be read from the client (timeout, disconnect)
//	413 body over MaxRequestBytes (after decompression)
//	415 unsupported Content-Encoding (gzip, x-gzip, deflate, identity work)
//	429 queue over MaxQueueDepth, or the bodies in flight over
//	    MaxBodyBytesInFlight, with Retry-After
//	500 unexpected internal error (spec.Parse failing other than ErrMalformed)
//	503 source lookup or Enqueue failed or timed out, with Retry-After
//
// Error bodies are {"success":false,"message":"…"}; no SDK parses them.
//
// An event of a source that feeds no destination is accepted (200) and
// counted in relay_gateway_events_unrouted_total; nothing is enqueued for
// it. Filtering by the event's integrations map is not done here but by
// the router, per destination.
//
// 400 is reserved for bodies that can never succeed, because analytics-go v3
// retries every status ≥ 300 (clients.md §3); 408, 429, 500 and 503 are
// retried by every SDK.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/relaycdp/relay/internal/cpubudget"
	"github.com/relaycdp/relay/internal/queue"
)

// Defaults for Config's zero values.
const (
	// DefaultMaxRequestBytes is RudderStack's gateway limit (maxReqSizeInKB
	// = 4000, clients.md §2). Segment's own limit is 500 KB per request; the
	// larger one is accepted so RudderStack SDKs (4 MB hard cap) work too.
	DefaultMaxRequestBytes = 4000 << 10
	// DefaultMaxEventBytes is the 32 KB per-event limit of both Segment and
	// RudderStack.
	DefaultMaxEventBytes  = 32 << 10
	DefaultDepthCacheTTL  = time.Second
	DefaultRetryAfter     = 5 * time.Second
	DefaultEnqueueTimeout = 15 * time.Second
	// DefaultMaxBodyBytesInFlight bounds the memory all requests' bodies
	// take together, counting what parsing builds from them (parseFactor).
	DefaultMaxBodyBytesInFlight = 48 << 20
	// MaxBodyKeyBytes caps a body read before its write key is known
	// (analytics.js's routes, whose write key may be in the body only):
	// Segment's own limit per batch, so an unauthenticated client cannot
	// make relay hold megabytes.
	MaxBodyKeyBytes = 500 << 10

	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// Config tunes the gateway. Zero values take the defaults above.
type Config struct {
	// MaxRequestBytes caps a request body after decompression (413 above
	// it), read through a streaming limit so a gzip bomb never allocates
	// beyond it. The compressed wire body is capped too, at this size plus
	// 1/64 (compression can grow incompressible data slightly).
	MaxRequestBytes int64
	// MaxEventBytes caps one event (spec.Options.MaxEventBytes); a larger
	// event is rejected on its own, the rest of the batch is accepted.
	MaxEventBytes int
	// MaxQueueDepth makes the gateway answer 429 while Deps.Depth reports
	// more jobs than this, so SDKs back off. 0 disables the check.
	MaxQueueDepth int64
	// DepthCacheTTL is how long a Depth reading is reused (default 1 s), so
	// the queue is asked at most about once per TTL, not once per request.
	DepthCacheTTL time.Duration
	// RetryAfter is sent (in whole seconds, at least 1) with 429 and 503.
	RetryAfter time.Duration
	// MaxBodyBytesInFlight bounds the bytes of request bodies received and
	// not yet answered, over all requests, counting what parsing builds from
	// them (parseFactor times the body): a request that would go past it
	// gets 429 with Retry-After. Bytes are counted as they arrive, never
	// from Content-Length.
	MaxBodyBytesInFlight int64
	// MaxBodyBytesInFlightPerSource bounds the part of that budget one
	// source's requests may hold (default three quarters of it), so one
	// source sending large batches as fast as it can leaves room for the
	// others. Requests whose key is in their body (analytics.js's small
	// routes) count against the budget alone.
	MaxBodyBytesInFlightPerSource int64
	// EnqueueTimeout bounds how long a request waits for Enqueue (and the
	// source lookup) before answering 503. Keep it below WriteTimeout.
	EnqueueTimeout time.Duration

	// Server timeouts used by Gateway.Server. ReadHeaderTimeout and
	// ReadTimeout stop slow-loris clients holding connections; WriteTimeout
	// runs from the end of the request headers, so it must exceed
	// ReadTimeout + EnqueueTimeout.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// withDefaults returns c with zero fields set to the defaults.
func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = DefaultMaxEventBytes
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxBodyBytesInFlight == 0 {
		c.MaxBodyBytesInFlight = DefaultMaxBodyBytesInFlight
	}
	if c.MaxBodyBytesInFlightPerSource == 0 {
		// Three quarters, but never less than one largest request needs
		// (its body parseFactor times), unless that is the whole budget.
		c.MaxBodyBytesInFlightPerSource = max(c.MaxBodyBytesInFlight/4*3,
			min(c.MaxBodyBytesInFlight, c.MaxRequestBytes*parseFactor))
	}
	def(&c.DepthCacheTTL, DefaultDepthCacheTTL)
	def(&c.RetryAfter, DefaultRetryAfter)
	def(&c.EnqueueTimeout, DefaultEnqueueTimeout)
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	return c
}

// Validate reports the first invalid field, naming it.
func (c Config) Validate() error {
	switch {
	case c.MaxRequestBytes < 0:
		return fmt.Errorf("gateway.maxRequestBytes: must not be negative, got %d", c.MaxRequestBytes)
	case c.MaxEventBytes < 0:
		return fmt.Errorf("gateway.maxEventBytes: must not be negative, got %d", c.MaxEventBytes)
	case c.MaxQueueDepth < 0:
		return fmt.Errorf("gateway.maxQueueDepth: must not be negative, got %d", c.MaxQueueDepth)
	case c.MaxBodyBytesInFlight < 0:
		return fmt.Errorf("gateway.maxBodyBytesInFlight: must not be negative, got %d", c.MaxBodyBytesInFlight)
	case c.MaxBodyBytesInFlightPerSource < 0:
		return fmt.Errorf("gateway.maxBodyBytesInFlightPerSource: must not be negative, got %d", c.MaxBodyBytesInFlightPerSource)
	case c.MaxHeaderBytes < 0:
		return fmt.Errorf("gateway.maxHeaderBytes: must not be negative, got %d", c.MaxHeaderBytes)
	}
	for name, d := range map[string]time.Duration{
		"depthCacheTTL": c.DepthCacheTTL, "retryAfter": c.RetryAfter,
		"enqueueTimeout": c.EnqueueTimeout, "readHeaderTimeout": c.ReadHeaderTimeout,
		"readTimeout": c.ReadTimeout, "writeTimeout": c.WriteTimeout, "idleTimeout": c.IdleTimeout,
	} {
		if d < 0 {
			return fmt.Errorf("gateway.%s: must not be negative, got %s", name, d)
		}
	}
	return nil
}

// Enqueuer makes messages durable; queue.Queue satisfies it. Enqueue must
// return nil only once every message is committed, and keep no reference
// to the messages' payloads after it returned nil: the gateway reuses
// their buffer for the next request.
type Enqueuer interface {
	Enqueue(ctx context.Context, msgs []queue.Message) error
}

// Sources resolves a write key to its source name. ok is false for an
// unknown or revoked key; err is for lookup failures (answered 503).
type Sources interface {
	SourceForKey(ctx context.Context, writeKey string) (source string, ok bool, err error)
}

// Routes names the destinations fed by a source.
type Routes interface {
	Destinations(source string) []string
}

// Rejections records per-event problems for the console's delivery log.
type Rejections interface {
	Rejected(ctx context.Context, source string, items []Rejection) error
}

// QueueDepth reports how many jobs wait in the queue (not yet succeeded or
// aborted), for backpressure.
type QueueDepth interface {
	Depth(ctx context.Context) (int64, error)
}

// Rejection is one event of a request that was not accepted. Nothing of the
// event's content is carried beyond its ids, so PII does not leak into the
// log through this path.
type Rejection struct {
	Index      int       // position of the event in the request body
	MessageID  string    // the event's messageId, if it could be read
	Type       string    // the event's type, if it could be read
	Code       string    // spec.Error.Code, e.g. "missing_field"
	Field      string    // spec.Error.Field, e.g. "userId"
	Reason     string    // spec.Error.Message: which field and why
	ReceivedAt time.Time // when the request arrived
}

// Deps are the gateway's collaborators.
type Deps struct {
	Queue   Enqueuer // required
	Sources Sources  // required
	Routes  Routes   // required
	// Rejections is optional: without it rejected events are only counted
	// (relay_gateway_events_rejected_total) and logged at debug level.
	Rejections Rejections
	// Depth is required when Config.MaxQueueDepth > 0.
	Depth QueueDepth
	// Now is the clock for ReceivedAt; nil means time.Now.
	Now func() time.Time
	// CPU bounds the requests parsing at once, ahead of delivery's work
	// (internal/cpubudget); nil means a cpubudget.Default() of the
	// gateway's own.
	CPU CPU
}

// CPU is a share of the cores that ingest parsing takes before any
// background work; *cpubudget.Budget is one.
type CPU interface {
	Foreground(ctx context.Context) error
	Release()
}

// Gateway is the ingest API. It is safe for concurrent use.
type Gateway struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics
	depth   *depthGate
	mux     *http.ServeMux
	bufs    buffers
	// inflight is the budget of body bytes (Config.MaxBodyBytesInFlight);
	// perSource each source's share (MaxBodyBytesInFlightPerSource).
	inflight  *semaphore.Weighted
	perSource sourceBudgets
}

// New builds a gateway. reg may be nil (metrics are then not registered).
func New(cfg Config, deps Deps, log *slog.Logger, reg prometheus.Registerer) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	switch {
	case deps.Queue == nil:
		return nil, errors.New("gateway: Deps.Queue is required")
	case deps.Sources == nil:
		return nil, errors.New("gateway: Deps.Sources is required")
	case deps.Routes == nil:
		return nil, errors.New("gateway: Deps.Routes is required")
	case cfg.MaxQueueDepth > 0 && deps.Depth == nil:
		return nil, errors.New("gateway: Deps.Depth is required when maxQueueDepth is set")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.CPU == nil {
		deps.CPU = cpubudget.Default()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, deps: deps, log: log, metrics: m, inflight: semaphore.NewWeighted(cfg.MaxBodyBytesInFlight),
		perSource: sourceBudgets{size: cfg.MaxBodyBytesInFlightPerSource}}
	g.bufs.setLimits()
	if cfg.MaxQueueDepth > 0 {
		g.depth = &depthGate{src: deps.Depth, max: cfg.MaxQueueDepth, ttl: cfg.DepthCacheTTL, now: deps.Now, log: log,
			timeout: cfg.EnqueueTimeout}
	}
	g.mux = g.routes()
	return g, nil
}

// Handler serves the ingest API.
func (g *Gateway) Handler() http.Handler { return g.mux }

// Server returns an http.Server for addr serving Handler, with the
// configured timeouts so slow clients cannot hold connections forever.
// The caller runs ListenAndServe and Shutdown.
func (g *Gateway) Server(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           g.mux,
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		ReadTimeout:       g.cfg.ReadTimeout,
		WriteTimeout:      g.cfg.WriteTimeout,
		IdleTimeout:       g.cfg.IdleTimeout,
		MaxHeaderBytes:    g.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
}
