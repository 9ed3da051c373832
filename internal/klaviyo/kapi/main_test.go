package kapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relaycdp/relay/internal/klaviyo/openapi"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testKey is a realistic private key; tests assert it never leaks.
const testKey = "pk_0123456789abcdef0123456789abcdef01"

// fastLimits are generous limits for tests that are not about limiting.
func fastLimits() map[string]openapi.Limit {
	ls, err := openapi.RateLimits()
	if err != nil {
		panic(err)
	}
	for k, l := range ls {
		l.BurstPerSecond, l.SteadyPerMin = 10000, 1000000
		ls[k] = l
	}
	return ls
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testEnv struct {
	c   *Client
	srv *httptest.Server
	log *syncBuffer
}

// newEnv starts h on an httptest server and a Client for it with fast
// limits and backoff; mod may adjust the config. Everything is closed at
// cleanup, idle connections included (for goleak).
func newEnv(t testing.TB, h http.Handler, mod func(*Config)) *testEnv {
	t.Helper()
	return newEnvServer(t, httptest.NewUnstartedServer(h), mod)
}

// newEnvServer is newEnv for an unstarted server the test has configured.
func newEnvServer(t testing.TB, srv *httptest.Server, mod func(*Config)) *testEnv {
	t.Helper()
	srv.Start()
	cfg := Config{
		BaseURL:     srv.URL,
		Limits:      fastLimits(),
		BackoffBase: time.Millisecond,
		BackoffMax:  5 * time.Millisecond,
		Timeout:     5 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	lb := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(cfg, log, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		c.CloseIdleConnections()
		srv.CloseClientConnections()
		srv.Close()
	})
	return &testEnv{c: c, srv: srv, log: lb}
}

// writeJSON writes a JSON:API response.
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/vnd.api+json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func assertNoKey(t *testing.T, where, s string) {
	t.Helper()
	if strings.Contains(s, testKey) {
		t.Errorf("%s contains the API key: %s", where, s)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
