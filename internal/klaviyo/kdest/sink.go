// Package kdest is the Klaviyo destination on delivery's seam
// (internal/destination): the Sink that maps claimed jobs to Klaviyo
// operations with the destination's current settings, batches the
// operations of many events into Klaviyo's bulk endpoints within their
// item and byte limits, keeps one profile's changes in the order they were
// received (rounds.go), isolates the items Klaviyo rejects, follows
// profile import jobs for their per-item errors, and holds a batch's
// partly filled last events request for the next batch; and the Klaviyo
// destination.Type (type.go) that registers it.
package kdest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
)

// Sender sends calls to Klaviyo; *kapi.Client is one.
type Sender interface {
	Do(ctx context.Context, apiKey string, req klaviyo.Request) (*kapi.Response, error)
	GetProfileImportJob(ctx context.Context, apiKey, jobID string) (*kapi.ImportJob, error)
	ImportErrors(ctx context.Context, apiKey, jobID string) ([]kapi.ImportError, error)
}

// Config tunes one Klaviyo destination's sink.
type Config struct {
	// Settings returns the destination's current settings; it is called
	// once per batch so a change in the console applies to the next one.
	Settings func() klaviyo.Settings
	// ImportJobTimeout is how long a profile bulk import job is followed,
	// after its batch, so its per-item errors can be attributed (default
	// 10 min).
	ImportJobTimeout time.Duration
	// Late records the items a finished import job refused
	// (destination.Env.Late); nil: import jobs are not followed.
	Late func(ctx context.Context, jobs []destination.Job, results []destination.Result) error
	// Concurrency is how many Klaviyo requests one batch sends at once
	// (default 8); the client's rate limiter paces them per endpoint.
	Concurrency int
	// CPU, when set, is the share of the cores mapping takes after
	// ingest's parsing (internal/cpubudget).
	CPU destination.CPU
}

// Sink delivers batches to one Klaviyo account.
type Sink struct {
	cfg     Config
	send    Sender
	slog    *slog.Logger
	metrics *metrics
	// life ends with Close; following holds the import jobs followed
	// after their batch, follows a slot for each (maxImportFollows).
	life      context.Context
	stop      context.CancelFunc
	following sync.WaitGroup
	follows   chan struct{}
}

// maxImportFollows bounds the import jobs followed at once, and with them
// the payloads kept for their dead letters: a job holds one batch's
// profiles at most (2,000 claimed, ~2 MB), so about 32 MB in all.
const maxImportFollows = 16

// NewSink builds a sink. reg may be nil (no metrics).
func NewSink(cfg Config, send Sender, log *slog.Logger, reg prometheus.Registerer) *Sink {
	if cfg.ImportJobTimeout <= 0 {
		cfg.ImportJobTimeout = 10 * time.Minute
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	life, stop := context.WithCancel(context.Background())
	return &Sink{cfg: cfg, send: send, slog: log, metrics: newMetrics(reg), life: life, stop: stop, follows: make(chan struct{}, maxImportFollows)}
}

// Close stops following import jobs and waits for the followers to end;
// the items of a job not finished by then are not checked (they were
// delivered as Klaviyo accepted them).
func (s *Sink) Close() {
	s.stop()
	s.following.Wait()
}

// Deliver maps, batches and sends the jobs and says what became of each.
func (s *Sink) Deliver(ctx context.Context, db destination.Batch) []destination.Result {
	b := s.newBatch(ctx, db.Jobs)
	b.holdPartial(db.Carried)
	b.deliver(ctx)
	out := make([]destination.Result, len(b.items))
	for i := range b.items {
		out[i] = b.items[i].result()
	}
	return out
}

// result is the item's outcome: the first permanent failure of any of its
// operations wins over a retryable one (retrying cannot fix it).
func (it *item) result() destination.Result {
	switch {
	case it.held:
		return destination.Result{Outcome: destination.Held}
	case it.permanent != nil:
		return it.permanent.result(destination.Dead)
	case it.retry != nil:
		return it.retry.result(destination.Retry)
	case it.skipped != "":
		return destination.Result{Outcome: destination.Skipped, Detail: it.skipped}
	}
	detail := fmt.Sprintf("%d Klaviyo operation(s) accepted", it.delivered)
	for _, f := range it.partsFailed {
		detail += "; not sent: " + f.Message
	}
	return destination.Result{Outcome: destination.Delivered, Detail: detail}
}

func (f *failure) result(o destination.Outcome) destination.Result {
	// No RetryAfter: the client's limiter already keeps the endpoint shut
	// for Klaviyo's Retry-After, for every job and node at once.
	return destination.Result{Outcome: o, Status: f.status, Code: f.code, Detail: f.detail, Pointer: f.pointer}
}

type metrics struct {
	items *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{items: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "relay_delivery_items_per_request",
		Help:    "Operations carried by one Klaviyo request, by endpoint: how well bulk endpoints are used.",
		Buckets: []float64{1, 2, 5, 10, 50, 100, 250, 500, 1000, 5000, 10000},
	}, []string{"endpoint"})}
	if err := reg.Register(m.items); err != nil {
		// Several workers of one destination share one registerer.
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			m.items = are.ExistingCollector.(*prometheus.HistogramVec)
		} else {
			return nil
		}
	}
	return m
}

func (m *metrics) request(req klaviyo.Request, items int, err error) {
	if m == nil || err != nil {
		return
	}
	m.items.WithLabelValues(req.Method + " " + endpointOf(req.Path)).Observe(float64(items))
}

// endpointOf keeps metric labels bounded: list ids become {id}.
func endpointOf(path string) string {
	const lists = "/api/lists/"
	if len(path) > len(lists) && path[:len(lists)] == lists {
		return "/api/lists/{id}/relationships/profiles"
	}
	return path
}
