package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzHandler feeds arbitrary bodies and headers to the ingest routes: the
// handler must never panic, must answer one of the documented statuses, must
// never echo the key, and must never acknowledge without committing.
//
// Run: go test -run '^$' -fuzz FuzzHandler -fuzztime 20000x -fuzzminimizetime 5s ./internal/gateway/
// (about 10 s on 2 shared cores). A count, not a duration: Go 1.26's fuzz
// coordinator can fail a duration-bounded run with a spurious "context
// deadline exceeded" at the deadline (golang/go#75804, fixed in 1.27); and
// the default minimisation budget (60 s per new input) dominates short runs.
func FuzzHandler(f *testing.F) {
	wire, _ := filepath.Glob(filepath.Join("testdata", "wire", "*.json"))
	for _, p := range wire {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(6), basic(testKey+":"), "", false)
		f.Add(b, uint8(0), "", "gzip", true)
	}
	f.Add([]byte(oneEvent), uint8(1), basic(testKey), "", false)
	f.Add([]byte(`{"batch":[]}`), uint8(6), "", "", false)
	f.Add([]byte(`[{"type":"track"},1,null,"x"]`), uint8(7), basic(otherKey+":"), "", false)
	f.Add([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff}, uint8(6), basic(testKey+":"), "gzip", false)
	f.Add([]byte(`{"writeKey":"`+testKey+`","type":"`+testKey+`"}`), uint8(9), "Bearer x", "deflate", false)

	routes := ingestRoutes()
	allowed := map[int]bool{200: true, 204: true, 400: true, 401: true, 413: true, 415: true}

	// One gateway for all inputs (a fuzz worker runs them one at a time);
	// the queue and log are reset per input.
	e := newEnv(f, func(c *Config, _ *Deps) { c.MaxRequestBytes = 64 << 10; c.MaxEventBytes = 4 << 10 })
	f.Fuzz(func(t *testing.T, body []byte, route uint8, auth, encoding string, gzipIt bool) {
		e.q.reset()
		e.logs.reset()
		rt := routes[int(route)%len(routes)]
		if gzipIt {
			body = gzipBytes(body)
		}
		r := httptest.NewRequest(http.MethodPost, rt.path, bytes.NewReader(body))
		if auth != "" && validHeader(auth) {
			r.Header.Set("Authorization", auth)
		}
		if encoding != "" && validHeader(encoding) {
			r.Header.Set("Content-Encoding", encoding)
		}
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, r)
		if !allowed[rec.Code] {
			t.Fatalf("status %d not documented; body %s", rec.Code, rec.Body)
		}
		if strings.Contains(rec.Body.String(), testKey) || strings.Contains(e.logs.String(), testKey) {
			t.Fatalf("key leaked: %s", rec.Body)
		}
		if rec.Code != http.StatusOK && len(e.q.messages()) > 0 {
			t.Fatalf("status %d but %d messages committed", rec.Code, len(e.q.messages()))
		}
	})
}

// validHeader reports whether v can be sent as a header value at all.
func validHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
