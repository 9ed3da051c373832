package gateway

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBody(t *testing.T) {
	batch := []byte(`{"batch":[{"type":"track","event":"E","userId":"u1","messageId":"m-1"}]}`)
	gz := gzipBytes(batch)
	var zl bytes.Buffer
	zw := zlib.NewWriter(&zl)
	_, _ = zw.Write(batch)
	_ = zw.Close()
	big := []byte(`{"batch":[{"type":"track","event":"E","userId":"u1","properties":{"pad":"` +
		strings.Repeat("x", 2000) + `"}}]}`)

	tests := []struct {
		name       string
		body       []byte
		headers    map[string]string
		wantStatus int
		wantMsg    string
	}{
		{name: "plain", body: batch, wantStatus: 200},
		{name: "gzip", body: gz, headers: map[string]string{"Content-Encoding": "gzip"}, wantStatus: 200},
		{name: "gzip upper-case", body: gz, headers: map[string]string{"Content-Encoding": "GZIP"}, wantStatus: 200},
		{name: "x-gzip", body: gz, headers: map[string]string{"Content-Encoding": "x-gzip"}, wantStatus: 200},
		{name: "deflate", body: zl.Bytes(), headers: map[string]string{"Content-Encoding": "deflate"}, wantStatus: 200},
		{name: "text/plain ignored", body: batch, headers: map[string]string{"Content-Type": "text/plain"}, wantStatus: 200},
		{name: "form content-type ignored", body: gz, headers: map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"}, wantStatus: 200},
		{name: "truncated gzip", body: gz[:len(gz)/2], headers: map[string]string{"Content-Encoding": "gzip"},
			wantStatus: 400, wantMsg: "gzip body is truncated"},
		{name: "gzip missing trailer", body: gz[:len(gz)-4], headers: map[string]string{"Content-Encoding": "gzip"},
			wantStatus: 400, wantMsg: "gzip body is truncated"},
		{name: "not gzip", body: batch, headers: map[string]string{"Content-Encoding": "gzip"},
			wantStatus: 400, wantMsg: "gzip body is corrupt"},
		{name: "empty gzip", body: nil, headers: map[string]string{"Content-Encoding": "gzip"},
			wantStatus: 400, wantMsg: "gzip body is truncated"},
		{name: "unsupported encoding", body: batch, headers: map[string]string{"Content-Encoding": "br"},
			wantStatus: 415, wantMsg: `unsupported Content-Encoding "br"`},
		{name: "empty", body: nil, wantStatus: 400, wantMsg: "empty request body"},
		{name: "whitespace", body: []byte(" \n\t"), wantStatus: 400, wantMsg: "empty request body"},
		{name: "invalid json", body: []byte(`{"batch":[`), wantStatus: 400, wantMsg: "invalid JSON"},
		{name: "not an object", body: []byte(`"hello"`), wantStatus: 400, wantMsg: "want an object or an array"},
		{name: "empty batch", body: []byte(`{"batch":[]}`), wantStatus: 400, wantMsg: "batch is empty"},
		{name: "oversize plain", body: big, wantStatus: 413, wantMsg: "larger than 1024 bytes"},
		{name: "oversize gzip", body: gzipBytes(big), headers: map[string]string{"Content-Encoding": "gzip"},
			wantStatus: 413, wantMsg: "larger than 1024 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config, _ *Deps) { c.MaxRequestBytes = 1024 })
			rec := e.do(req{path: "/v1/batch", body: tc.body, key: testKey, headers: tc.headers})
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			var resp struct {
				Success bool   `json:"success"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("response is not JSON: %q", rec.Body)
			}
			if resp.Success != (tc.wantStatus == 200) || !strings.Contains(resp.Message, tc.wantMsg) {
				t.Errorf("response %+v, want message containing %q", resp, tc.wantMsg)
			}
			if n := len(e.q.messages()); (n > 0) != (tc.wantStatus == 200) {
				t.Errorf("%d messages enqueued with status %d", n, rec.Code)
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// zeroReader yields zeros.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestGzipBomb(t *testing.T) {
	const (
		bombSize = 100 << 20 // 100 MB of zeros…
		limit    = 1 << 20   // …against a 1 MB request limit
	)
	// A multi-member gzip stream (valid, and read whole by gzip.Reader):
	// 100 copies of one member holding 1 MB of zeros. Building it this way
	// costs one 1 MB compression instead of 100.
	var member bytes.Buffer
	zw, _ := gzipWriterBest(&member)
	if _, err := io.Copy(zw, io.LimitReader(zeroReader{}, 1<<20)); err != nil {
		t.Fatal(err)
	}
	_ = zw.Close()
	bomb := bytes.Repeat(member.Bytes(), bombSize>>20)
	t.Logf("bomb: %d bytes decompressing to %d", len(bomb), bombSize)

	e := newEnv(t, func(c *Config, _ *Deps) { c.MaxRequestBytes = limit })
	wire := &countingReader{r: bytes.NewReader(bomb)}
	r := httptest.NewRequest(http.MethodPost, "/v1/batch", wire)
	r.Header.Set("Content-Encoding", "gzip")
	r.Header.Set("Authorization", basic(testKey+":"))
	rec := httptest.NewRecorder()

	var before, after runtimeMem
	before.read()
	e.h.ServeHTTP(rec, r)
	after.read()

	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413; body %s", rec.Code, rec.Body)
	}
	// Streaming check: decompression stopped at the limit, so only the
	// first ~1/100 of the compressed stream was consumed.
	if wire.n > int64(len(bomb))/10 {
		t.Errorf("read %d of %d compressed bytes: decompression did not stop at the limit", wire.n, len(bomb))
	}
	// And memory: bounded by a few times the limit (the body buffer grows
	// by doubling; -race adds its own), never the 100 MB.
	if alloc := after.totalAlloc - before.totalAlloc; alloc > 16*limit {
		t.Errorf("allocated %d bytes for a %d-byte limit", alloc, limit)
	}
}

func TestChunkedBody(t *testing.T) {
	// analytics-android posts gzipped, chunked batches to /v1/import.
	e := newEnv(t)
	var seenTE []string
	var seenLen int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenTE, seenLen = r.TransferEncoding, r.ContentLength
		e.h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	body := gzipBytes([]byte(`{"batch":[{"type":"identify","userId":"u1","messageId":"m-1"},{"type":"track","event":"E","userId":"u1","messageId":"m-2"}]}`))
	// A reader of unknown length makes the client send chunked.
	r, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/import", io.MultiReader(bytes.NewReader(body[:10]), bytes.NewReader(body[10:])))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Encoding", "gzip")
	r.Header.Set("Authorization", basic(testKey+":"))
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	got := readAllString(t, resp.Body)
	_ = resp.Body.Close()
	srv.Client().CloseIdleConnections()
	if resp.StatusCode != http.StatusOK || got != `{"success":true}` {
		t.Fatalf("status %d body %q", resp.StatusCode, got)
	}
	if len(seenTE) != 1 || seenTE[0] != "chunked" || seenLen != -1 {
		t.Errorf("request was not chunked: Transfer-Encoding %v, Content-Length %d", seenTE, seenLen)
	}
	if n := len(e.q.messages()); n != 4 {
		t.Errorf("%d messages, want 4 (2 events × 2 destinations)", n)
	}
}
