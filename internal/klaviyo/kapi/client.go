package kapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/ratelimit"
)

// Client sends calls to Klaviyo within its rate limits. It is safe for
// concurrent use; rate limits and 429 blocks are shared by every goroutine
// using the same Client, so use one Client per process (or per
// destination) rather than one per call.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client
	eps  *endpoints
	log  *slog.Logger
	m    *metrics

	win     windows
	mu      sync.Mutex
	buckets map[bucketKey]*bucket

	// hooks are test observation points, nil in production.
	hooks *hooks
}

// hooks are called with the endpoint's bucket locked, so their order is
// the order of the client's decisions.
type hooks struct {
	// passed: a request was let through to be sent at `at`.
	passed func(ctx context.Context, endpoint string, at time.Time)
	// blocked: a 429 received at `at` blocks the endpoint until `until`.
	blocked func(ctx context.Context, endpoint string, at, until time.Time)
}

// bucketKey identifies one rate-limit bucket. The key is held as a hash so
// that no Client field (printed, dumped or logged by mistake) holds it.
type bucketKey struct {
	key      [sha256.Size]byte
	endpoint string
}

// New builds a Client. log must not be nil; reg may be nil (no metrics).
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Client, error) {
	if log == nil {
		return nil, fmt.Errorf("new klaviyo client: nil logger")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("new klaviyo client: %w", err)
	}
	base, _ := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/")) // checked by withDefaults
	keys := make([]string, 0, len(cfg.Limits))
	for k := range cfg.Limits {
		keys = append(keys, k)
	}
	eps, err := newEndpoints(keys)
	if err != nil {
		return nil, fmt.Errorf("new klaviyo client: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("new klaviyo client: %w", err)
	}
	return &Client{
		cfg:     cfg,
		base:    base,
		http:    cfg.HTTPClient,
		eps:     eps,
		log:     log.With(slog.String("component", "klaviyo-client")),
		m:       m,
		win:     windows{burst: burstWindow, steady: steadyWindow, margin: cfg.WindowMargin},
		buckets: map[bucketKey]*bucket{},
	}, nil
}

// CloseIdleConnections closes the HTTP client's idle keep-alive
// connections (at shutdown, and in tests before leak checks).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Endpoint resolves a method and concrete path to its endpoint template,
// e.g. ("DELETE", "/api/lists/Y6nRLr/relationships/profiles") →
// "DELETE /api/lists/{id}/relationships/profiles".
func (c *Client) Endpoint(method, path string) (string, bool) {
	return c.eps.match(method, path)
}

// prepared is a validated request, ready to send any number of times.
type prepared struct {
	endpoint string
	method   string
	url      string
	public   bool // /client/*: no Authorization
	body     []byte
	bucket   *bucket
	shared   *sharedBucket // nil unless Config.Limiter is set
	keyFP    string
}

// Do sends one call and returns the response to the first attempt that
// succeeds (2xx). It waits for the endpoint's rate limit and for any 429
// block, retries Retryable failures up to Config.MaxAttempts with backoff,
// and retries 429s after their Retry-After for as long as ctx allows; a
// wait that would outlast ctx's deadline is not started and the call
// returns a Throttled *Error with RetryAfter set instead.
//
// On failure the error is an *Error (use ClassOf). When the failure is an
// HTTP status, the *Response is returned too (with its body).
//
// For /api/* apiKey is the private key, sent as Authorization. For
// /client/* nothing is sent (the public key is Query's company_id) and
// apiKey, or company_id when apiKey is empty, only selects the
// rate-limit bucket. req.Body may be nil, json.RawMessage or []byte (sent
// as is) or any value encoding/json can marshal.
func (c *Client) Do(ctx context.Context, apiKey string, req klaviyo.Request) (*Response, error) {
	p, err := c.prepare(apiKey, req)
	if err != nil {
		return nil, err
	}
	var (
		last     *Error // last failed attempt
		lastResp *Response
		attempts int
		failures int // Retryable failures; 429s do not count
	)
	fail := func(e *Error, resp *Response) (*Response, error) {
		e.Attempts = attempts
		return resp, e
	}
	for {
		if werr := c.acquire(ctx, p); werr != nil {
			if last == nil {
				return fail(werr, nil)
			}
			// Waiting to retry was cut short: report the last failure,
			// with ctx's error as its cause or the wait still needed.
			if last.Err == nil {
				last.Err = werr.Err
			}
			last.RetryAfter = max(last.RetryAfter, werr.RetryAfter)
			return fail(last, lastResp)
		}
		attempts++
		resp, kerr := c.send(ctx, apiKey, p)
		if kerr == nil {
			p.bucket.succeeded()
			if p.shared != nil {
				if err := p.shared.l.Succeeded(ctx, p.shared.b); err != nil {
					c.log.LogAttrs(ctx, slog.LevelWarn, "shared rate limiter", slog.String("endpoint", p.endpoint), slog.Any("err", err))
				}
			}
			return resp, nil
		}
		last, lastResp = kerr, resp
		switch kerr.Class {
		case Throttled:
			if !c.throttled(ctx, p, resp, kerr) {
				return fail(kerr, resp)
			}
		case Retryable:
			failures++
			wait, ok := c.retryWait(ctx, p, resp, kerr, failures)
			if !ok {
				return fail(kerr, resp)
			}
			if serr := sleep(ctx, wait); serr != nil {
				if kerr.Err == nil {
					kerr.Err = serr
				}
				return fail(kerr, resp)
			}
		default:
			return fail(kerr, resp)
		}
	}
}

// throttled blocks p's endpoint for every user of the bucket after a 429
// and reports whether the call can wait for the block to end within ctx.
func (c *Client) throttled(ctx context.Context, p *prepared, resp *Response, kerr *Error) bool {
	now := time.Now()
	ra := parseRetryAfter(resp.Header.Get("Retry-After"), now)
	until := p.bucket.block(now, ra, c.cfg.DefaultRetryAfter, c.blockedHook(ctx, p.endpoint, now))
	if p.shared != nil {
		// Every process honours the block; this one also does locally
		// should the shared store be unreachable.
		if su, err := p.shared.l.Block(ctx, p.shared.b, now, ra, c.cfg.DefaultRetryAfter); err != nil {
			c.log.LogAttrs(ctx, slog.LevelWarn, "shared rate limiter", slog.String("endpoint", p.endpoint), slog.Any("err", err))
		} else if su.After(until) {
			until = su
		}
	}
	kerr.RetryAfter = until.Sub(now)
	c.m.throttled.WithLabelValues(p.endpoint).Inc()
	c.log.LogAttrs(ctx, slog.LevelWarn, "klaviyo throttled",
		slog.String("endpoint", p.endpoint), slog.String("key_fp", p.keyFP),
		slog.Duration("retry_after", kerr.RetryAfter), slog.Bool("header", ra > 0))
	if d, ok := ctx.Deadline(); ok && d.Before(until) {
		return false
	}
	c.m.retries.WithLabelValues(p.endpoint, "throttled").Inc()
	return true
}

// retryWait returns the backoff before retrying the failures-th Retryable
// failure of a call, or false if the call should give up: attempts are
// used up, ctx is done, or the wait would outlast ctx's deadline.
func (c *Client) retryWait(ctx context.Context, p *prepared, resp *Response, kerr *Error, failures int) (time.Duration, bool) {
	if failures >= c.cfg.MaxAttempts || ctx.Err() != nil {
		return 0, false
	}
	now := time.Now()
	wait := c.backoff(failures)
	if resp != nil {
		// A 503 may say when to come back; never sooner.
		wait = max(wait, parseRetryAfter(resp.Header.Get("Retry-After"), now))
	}
	kerr.RetryAfter = wait
	if d, ok := ctx.Deadline(); ok && d.Before(now.Add(wait)) {
		return 0, false
	}
	c.m.retries.WithLabelValues(p.endpoint, "retryable").Inc()
	c.log.LogAttrs(ctx, slog.LevelDebug, "klaviyo call failed, retrying",
		slog.String("endpoint", p.endpoint), slog.String("key_fp", p.keyFP),
		slog.Int("status", kerr.Status), slog.Int("failures", failures),
		slog.Duration("backoff", wait), slog.Any("err", kerr))
	return wait, true
}

func (c *Client) blockedHook(ctx context.Context, ep string, at time.Time) func(time.Time) {
	if c.hooks == nil || c.hooks.blocked == nil {
		return nil
	}
	return func(until time.Time) { c.hooks.blocked(ctx, ep, at, until) }
}

// prepare validates req and resolves everything that does not change
// between attempts.
func (c *Client) prepare(apiKey string, req klaviyo.Request) (*prepared, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRequest}, args...)...)
	}
	if req.Method == "" || strings.ToUpper(req.Method) != req.Method {
		return nil, bad("method %q: want an upper-case HTTP method", req.Method)
	}
	if !strings.HasPrefix(req.Path, "/") || strings.ContainsAny(req.Path, "?# ") {
		return nil, bad("path %q: want an absolute path without query or fragment", req.Path)
	}
	ep, ok := c.eps.match(req.Method, req.Path)
	if !ok {
		return nil, &Error{Class: Permanent, Endpoint: req.Method + " " + req.Path,
			Err: fmt.Errorf("%w: %s %s", ErrUnknownEndpoint, req.Method, req.Path)}
	}
	p := &prepared{endpoint: ep, method: req.Method, public: strings.HasPrefix(req.Path, "/client/")}
	bucketID := apiKey
	if p.public {
		q, err := url.ParseQuery(req.Query)
		if err != nil || q.Get("company_id") == "" {
			return nil, bad("%s: query must carry company_id (the public key)", ep)
		}
		if bucketID == "" {
			bucketID = q.Get("company_id")
		}
	} else if apiKey == "" {
		return nil, bad("%s: empty API key", ep)
	}
	u := *c.base
	u.Path = c.base.Path + req.Path
	u.RawPath = ""
	u.RawQuery = req.Query
	p.url = u.String()
	switch b := req.Body.(type) {
	case nil:
	case json.RawMessage:
		p.body = b
	case []byte:
		p.body = b
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return nil, bad("%s: encode body: %v", ep, err)
		}
		p.body = enc
	}
	h := sha256.Sum256([]byte(bucketID))
	p.keyFP = hex.EncodeToString(h[:4])
	p.bucket = c.bucket(bucketKey{key: h, endpoint: ep}, ep)
	if c.cfg.Limiter != nil {
		p.shared = &sharedBucket{l: c.cfg.Limiter, b: Bucket{KeyHash: hex.EncodeToString(h[:]), Endpoint: ep,
			Limit: ratelimit.Limit{BurstPerSecond: c.cfg.Limits[ep].BurstPerSecond, SteadyPerMin: c.cfg.Limits[ep].SteadyPerMin}, Burst: c.win.burst, Steady: c.win.steady, Margin: c.win.margin}}
	}
	return p, nil
}

func (c *Client) bucket(k bucketKey, ep string) *bucket {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buckets[k]
	if b == nil {
		b = newBucket(c.cfg.Limits[ep], c.win)
		c.buckets[k] = b
	}
	return b
}

// acquire waits for a send slot of p's bucket, and re-waits if a 429
// blocked the endpoint while it slept. The error is always Throttled (the
// wait would outlast ctx) or carries ctx's error.
func (c *Client) acquire(ctx context.Context, p *prepared) *Error {
	start := time.Now()
	defer func() {
		if w := time.Since(start); w > time.Millisecond {
			c.m.waited.WithLabelValues(p.endpoint).Add(w.Seconds())
		}
	}()
	deadline, _ := ctx.Deadline()
	for {
		if err := ctx.Err(); err != nil {
			return &Error{Class: Retryable, Endpoint: p.endpoint, Err: err}
		}
		now := time.Now()
		if p.shared != nil {
			if done, werr := c.acquireShared(ctx, p, now, deadline); done {
				return werr
			}
			continue
		}
		slot, ok := p.bucket.reserve(now, deadline)
		if !ok {
			return &Error{Class: Throttled, Endpoint: p.endpoint, RetryAfter: slot.Sub(now)}
		}
		if err := sleep(ctx, slot.Sub(now)); err != nil {
			return &Error{Class: Retryable, Endpoint: p.endpoint, Err: err}
		}
		var passed func(time.Time)
		if c.hooks != nil && c.hooks.passed != nil {
			passed = func(at time.Time) { c.hooks.passed(ctx, p.endpoint, at) }
		}
		if p.bucket.pass(time.Now(), passed) {
			return nil
		}
		// Blocked by a 429 that arrived while we slept: the slot is
		// forfeited (it can only make us slower, never faster).
	}
}

// acquireShared is one round of acquire against Config.Limiter: reserve a
// slot, sleep until it, and pass unless a 429 (of any process) blocked the
// endpoint meanwhile. done is false when the slot was forfeited to a block
// and acquire must reserve again.
func (c *Client) acquireShared(ctx context.Context, p *prepared, now, deadline time.Time) (done bool, werr *Error) {
	sb := p.shared
	slot, ok, err := sb.l.Reserve(ctx, sb.b, now, deadline)
	if err != nil {
		return true, &Error{Class: Retryable, Endpoint: p.endpoint, Err: fmt.Errorf("shared rate limiter: %w", err)}
	}
	if !ok {
		return true, &Error{Class: Throttled, Endpoint: p.endpoint, RetryAfter: slot.Sub(now)}
	}
	if err := sleep(ctx, slot.Sub(now)); err != nil {
		return true, &Error{Class: Retryable, Endpoint: p.endpoint, Err: err}
	}
	until, err := sb.l.BlockedUntil(ctx, sb.b)
	if err != nil {
		return true, &Error{Class: Retryable, Endpoint: p.endpoint, Err: fmt.Errorf("shared rate limiter: %w", err)}
	}
	at := time.Now()
	if at.Before(until) {
		return false, nil
	}
	var passed func(time.Time)
	if c.hooks != nil && c.hooks.passed != nil {
		passed = func(at time.Time) { c.hooks.passed(ctx, p.endpoint, at) }
	}
	// The local bucket holds this process's own view of 429 blocks too.
	return p.bucket.pass(at, passed), nil
}

// send makes one HTTP attempt. It returns the response for any HTTP
// status; the *Error is nil only for 2xx.
func (c *Client) send(ctx context.Context, apiKey string, p *prepared) (*Response, *Error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader = http.NoBody
	if p.body != nil {
		body = bytes.NewReader(p.body)
	}
	hreq, err := http.NewRequestWithContext(actx, p.method, p.url, body)
	if err != nil {
		return nil, &Error{Class: Permanent, Endpoint: p.endpoint, Err: fmt.Errorf("build request: %w", err)}
	}
	hreq.Header["Accept"] = []string{"application/vnd.api+json"}
	hreq.Header["Revision"] = []string{c.cfg.Revision}
	if p.body != nil {
		hreq.Header["Content-Type"] = []string{"application/vnd.api+json"}
	}
	if !p.public {
		hreq.Header["Authorization"] = []string{"Klaviyo-API-Key " + apiKey}
	}
	start := time.Now()
	hresp, err := c.http.Do(hreq)
	if err != nil {
		c.observe(p.endpoint, 0, start)
		return nil, &Error{Class: Classify(0, err), Endpoint: p.endpoint, Err: scrubURL(err, apiKey)}
	}
	data, err := io.ReadAll(io.LimitReader(hresp.Body, c.cfg.MaxResponseBytes+1))
	hresp.Body.Close()
	c.observe(p.endpoint, hresp.StatusCode, start)
	resp := &Response{Status: hresp.StatusCode, Header: hresp.Header, Body: data}
	if err != nil {
		return resp, &Error{Class: Classify(0, err), Status: 0, Endpoint: p.endpoint,
			Err: fmt.Errorf("read %d response: %w", hresp.StatusCode, scrubURL(err, apiKey))}
	}
	if int64(len(data)) > c.cfg.MaxResponseBytes {
		return resp, &Error{Class: Permanent, Status: hresp.StatusCode, Endpoint: p.endpoint,
			Err: fmt.Errorf("response body exceeds %d bytes", c.cfg.MaxResponseBytes)}
	}
	class := Classify(hresp.StatusCode, nil)
	if class == OK {
		return resp, nil
	}
	e := &Error{Status: hresp.StatusCode, Class: class, Endpoint: p.endpoint}
	e.decodeErrorBody(data, apiKey)
	return resp, e
}

func (c *Client) observe(ep string, status int, start time.Time) {
	c.m.requests.WithLabelValues(ep, statusClass(status)).Inc()
	c.m.latency.WithLabelValues(ep).Observe(time.Since(start).Seconds())
}

// backoff is "full jitter": uniform in [0, min(BackoffMax,
// BackoffBase·2^(n-1))) for the n-th Retryable failure of a call, so that
// callers failing together do not retry together.
func (c *Client) backoff(n int) time.Duration {
	ceil := c.cfg.BackoffBase << min(n-1, 32)
	if ceil <= 0 || ceil > c.cfg.BackoffMax {
		ceil = c.cfg.BackoffMax
	}
	return rand.N(ceil)
}

// maxRetryAfter caps a server's Retry-After so an absurd value cannot
// overflow or park an endpoint for days; Klaviyo's windows are ≤ 1 minute.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads Retry-After as delay-seconds (digits, optionally
// with a fraction) or an HTTP date. It returns ≤0 for absent, unparsable
// or past values.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789.") == "" && strings.Count(v, ".") <= 1 && v != "." {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(secs) || secs <= 0 {
			return 0
		}
		if secs >= maxRetryAfter.Seconds() {
			return maxRetryAfter
		}
		return time.Duration(math.Ceil(secs * float64(time.Second)))
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// scrubURL removes the query (company_id on /client/*) from the URL in a
// *url.Error and the API key from its text, keeping the chain for
// errors.Is.
func scrubURL(err error, apiKey string) error {
	if ue, ok := err.(*url.Error); ok {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery, u.User = "", nil
			ue.URL = u.String()
		} else {
			ue.URL = ""
		}
	}
	if apiKey != "" && len(apiKey) >= 4 && strings.Contains(err.Error(), apiKey) {
		return &redactedError{msg: redact(err.Error(), apiKey), err: err}
	}
	return err
}

// redactedError keeps err's chain but not its text.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
