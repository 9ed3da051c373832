// Package webhook is the Webhook destination: it POSTs each event, or
// batches of events, as Segment-spec JSON to a URL, with custom headers
// and an optional HMAC-SHA256 signature. It is a destination.Sink and
// nothing more: claiming, retries by age and Retry-After, dead letters,
// replay, the delivery log and metrics by destination are delivery's; the
// console's form, connection test and event tester come from its Type.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/spec"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// maxSplitDepth bounds how often a batch refused with a 4xx is halved to
// find the events the receiver refuses: 2^10 > 1000 events.
const maxSplitDepth = 10

// Sink delivers to one webhook.
type Sink struct {
	settings func() Settings
	client   *http.Client
	log      *slog.Logger
	requests *prometheus.CounterVec
	now      func() time.Time

	mu sync.Mutex
	// blockedUntil is the end of the receiver's latest Retry-After: no
	// request goes out before it, the jobs wait for a later batch.
	blockedUntil time.Time
}

// NewSink builds a sink; reg may be nil.
func NewSink(settings func() Settings, client *http.Client, log *slog.Logger, reg prometheus.Registerer) *Sink {
	s := &Sink{settings: settings, client: client, log: log, now: time.Now}
	if reg != nil {
		s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_webhook_requests_total",
			Help: "Webhook requests by outcome class (2xx, 4xx, 429, 5xx, error).",
		}, []string{"status_class"})
		if err := reg.Register(s.requests); err != nil {
			s.requests = nil
		}
	}
	return s
}

// Deliver sends the jobs (one request each, or in batches) and says what
// became of each.
func (s *Sink) Deliver(ctx context.Context, b destination.Batch) []destination.Result {
	units, owner := expand(b.Jobs)
	if owner == nil {
		return s.deliver(ctx, units)
	}
	return fold(len(b.Jobs), owner, s.deliver(ctx, units))
}

// expand lists what is sent for the jobs: each job's event, or the events
// its transformation made of it (destination.Job.Events), each with its
// own idempotency key. owner[i] is the job of unit i; nil when every job
// is its own unit.
func expand(jobs []destination.Job) ([]destination.Job, []int) {
	if !slices.ContainsFunc(jobs, func(j destination.Job) bool { return j.Events != nil }) {
		return jobs, nil
	}
	var (
		units []destination.Job
		owner []int
	)
	for i, j := range jobs {
		if j.Events == nil {
			units, owner = append(units, j), append(owner, i)
			continue
		}
		for k := range j.Events {
			u := j
			u.Event, u.Events = &j.Events[k], nil
			if len(j.Events) > 1 {
				u.MessageID = fmt.Sprintf("%s-%d", j.MessageID, k)
			}
			units, owner = append(units, u), append(owner, i)
		}
	}
	return units, owner
}

// fold gives each of n jobs the outcome of its units: a retry if any unit
// must be retried (nothing is lost; the receiver de-duplicates the
// repeats by Idempotency-Key), else the first dead one, else delivered; a
// job without units was transformed into nothing.
func fold(n int, owner []int, results []destination.Result) []destination.Result {
	out := make([]destination.Result, n)
	seen := make([]bool, n)
	for u, r := range results {
		i := owner[u]
		switch {
		case !seen[i], r.Outcome == destination.Retry && out[i].Outcome != destination.Retry,
			r.Outcome == destination.Dead && out[i].Outcome == destination.Delivered:
			out[i] = r
		}
		seen[i] = true
	}
	for i := range out {
		if !seen[i] {
			out[i] = destination.Result{Outcome: destination.Skipped, Detail: "the transformation made no event of it"}
		}
	}
	return out
}

func (s *Sink) deliver(ctx context.Context, jobs []destination.Job) []destination.Result {
	b := destination.Batch{Jobs: jobs}
	st := s.settings()
	out := make([]destination.Result, len(b.Jobs))
	size := 1
	if st.Mode == ModeBatch {
		size = st.MaxBatchSize
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(st.Concurrency)
	for start := 0; start < len(b.Jobs); start += size {
		idx := make([]int, 0, size)
		for i := start; i < min(start+size, len(b.Jobs)); i++ {
			idx = append(idx, i)
		}
		g.Go(func() error {
			s.send(gctx, st, b.Jobs, idx, out, 0)
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// send posts the jobs named by idx and writes their results; a batch a
// receiver refuses (4xx) is halved until the refused events are alone.
func (s *Sink) send(ctx context.Context, st Settings, jobs []destination.Job, idx []int, out []destination.Result, depth int) {
	if wait := s.blocked(); wait > 0 {
		for _, i := range idx {
			out[i] = destination.Result{Outcome: destination.Retry, Status: 429, Detail: "receiver asked to wait (Retry-After)", RetryAfter: wait}
		}
		return
	}
	body, err := s.body(st, jobs, idx)
	if err != nil {
		for _, i := range idx {
			out[i] = destination.Result{Outcome: destination.Dead, Code: "unencodable_event", Detail: err.Error()}
		}
		return
	}
	key := jobs[idx[0]].MessageID
	if len(idx) > 1 {
		key = batchKey(jobs, idx)
	}
	res := s.post(ctx, st, body, key)
	if res.Outcome == destination.Dead && res.Status != 0 && len(idx) > 1 && depth < maxSplitDepth && !wholeRequestProblem(res.Status) {
		half := len(idx) / 2
		s.send(ctx, st, jobs, idx[:half], out, depth+1)
		s.send(ctx, st, jobs, idx[half:], out, depth+1)
		return
	}
	for _, i := range idx {
		out[i] = res
	}
}

// wholeRequestProblem: statuses no event of the request caused.
func wholeRequestProblem(status int) bool {
	return status == 401 || status == 403 || status == 404 || status == 405
}

func (s *Sink) blocked() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blockedUntil.Sub(s.now())
}

func (s *Sink) block(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until := s.now().Add(d); until.After(s.blockedUntil) {
		s.blockedUntil = until
	}
}

// body is one event's Segment-spec JSON, or {"batch": [...]} in batch mode.
func (s *Sink) body(st Settings, jobs []destination.Job, idx []int) ([]byte, error) {
	if st.Mode != ModeBatch {
		return json.Marshal(jobs[idx[0]].Event)
	}
	evs := make([]*spec.Event, len(idx))
	for k, i := range idx {
		evs[k] = jobs[i].Event
	}
	return json.Marshal(struct {
		Batch  []*spec.Event `json:"batch"`
		SentAt time.Time     `json:"sentAt"`
	}{evs, s.now().UTC().Truncate(time.Millisecond)})
}

// batchKey is a batch's idempotency key: the same events give the same key.
func batchKey(jobs []destination.Job, idx []int) string {
	h := sha256.New()
	for _, i := range idx {
		h.Write([]byte(jobs[i].MessageID))
		h.Write([]byte{0})
	}
	return "batch-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Request builds the request for body: Relay's headers, the custom ones
// and the signature.
func Request(ctx context.Context, st Settings, body []byte, idempotencyKey string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range st.Headers {
		req.Header.Set(k, v)
	}
	if st.Authorization != "" {
		req.Header.Set("Authorization", st.Authorization)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "relay-webhook")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	if st.SigningSecret != "" {
		req.Header.Set(st.SignatureHeader, Sign(st.SigningSecret, body))
	}
	return req, nil
}

// Sign is the signature header's value: "sha256=" and the hex HMAC-SHA256
// of body with secret. A receiver recomputes it over the raw body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// post sends one request and classifies its outcome.
func (s *Sink) post(ctx context.Context, st Settings, body []byte, key string) destination.Result {
	ctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	req, err := Request(ctx, st, body, key)
	if err != nil {
		return destination.Result{Outcome: destination.Dead, Code: "bad_request", Detail: err.Error()}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.count("error")
		return destination.Result{Outcome: destination.Retry, Code: "network_error", Detail: describeErr(err, st)}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return s.classify(resp, snippet)
}

func (s *Sink) classify(resp *http.Response, snippet []byte) destination.Result {
	status := resp.StatusCode
	detail := strings.TrimSpace(string(bytes.ToValidUTF8(snippet, []byte("?"))))
	switch {
	case status >= 200 && status < 300:
		s.count("2xx")
		return destination.Result{Outcome: destination.Delivered, Status: status, Detail: fmt.Sprintf("receiver answered %d", status)}
	case status == http.StatusTooManyRequests:
		s.count("429")
		ra := retryAfter(resp.Header.Get("Retry-After"), s.now())
		if ra > 0 {
			s.block(ra)
		}
		return destination.Result{Outcome: destination.Retry, Status: status, Code: "rate_limited",
			Detail: fmt.Sprintf("receiver is rate limiting (retry after %s)", ra), RetryAfter: ra}
	case status >= 500 || status == http.StatusRequestTimeout:
		s.count("5xx")
		ra := retryAfter(resp.Header.Get("Retry-After"), s.now())
		return destination.Result{Outcome: destination.Retry, Status: status, Code: "server_error", Detail: orStatus(detail, status), RetryAfter: ra}
	}
	s.count("4xx")
	return destination.Result{Outcome: destination.Dead, Status: status, Code: "refused", Detail: orStatus(detail, status)}
}

func orStatus(detail string, status int) string {
	if detail == "" {
		return http.StatusText(status)
	}
	return detail
}

// describeErr says what went wrong without the URL's userinfo or query
// (they may hold a token).
func describeErr(err error, st Settings) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", st.Timeout)
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		err = ue.Unwrap()
	}
	return err.Error()
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 when
// absent or unreadable. It is capped at an hour so a bad header cannot
// park events for days.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(h); err == nil && n > 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Hour)
}

func (s *Sink) count(class string) {
	if s.requests != nil {
		s.requests.WithLabelValues(class).Inc()
	}
}
