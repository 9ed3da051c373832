package gateway

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// bodyError is a body that cannot be read, with the status to answer.
type bodyError struct {
	status int
	msg    string
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

// readBody returns the decompressed body, reading at most limit+1
// decompressed bytes whatever the body claims, so a gzip bomb costs at most
// limit bytes of memory. Content-Type is ignored (clients send text/plain and
// x-www-form-urlencoded JSON, clients.md §1). The body is read into
// scratch's capacity when it suffices.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, scratch []byte) ([]byte, error) {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	compressed := enc != "" && enc != "identity"
	// The wire body is capped too (with slack for incompressible data in a
	// compressed stream); MaxBytesReader also makes the server close the
	// connection instead of draining an oversize body.
	wireLimit := limit
	if compressed {
		wireLimit += limit/64 + 1024
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
		return nil, &bodyError{http.StatusUnsupportedMediaType,
			fmt.Sprintf("unsupported Content-Encoding %q: send gzip, deflate or an uncompressed body", truncate(enc, 40))}
	}

	buf := bytes.NewBuffer(scratch[:0])
	// Content-Length is only a hint (it is the compressed size for gzip);
	// never trust it past the limit.
	if !compressed && r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, limit) + bytes.MinRead))
	}
	n, err := buf.ReadFrom(io.LimitReader(src, limit+1))
	if err != nil {
		if compressed {
			return nil, decodeError(err, enc, limit)
		}
		return nil, readError(err, limit)
	}
	if n > limit {
		return nil, tooLarge(limit)
	}
	return buf.Bytes(), nil
}

func tooLarge(limit int64) error {
	return &bodyError{http.StatusRequestEntityTooLarge,
		fmt.Sprintf("request body is larger than %d bytes (after decompression); send smaller batches", limit)}
}

// readError classifies an error from the connection itself.
func readError(err error, limit int64) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge(limit)
	}
	return &bodyError{http.StatusRequestTimeout, "could not read the request body from the connection; retry"}
}

// decodeError classifies an error while decompressing: the connection's
// own errors keep their meaning, anything else is corrupt data.
func decodeError(err error, enc string, limit int64) error {
	if _, ok := errors.AsType[*wireError](err); ok {
		return readError(err, limit)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &bodyError{http.StatusBadRequest, fmt.Sprintf("%s body is truncated: the compressed stream ended early", enc)}
	}
	return &bodyError{http.StatusBadRequest, fmt.Sprintf("%s body is corrupt: %v", enc, err)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
