package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const smallEvent = `{"type":"track","event":"E","userId":"u1","messageId":"m-1"}`

// untouchable fails the test when a handler reads it: bodies that must be
// answered from the headers alone.
type untouchable struct{ t *testing.T }

func (u untouchable) Read([]byte) (int, error) {
	u.t.Error("the body was read")
	return 0, io.EOF
}

func TestAnsweredBeforeTheBodyIsRead(t *testing.T) {
	tests := []struct {
		name          string
		path          string
		auth          string
		contentLength int64
		want          int
	}{
		{name: "no key outside analytics.js routes", path: "/v1/batch", contentLength: 4 << 20, want: 401},
		{name: "unknown key", path: "/v1/batch", auth: basic(revokedKey + ":"), contentLength: 4 << 20, want: 401},
		{name: "announced over the limit", path: "/v1/batch", auth: basic(testKey + ":"), contentLength: DefaultMaxRequestBytes + 1, want: 413},
		{name: "announced over the body-key limit", path: "/v1/b", contentLength: MaxBodyKeyBytes + 1, want: 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := httptest.NewRequest(http.MethodPost, tc.path, untouchable{t})
			r.ContentLength = tc.contentLength
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, r)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
}

func TestBodyKeyRouteReadsASmallBodyOnly(t *testing.T) {
	e := newEnv(t)
	// Unannounced (chunked) and over MaxBodyKeyBytes: cut off at the cap.
	body := `{"writeKey":"` + testKey + `","batch":[` + smallEvent + `]}` + strings.Repeat(" ", MaxBodyKeyBytes)
	r := httptest.NewRequest(http.MethodPost, "/v1/b", io.MultiReader(strings.NewReader(body)))
	r.ContentLength = -1
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %s", rec.Code, rec.Body)
	}
	// The same body fits with the key in the header.
	rec = e.do(req{path: "/v1/b", body: []byte(body), headers: map[string]string{"Authorization": basic(testKey + ":")}})
	if rec.Code != http.StatusOK {
		t.Fatalf("with Basic auth: status %d: %s", rec.Code, rec.Body)
	}
}

// TestBodiesInFlightBudget: a body being received holds its bytes of the
// budget (parseFactor times them once read); a request that would go past it is answered 429 with
// Retry-After, and once the first ends the budget is whole again.
func TestBodiesInFlightBudget(t *testing.T) {
	const budget = 200 << 10
	e := newEnv(t, func(c *Config, _ *Deps) { c.MaxBodyBytesInFlight = budget })
	pr, pw := io.Pipe()
	first := httptest.NewRequest(http.MethodPost, "/v1/batch", pr)
	first.Header.Set("Authorization", basic(testKey+":"))
	// Announces far more than it sends: nothing is reserved for that.
	first.ContentLength = 3 << 20
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, first)
		done <- rec
	}()
	// Leading whitespace is valid JSON; 40 KB of it is in the buffer once
	// Write returns.
	if _, err := pw.Write(bytes.Repeat([]byte(" "), 40<<10)); err != nil {
		t.Fatal(err)
	}
	second := req{path: "/v1/batch", key: testKey + ":",
		body: []byte(`{"batch":[` + smallEvent + `]}` + strings.Repeat(" ", 55<<10))}
	rec := e.do(second)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("second request while the budget is held: status %d Retry-After %q: %s",
			rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	// A small one still fits.
	if rec := e.do(req{path: "/v1/batch", key: testKey + ":", body: []byte(`{"batch":[` + smallEvent + `]}`)}); rec.Code != http.StatusOK {
		t.Fatalf("small request: status %d: %s", rec.Code, rec.Body)
	}
	_, _ = io.WriteString(pw, `{"batch":[`+smallEvent+`]}`)
	_ = pw.Close()
	first.ContentLength = -1
	if rec := <-done; rec.Code != http.StatusOK {
		t.Fatalf("first request: status %d: %s", rec.Code, rec.Body)
	}
	if rec := e.do(second); rec.Code != http.StatusOK {
		t.Fatalf("second request after the first ended: status %d: %s", rec.Code, rec.Body)
	}
	if !e.gw.inflight.TryAcquire(budget) {
		t.Fatal("budget not whole after every request ended")
	}
}

// TestReadReservedFollowsArrivedBytes: the buffer and reservation grow
// with what arrives, whatever was announced.
func TestReadReservedFollowsArrivedBytes(t *testing.T) {
	for _, n := range []int{0, 1, minReadStep, minReadStep + 1, 100 << 10, 1 << 20} {
		e := newEnv(t)
		res := &reservation{sem: e.gw.inflight}
		body := bytes.Repeat([]byte("x"), n)
		got, err := readReserved(iotestHalfReader{bytes.NewReader(body)}, DefaultMaxRequestBytes, nil, res)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%d bytes: err %v, got %d bytes", n, err, len(got))
		}
		if limit := int64(max(minReadStep, 2*n)); res.n > limit || int64(cap(got)) > 2*limit {
			t.Errorf("%d bytes: reserved %d, capacity %d; want at most %d", n, res.n, cap(got), limit)
		}
		res.release()
	}
}

// iotestHalfReader returns at most half of what is asked, like a slow
// connection.
type iotestHalfReader struct{ r io.Reader }

func (h iotestHalfReader) Read(p []byte) (int, error) {
	return h.r.Read(p[:(len(p)+1)/2])
}

// TestSourceShareOfTheBudget: one source's bodies in flight hold at most
// its share of the budget; past it that source gets 429 while another
// source's request of the same size goes through.
func TestSourceShareOfTheBudget(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) {
		c.MaxBodyBytesInFlight = 1 << 20
		c.MaxBodyBytesInFlightPerSource = 200 << 10
	})
	pr, pw := io.Pipe()
	first := httptest.NewRequest(http.MethodPost, "/v1/batch", pr)
	first.Header.Set("Authorization", basic(testKey+":"))
	first.ContentLength = -1
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, first)
		done <- rec
	}()
	if _, err := pw.Write(bytes.Repeat([]byte(" "), 40<<10)); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"batch":[` + smallEvent + `]}` + strings.Repeat(" ", 55<<10))
	if rec := e.do(req{path: "/v1/batch", key: testKey + ":", body: body}); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("the same source past its share: status %d: %s", rec.Code, rec.Body)
	}
	if rec := e.do(req{path: "/v1/batch", key: otherKey + ":", body: body}); rec.Code != http.StatusOK {
		t.Fatalf("another source meanwhile: status %d: %s", rec.Code, rec.Body)
	}
	_, _ = io.WriteString(pw, `{"batch":[`+smallEvent+`]}`)
	_ = pw.Close()
	if rec := <-done; rec.Code != http.StatusOK {
		t.Fatalf("first request: status %d: %s", rec.Code, rec.Body)
	}
	if rec := e.do(req{path: "/v1/batch", key: testKey + ":", body: body}); rec.Code != http.StatusOK {
		t.Fatalf("the source after its request ended: status %d: %s", rec.Code, rec.Body)
	}
	if !e.gw.inflight.TryAcquire(1<<20) || !e.gw.perSource.of("web").TryAcquire(200<<10) {
		t.Fatal("budget or share not whole after every request ended")
	}
}
