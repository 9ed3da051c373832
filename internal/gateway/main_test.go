package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Keys of the test sources. testKey is the one in the clients.md captures.
const (
	testKey    = "WK_test123"  // source "web": destinations klaviyo, klaviyo-eu
	otherKey   = "WK_other456" // source "mobile": no destinations
	revokedKey = "WK_revoked789"
	failingKey = "WK_lookupfails" // SourceForKey returns an error quoting the key
)

var errTest = errors.New("test failure")

// fakeQueue records enqueued messages. With block set, Enqueue signals
// entered and waits for block to be closed.
type fakeQueue struct {
	mu      sync.Mutex
	msgs    []queue.Message
	calls   int
	err     error
	block   chan struct{}
	entered chan struct{}
}

func (q *fakeQueue) Enqueue(ctx context.Context, msgs []queue.Message) error {
	if q.entered != nil {
		q.entered <- struct{}{}
	}
	if q.block != nil {
		select {
		case <-q.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	if q.err != nil {
		return q.err
	}
	// The gateway reuses payload buffers once Enqueue returned nil (the
	// Enqueuer contract), so a queue that keeps them keeps copies.
	for _, m := range msgs {
		m.Payload = bytes.Clone(m.Payload)
		q.msgs = append(q.msgs, m)
	}
	return nil
}

func (q *fakeQueue) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs, q.calls = nil, 0
}

func (q *fakeQueue) messages() []queue.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]queue.Message(nil), q.msgs...)
}

type fakeSources struct{}

func (fakeSources) SourceForKey(_ context.Context, key string) (string, bool, error) {
	switch key {
	case testKey:
		return "web", true, nil
	case otherKey:
		return "mobile", true, nil
	case failingKey:
		return "", false, errors.New("lookup write key " + key + ": database is locked")
	}
	return "", false, nil
}

type fakeRoutes map[string][]string

func (r fakeRoutes) Destinations(source string) []string { return r[source] }

type fakeRejections struct {
	mu  sync.Mutex
	got map[string][]Rejection
	err error
}

func (f *fakeRejections) Rejected(_ context.Context, source string, items []Rejection) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.got == nil {
		f.got = map[string][]Rejection{}
	}
	f.got[source] = append(f.got[source], items...)
	return f.err
}

func (f *fakeRejections) all(source string) []Rejection {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Rejection(nil), f.got[source]...)
}

type fakeDepth struct {
	n     atomic.Int64
	calls atomic.Int64
	err   error
}

func (d *fakeDepth) Depth(context.Context) (int64, error) {
	d.calls.Add(1)
	return d.n.Load(), d.err
}

var testNow = time.Date(2026, 11, 23, 0, 5, 0, 0, time.UTC)

// env is a gateway wired to fakes.
type env struct {
	gw    *Gateway
	h     http.Handler
	q     *fakeQueue
	rej   *fakeRejections
	depth *fakeDepth
	clock *testutil.Clock
	reg   *prometheus.Registry
	logs  *syncBuffer
}

type envOpt func(*Config, *Deps)

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	e := &env{
		q:     &fakeQueue{},
		rej:   &fakeRejections{},
		depth: &fakeDepth{},
		clock: testutil.NewClock(testNow),
		reg:   prometheus.NewRegistry(),
		logs:  &syncBuffer{},
	}
	cfg := Config{}
	deps := Deps{
		Queue:      e.q,
		Sources:    fakeSources{},
		Routes:     fakeRoutes{"web": {"klaviyo", "klaviyo-eu"}},
		Rejections: e.rej,
		Depth:      e.depth,
		Now:        e.clock.Now,
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw, err := New(cfg, deps, log, e.reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.gw, e.h = gw, gw.Handler()
	return e
}

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// req describes one test request.
type req struct {
	method  string // default POST
	path    string
	body    []byte
	gzip    bool
	key     string // Basic auth username, "KEY:" form
	headers map[string]string
}

func basic(userpass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userpass))
}

func (r req) build() *http.Request {
	body := r.body
	if r.gzip {
		body = gzipBytes(body)
	}
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	hr := httptest.NewRequest(method, r.path, bytes.NewReader(body))
	if r.gzip {
		hr.Header.Set("Content-Encoding", "gzip")
	}
	if r.key != "" {
		hr.Header.Set("Authorization", basic(r.key+":"))
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	return hr
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r.build())
	return rec
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// counter returns the value of a counter or the count of a histogram with
// the given labels (all of them, exactly), or 0.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// allLabelValues lists every label value of every gathered series.
func allLabelValues(t testing.TB, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				out = append(out, lp.GetValue())
			}
		}
	}
	return out
}

// readAllString reads a response body for assertions.
func readAllString(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func gzipWriterBest(w io.Writer) (*gzip.Writer, error) {
	return gzip.NewWriterLevel(w, gzip.BestCompression)
}

// runtimeMem snapshots the process's cumulative allocation.
type runtimeMem struct{ totalAlloc uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.totalAlloc = s.TotalAlloc
}
