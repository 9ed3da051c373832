package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kdest"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/store"
	"github.com/relaycdp/relay/internal/webhook"
)

const (
	testToken   = "adm_test_token_0123456789abcdef"
	testPrivate = "pk_secret_0123456789abcdef0123456789"
	testPublic  = "PUB123"
	testWK      = "wk_0123456789abcdef0123456789abcdef"
)

var testNow = time.Date(2026, 3, 4, 12, 30, 15, 0, time.UTC)

// fakeStore is an in-memory store: delivery log, dead letters, sources,
// saved settings.
type fakeStore struct {
	mu       sync.Mutex
	log      []store.LogEntry
	lastQ    store.LogQuery
	dead     []store.DeadLetter
	sources  []store.Source
	settings map[string]store.DestSettings
}

func (f *fakeStore) QueryLog(_ context.Context, q store.LogQuery) ([]store.LogEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastQ = q
	var out []store.LogEntry
	for _, e := range f.log {
		if q.Text == "" || e.MessageID == q.Text || e.UserID == q.Text || e.Email == strings.ToLower(q.Text) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeStore) LookupLog(_ context.Context, id, dest string) (store.LogEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.log {
		if e.MessageID == id && e.Dest == dest {
			return e, nil
		}
	}
	return store.LogEntry{}, store.ErrNotFound
}

func (f *fakeStore) CountLog(context.Context, string) (map[store.Status]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[store.Status]int64{}
	for _, e := range f.log {
		out[e.Status]++
	}
	return out, nil
}

func (f *fakeStore) ListDeadLetters(_ context.Context, q store.DeadLetterQuery) ([]store.DeadLetter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.DeadLetter
	for _, d := range f.dead {
		if q.IncludeReplayed || d.ReplayedAt.IsZero() {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeStore) CountDeadLetters(context.Context, string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, d := range f.dead {
		if d.ReplayedAt.IsZero() {
			n++
		}
	}
	return n, nil
}

func (f *fakeStore) TakeForReplay(ctx context.Context, sel store.ReplaySelector, enqueue func(context.Context, []store.DeadLetter) error) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var idx []int
	var take []store.DeadLetter
	for i, d := range f.dead {
		if d.ReplayedAt.IsZero() && (d.ID == sel.ID || (sel.ID == 0 && d.Dest == sel.Dest)) {
			idx, take = append(idx, i), append(take, d)
		}
	}
	if len(take) == 0 {
		return 0, nil
	}
	if err := enqueue(ctx, take); err != nil {
		return 0, err
	}
	for _, i := range idx {
		f.dead[i].ReplayedAt = testNow
	}
	return len(take), nil
}

func (f *fakeStore) Sources(context.Context) ([]store.Source, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]store.Source, len(f.sources))
	for i, s := range f.sources {
		out[i] = store.Source{Name: s.Name, WriteKeys: append([]store.WriteKey(nil), s.WriteKeys...)}
	}
	return out, nil
}

func (f *fakeStore) CreateSource(_ context.Context, name string) (store.Source, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sources {
		if s.Name == name {
			return store.Source{}, fmt.Errorf("source %q: %w", name, store.ErrExists)
		}
	}
	f.sources = append(f.sources, store.Source{Name: name})
	return store.Source{Name: name}, nil
}

func (f *fakeStore) CreateWriteKey(_ context.Context, source string) (store.WriteKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.sources {
		if s.Name == source {
			k := store.WriteKey{Key: fmt.Sprintf("wk_new%026d", len(s.WriteKeys)), CreatedAt: testNow}
			f.sources[i].WriteKeys = append(f.sources[i].WriteKeys, k)
			return k, nil
		}
	}
	return store.WriteKey{}, store.ErrNotFound
}

func (f *fakeStore) RevokeWriteKey(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.sources {
		for j, k := range s.WriteKeys {
			if k.Key == key {
				f.sources[i].WriteKeys[j].RevokedAt = testNow
				return nil
			}
		}
	}
	return store.ErrNotFound
}

func (f *fakeStore) DestSettings(_ context.Context, dest string) (store.DestSettings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.settings[dest]
	if !ok {
		return d, store.ErrNotFound
	}
	return d, nil
}

// fakeApp applies settings as *app.App does: parse, validate, save with
// the version check.
type fakeApp struct{ st *fakeStore }

func (a fakeApp) ApplySettings(_ context.Context, dest string, raw json.RawMessage, ifVersion int64) (store.DestSettings, error) {
	typ, _ := a.DestType(dest)
	if _, err := typ.Parse(raw); err != nil {
		return store.DestSettings{}, err
	}
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	cur := a.st.settings[dest]
	if ifVersion != cur.Version {
		return store.DestSettings{}, fmt.Errorf("stored version is %d: %w", cur.Version, store.ErrVersionConflict)
	}
	d := store.DestSettings{Dest: dest, Settings: raw, Version: cur.Version + 1, UpdatedAt: testNow}
	a.st.settings[dest] = d
	return d, nil
}

func (a fakeApp) Settings(dest string) (destination.Settings, bool) {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	d, ok := a.st.settings[dest]
	typ, known := a.DestType(dest)
	if !ok || !known {
		return klaviyo.DefaultSettings(), false
	}
	s, err := typ.Parse(d.Settings)
	return s, err == nil
}

func (a fakeApp) DestType(dest string) (*destination.Type, bool) {
	switch dest {
	case "klaviyo":
		return kdest.Type(), true
	case "hook":
		return webhook.Type(), true
	}
	return nil, false
}

type fakeQueue struct {
	mu   sync.Mutex
	msgs []queue.Message
	err  error
}

func (q *fakeQueue) Stats(context.Context) (queue.Stats, error) {
	return queue.Stats{Depth: 7, OldestAge: 90 * time.Second, ByDest: map[string]int64{"klaviyo": 7}}, nil
}

func (q *fakeQueue) Enqueue(_ context.Context, msgs []queue.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.msgs = append(q.msgs, msgs...)
	return nil
}

type fakePinger struct {
	mu   sync.Mutex
	keys []string
	fail string // the message of a failed ping; "" succeeds
}

func (p *fakePinger) Ping(_ context.Context, _ string, s destination.Settings) (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := ""
	if ks, ok := s.(klaviyo.Settings); ok {
		key = ks.PrivateAPIKey
	}
	p.keys = append(p.keys, key)
	if p.fail != "" {
		return false, p.fail
	}
	return true, "Connected: Klaviyo accepted the private key."
}

// testConsole is a console over fakes, served by httptest.
type testConsole struct {
	*Console
	st     *fakeStore
	q      *fakeQueue
	ping   *fakePinger
	reg    *prometheus.Registry
	srv    *httptest.Server
	logBuf *strings.Builder
}

func newTestConsole(t *testing.T) *testConsole {
	t.Helper()
	st := &fakeStore{
		settings: map[string]store.DestSettings{"klaviyo": {Dest: "klaviyo", Version: 1, UpdatedAt: testNow,
			Settings: json.RawMessage(`{"privateApiKey":"` + testPrivate + `","publicApiKey":"` + testPublic + `","listId":"L1"}`)},
			"config-hash:klaviyo": {Dest: "config-hash:klaviyo", Version: 1, Settings: json.RawMessage(`"abc"`)},
			"hook": {Dest: "hook", Version: 1, UpdatedAt: testNow,
				Settings: json.RawMessage(`{"url":"https://hooks.example/in","signingSecret":"` + testHookSecret + `","headers":{"X-Team":"growth"}}`)}},
		sources: []store.Source{{Name: "web", WriteKeys: []store.WriteKey{{Key: testWK, Seeded: true, CreatedAt: testNow}}}},
		log: []store.LogEntry{{ID: 1, MessageID: "m-1", Dest: "klaviyo", Source: "web", Type: "track", Event: "Signed Up",
			UserID: "u-1", Email: "jane@example.com", Status: store.StatusDelivered, Attempts: 1, Detail: "1 Klaviyo operation(s) accepted", Time: testNow}},
		dead: []store.DeadLetter{{ID: 5, MessageID: "m-dead", Source: "web", Dest: "klaviyo",
			Payload: []byte(`{"type":"group","messageId":"m-dead","userId":"u-7","timestamp":"2026-03-04T12:00:00Z","receivedAt":"2026-03-04T12:00:00Z"}`),
			Error:   "missing_group_id: group needs a groupId", Attempts: 1, CreatedAt: testNow}},
	}
	reg := prometheus.NewRegistry()
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_klaviyo_requests_total"}, []string{"destination", "endpoint", "status_class"})
	reg.MustRegister(req)
	req.WithLabelValues("klaviyo", "POST /api/event-bulk-create-jobs", "2xx").Add(3)
	req.WithLabelValues("klaviyo", "POST /api/event-bulk-create-jobs", "429").Add(1)
	tc := &testConsole{st: st, q: &fakeQueue{}, ping: &fakePinger{}, reg: reg, logBuf: &strings.Builder{}}
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, tc.logBuf}, nil))
	c, err := New(Config{Token: testToken, Now: func() time.Time { return testNow }}, Deps{
		Log: st, DeadLetters: st, Sources: st, Settings: fakeApp{st}, StoredSettings: st,
		Queue: tc.q, Pinger: tc.ping, Metrics: reg, Destinations: []string{"klaviyo", "hook"}, Audit: st,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	tc.Console = c
	mux := http.NewServeMux()
	mux.Handle("/admin/", c.Handler())
	tc.srv = httptest.NewServer(mux)
	t.Cleanup(tc.srv.Close)
	return tc
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// testClient is a logged-in browser-like client: cookie jar, no redirects
// followed, the CSRF token of the last page seen.
type testClient struct {
	t    *testing.T
	tc   *testConsole
	c    *http.Client
	csrf string
}

func (tc *testConsole) anon(t *testing.T) *testClient {
	jar, _ := cookiejar.New(nil)
	return &testClient{t: t, tc: tc, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (tc *testConsole) login(t *testing.T) *testClient {
	t.Helper()
	s := tc.anon(t)
	resp, _ := s.post("/admin/login", url.Values{"token": {testToken}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	s.get("/admin/")
	if s.csrf == "" {
		t.Fatal("no CSRF token on the overview page")
	}
	return s
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (s *testClient) do(req *http.Request) (*http.Response, string) {
	s.t.Helper()
	resp, err := s.c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(b); m != nil {
		s.csrf = string(m[1])
	}
	return resp, string(b)
}

func (s *testClient) get(path string) (*http.Response, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.tc.srv.URL+path, nil)
	return s.do(req)
}

// post sends a form; hdr may add headers (Origin, X-CSRF-Token, HX-Request).
func (s *testClient) post(path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.tc.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return s.do(req)
}

// form is a POST form with the session's CSRF token.
func (s *testClient) form(kv ...string) url.Values {
	v := url.Values{"csrf": {s.csrf}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}
