// Package readiness owns Relay's readiness report: whether this node can
// accept events right now (its queue takes writes, its store answers) and
// the state of each destination, served as GET /ready for load balancers
// and orchestrators and shown on the console's overview. Liveness
// (/health) is separate and stays 200 while the process runs: a node that
// is alive but not ready must be taken out of rotation, not restarted.
package readiness

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"
)

// Check is one condition readiness needs.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// DestState is one destination's state. Destinations do not decide
// readiness: while Klaviyo is down or a key is missing, the queue keeps
// accepted events until they can go out, so the node is still doing its
// job and taking it out of rotation would only move the load.
type DestState struct {
	Name    string `json:"name"`
	State   string `json:"state"`            // ok, or what stops delivery
	Queued  int64  `json:"queued"`           // jobs waiting for it
	Problem string `json:"reason,omitempty"` // why it is not ok
}

// Result is one check's outcome.
type Result struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Reason is the root cause only (e.g. "no space left on device"), as
	// /ready may face the internet; Detail, the full error, is for the
	// console and the log.
	Reason string `json:"reason,omitempty"`
	Detail string `json:"-"`
}

// Report is the readiness of the node at At.
type Report struct {
	Ready        bool        `json:"ready"`
	Checks       []Result    `json:"checks"`
	Destinations []DestState `json:"destinations,omitempty"`
	At           time.Time   `json:"at"`
}

// Checker runs the checks, at most once per TTL however often it is asked
// (a probe on a public port must not become a load of its own).
type Checker struct {
	Checks       []Check
	Destinations func(ctx context.Context) []DestState
	// Timeout bounds each check (default 2 s); TTL is how long a report is
	// reused (default 1 s).
	Timeout, TTL time.Duration
	Now          func() time.Time

	mu   sync.Mutex
	last Report
}

// Report returns the current report, running the checks when the last
// one is older than TTL.
func (c *Checker) Report(ctx context.Context) Report {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ttl, timeout := orDefault(c.TTL, time.Second), orDefault(c.Timeout, 2*time.Second)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.last.At.IsZero() && now().Sub(c.last.At) < ttl {
		return c.last
	}
	r := Report{Ready: true, At: now(), Checks: make([]Result, 0, len(c.Checks))}
	for _, ch := range c.Checks {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := ch.Run(cctx)
		cancel()
		res := Result{Name: ch.Name, OK: err == nil}
		if err != nil {
			r.Ready = false
			res.Reason, res.Detail = rootCause(err), err.Error()
		}
		r.Checks = append(r.Checks, res)
	}
	if c.Destinations != nil {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		r.Destinations = c.Destinations(dctx)
		cancel()
	}
	c.last = r
	return r
}

// Handler serves the report as JSON: 200 when ready, 503 when not.
func (c *Checker) Handler() http.Handler { return c.handler(true) }

// PublicHandler is Handler without the destinations (their names and
// backlogs), for a port that faces the internet: a load balancer needs
// only the status and the checks.
func (c *Checker) PublicHandler() http.Handler { return c.handler(false) }

func (c *Checker) handler(destinations bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := c.Report(r.Context())
		if !destinations {
			rep.Destinations = nil
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		status := http.StatusOK
		if !rep.Ready {
			status = http.StatusServiceUnavailable
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(rep)
	})
}

// rootCause is the innermost error's text: the OS's or driver's words,
// without the paths and addresses the wrapping adds.
func rootCause(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			return err.Error()
		}
		err = inner
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
