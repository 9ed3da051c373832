package gateway

import (
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/semaphore"
)

// bodyError is a body that cannot be read, with the status to answer.
type bodyError struct {
	status     int
	msg        string
	retryAfter bool
}

func (e *bodyError) Error() string { return e.msg }

// wireError marks an error from the client connection (as opposed to the
// decompressor), so a dropped connection is not blamed on the gzip data.
type wireError struct{ err error }

func (e *wireError) Error() string { return e.err.Error() }
func (e *wireError) Unwrap() error { return e.err }

type wireReader struct{ r io.Reader }

func (w wireReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && err != io.EOF {
		err = &wireError{err}
	}
	return n, err
}

// minReadStep is the least a body's reservation grows by: a client that
// announces megabytes and sends a trickle holds about this much.
const minReadStep = 4 << 10

// readBody returns the decompressed body, reading at most limit+1
// decompressed bytes whatever the body claims, so a gzip bomb costs at most
// limit bytes of memory. Content-Type is ignored (clients send text/plain and
// x-www-form-urlencoded JSON, clients.md §1). The body is read into
// scratch's capacity when it suffices.
//
// Memory follows the bytes that arrived, never Content-Length: before the
// buffer takes more, res must grow by about half of what was read (at least
// minReadStep); when the gateway-wide budget has no room, the answer is 429
// with Retry-After. The caller releases res once it is done with the body
// and everything parsed from it.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, scratch []byte, res *reservation) ([]byte, error) {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	compressed := enc != "" && enc != "identity"
	// The wire body is capped too (with slack for incompressible data in a
	// compressed stream); MaxBytesReader also makes the server close the
	// connection instead of draining an oversize body.
	wireLimit := limit
	if compressed {
		wireLimit += limit/64 + 1024
	}
	if r.ContentLength > wireLimit {
		// Announced too large: answered before a byte is read.
		return nil, tooLarge(limit)
	}
	var src io.Reader = wireReader{http.MaxBytesReader(w, r.Body, wireLimit)}
	switch enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, decodeError(err, enc, limit)
		}
		defer zr.Close()
		src = zr
	case "deflate": // HTTP "deflate" is the zlib format (RFC 9110 §8.4.1.2)
		zr, err := zlib.NewReader(src)
		if err != nil {
			return nil, decodeError(err, enc, limit)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, &bodyError{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("unsupported Content-Encoding %q: send gzip, deflate or an uncompressed body", truncate(enc, 40))}
	}
	buf, err := readReserved(src, limit, scratch[:0], res)
	if err != nil {
		if _, ok := errors.AsType[*bodyError](err); ok {
			return nil, err
		}
		if compressed {
			return nil, decodeError(err, enc, limit)
		}
		return nil, readError(err, limit)
	}
	return buf, nil
}

// readReserved reads src to its end into buf, growing res before the
// buffer grows, up to limit bytes.
func readReserved(src io.Reader, limit int64, buf []byte, res *reservation) ([]byte, error) {
	for {
		n := int64(len(buf))
		if n > limit {
			return nil, tooLarge(limit)
		}
		if n == res.n {
			if !res.grow(min(n+max(minReadStep, n/2), limit+1)) {
				return nil, errBusy
			}
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(res.n-n))
		}
		m, err := src.Read(buf[len(buf):min(int64(cap(buf)), res.n)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			if int64(len(buf)) > limit {
				return nil, tooLarge(limit)
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// errBusy is the answer while the bodies in flight use the whole budget
// (or the source's share of it).
var errBusy = &bodyError{status: http.StatusTooManyRequests, retryAfter: true,
	msg: "too many request bodies are being received at once; retry after the Retry-After delay"}

// reservation is the part of the gateway's in-flight body budget that one
// request holds, taken from its source's share too when it has one.
type reservation struct {
	sem    *semaphore.Weighted
	source *semaphore.Weighted // nil: the source is not known yet
	n      int64
}

// grow makes the reservation to bytes without waiting; false when the
// budget, or the source's share of it, has no room.
func (r *reservation) grow(to int64) bool {
	if to <= r.n {
		return true
	}
	more := to - r.n
	if r.source != nil && !r.source.TryAcquire(more) {
		return false
	}
	if !r.sem.TryAcquire(more) {
		if r.source != nil {
			r.source.Release(more)
		}
		return false
	}
	r.n = to
	return true
}

func (r *reservation) release() {
	if r.n > 0 {
		r.sem.Release(r.n)
		if r.source != nil {
			r.source.Release(r.n)
		}
		r.n = 0
	}
}

// sourceBudgets are the sources' shares of the in-flight budget, made on
// a source's first request (sources are configured or created in the
// console, so they are few).
type sourceBudgets struct {
	mu    sync.Mutex
	size  int64
	share map[string]*semaphore.Weighted
}

func (b *sourceBudgets) of(source string) *semaphore.Weighted {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.share == nil {
		b.share = map[string]*semaphore.Weighted{}
	}
	s := b.share[source]
	if s == nil {
		s = semaphore.NewWeighted(b.size)
		b.share[source] = s
	}
	return s
}

func tooLarge(limit int64) error {
	return &bodyError{status: http.StatusRequestEntityTooLarge,
		msg: fmt.Sprintf("request body is larger than %d bytes (after decompression); send smaller batches", limit)}
}

// readError classifies an error from the connection itself.
func readError(err error, limit int64) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge(limit)
	}
	return &bodyError{status: http.StatusRequestTimeout, msg: "could not read the request body from the connection; retry"}
}

// decodeError classifies an error while decompressing: the connection's
// own errors keep their meaning, anything else is corrupt data.
func decodeError(err error, enc string, limit int64) error {
	if _, ok := errors.AsType[*wireError](err); ok {
		return readError(err, limit)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &bodyError{status: http.StatusBadRequest, msg: fmt.Sprintf("%s body is truncated: the compressed stream ended early", enc)}
	}
	return &bodyError{status: http.StatusBadRequest, msg: fmt.Sprintf("%s body is corrupt: %v", enc, err)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
