package kapi

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo/openapi"
)

// Config configures a Client. The zero value of every field means its
// default.
type Config struct {
	// BaseURL is Klaviyo's API origin. Default https://a.klaviyo.com.
	BaseURL string
	// Revision is the `revision` header. Default openapi.Revision(), the
	// revision of the embedded spec the mapping is validated against.
	Revision string
	// Timeout bounds one HTTP attempt (not the whole call, which is bounded
	// by the caller's ctx). Default 30s.
	Timeout time.Duration
	// MaxAttempts is how many times one call sends a request that fails
	// Retryable (5xx, timeout, network error). 429s do not count: a
	// throttled call waits and retries for as long as its ctx allows.
	// Default 4.
	MaxAttempts int
	// Limits are the rate limits keyed "METHOD /path-template". Requests to
	// endpoints not listed are refused with ErrUnknownEndpoint. Default
	// openapi.RateLimits().
	Limits map[string]openapi.Limit
	// HTTPClient sends the requests. Default: a client of its own with a
	// tuned Transport (keep-alive, MaxIdleConnsPerHost 64); its Timeout
	// should be 0 since Timeout above applies per attempt.
	HTTPClient *http.Client

	// DefaultRetryAfter is the block after a 429 without a usable
	// Retry-After header. It doubles on each further such 429 of the same
	// endpoint and key, up to one steady window (60s), and resets after a
	// success. Default 1s.
	DefaultRetryAfter time.Duration
	// BackoffBase and BackoffMax shape the retry backoff: attempt n waits a
	// uniformly random time in [0, min(BackoffMax, BackoffBase·2^(n-1)))
	// ("full jitter"). Defaults 250ms and 10s.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// WindowMargin widens both rate-limit windows (1s and 60s) so that
	// scheduling and network jitter cannot push one request too many into
	// one of Klaviyo's windows. Default 100ms.
	WindowMargin time.Duration
	// MaxResponseBytes caps a response body read into memory. Default 8 MiB.
	MaxResponseBytes int64
	// Limiter, when set, holds the rate-limit state instead of this
	// Client's memory, so that several processes share each key's budget
	// and 429 blocks (see Limiter). Nil: in memory, per Client.
	Limiter Limiter
}

const (
	defaultBaseURL          = "https://a.klaviyo.com"
	defaultTimeout          = 30 * time.Second
	defaultMaxAttempts      = 4
	defaultRetryAfter       = time.Second
	defaultBackoffBase      = 250 * time.Millisecond
	defaultBackoffMax       = 10 * time.Second
	defaultWindowMargin     = 100 * time.Millisecond
	defaultMaxResponseBytes = 8 << 20
	// burstWindow and steadyWindow are Klaviyo's two fixed windows.
	burstWindow  = time.Second
	steadyWindow = time.Minute
)

// withDefaults returns cfg with defaults filled in, or an error naming the
// first invalid field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = defaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return cfg, fmt.Errorf("config BaseURL %q: want an absolute http(s) URL without query", cfg.BaseURL)
	}
	if cfg.Revision == "" {
		cfg.Revision = openapi.Revision()
	}
	if cfg.Revision == "" {
		return cfg, fmt.Errorf("config Revision: empty and the embedded spec has none")
	}
	if cfg.Limits == nil {
		if cfg.Limits, err = openapi.RateLimits(); err != nil {
			return cfg, fmt.Errorf("config Limits: %w", err)
		}
	}
	if len(cfg.Limits) == 0 {
		return cfg, fmt.Errorf("config Limits: no endpoints")
	}
	for k, l := range cfg.Limits {
		if _, err := parseTemplate(k); err != nil {
			return cfg, fmt.Errorf("config Limits: %w", err)
		}
		if l.BurstPerSecond < 1 || l.SteadyPerMin < 1 {
			return cfg, fmt.Errorf("config Limits %q: burst %d/s and steady %d/min must both be at least 1", k, l.BurstPerSecond, l.SteadyPerMin)
		}
	}
	durations := []struct {
		name string
		p    *time.Duration
		def  time.Duration
	}{
		{"Timeout", &cfg.Timeout, defaultTimeout},
		{"DefaultRetryAfter", &cfg.DefaultRetryAfter, defaultRetryAfter},
		{"BackoffBase", &cfg.BackoffBase, defaultBackoffBase},
		{"BackoffMax", &cfg.BackoffMax, defaultBackoffMax},
		{"WindowMargin", &cfg.WindowMargin, defaultWindowMargin},
	}
	for _, d := range durations {
		if *d.p < 0 {
			return cfg, fmt.Errorf("config %s: %s is negative", d.name, *d.p)
		}
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	if cfg.BackoffMax < cfg.BackoffBase {
		cfg.BackoffMax = cfg.BackoffBase
	}
	if cfg.MaxAttempts < 0 {
		return cfg, fmt.Errorf("config MaxAttempts: %d is negative", cfg.MaxAttempts)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = defaultMaxAttempts
	}
	if cfg.MaxResponseBytes < 0 {
		return cfg, fmt.Errorf("config MaxResponseBytes: %d is negative", cfg.MaxResponseBytes)
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = defaultMaxResponseBytes
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: newTransport()}
	}
	return cfg, nil
}

// newTransport is tuned for many concurrent calls to one host: the stdlib
// default keeps only 2 idle connections per host, so a burst of workers
// would open (and TIME_WAIT) a new connection per request.
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
