// Package eventstream reads a stream of JSON events one value at a time, in
// constant memory: a JSON array of any length, or a sequence of JSON values
// separated by whitespace (NDJSON, and the pretty-printed object streams
// that `jq '.[]'` writes). The form is detected from the first byte that is
// not whitespace or a UTF-8 byte-order mark. It finds where each value
// starts and ends; it does not check what is inside (the caller's parser
// validates that), so a value that is not JSON is only caught here as far as
// its boundaries go.
package eventstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/relaycdp/relay/internal/jsonx"
)

// Form is how the stream holds its values.
type Form int

// The forms a stream can take.
const (
	// FormUnknown: nothing has been read yet.
	FormUnknown Form = iota
	// FormArray: one JSON array; each element is a value.
	FormArray
	// FormValues: values one after another, separated by whitespace
	// (NDJSON is this with one value a line).
	FormValues
)

// DefaultMaxValue caps one value: far above any event (Segment's limit is
// 32 KB, a batch 500 KB, RudderStack's request 4 MB), low enough to fail
// clearly on a file that is not a stream of events.
const DefaultMaxValue = 64 << 20

// readChunk is how much is asked of the source at a time.
const readChunk = 64 << 10

// ErrEmpty is returned (wrapped) when the stream holds no value at all.
var ErrEmpty = errors.New("input is empty")

// SyntaxError is a stream that cannot be split into values, located by the
// value it happened in or after.
type SyntaxError struct {
	Index  int   // 0-based index of the value being read
	Line   int   // 1-based line where that value starts (or where the problem is, between values)
	Offset int64 // byte offset of the problem in the stream
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("event %d (line %d, byte %d): %s", e.Index, e.Line, e.Offset, e.Msg)
}

// Reader splits a stream into values. Next returns one value at a time in
// a buffer Reader reuses, so a Reader holds at most one value (and one read
// chunk) however long the stream is.
type Reader struct {
	src  io.Reader
	buf  []byte
	r, w int   // unread bytes are buf[r:w]
	base int64 // stream offset of buf[0]
	line int   // line of buf[r]
	eof  bool
	rerr error // a read error other than io.EOF

	form   Form
	n      int // values returned
	closed bool
	err    error // sticky: once Next failed it keeps failing

	// MaxValue caps one value's size (DefaultMaxValue when 0).
	MaxValue int

	// Bound, when set, is asked first where an object value ends: given
	// the buffered bytes from its '{', it returns the object's length
	// when the whole object is among them, else 0, and the Reader then
	// scans for the end itself. A caller that validates every value
	// anyway passes its validator (which must find the end a scan finds),
	// so that each byte is walked once instead of twice: finding the
	// values' ends was a tenth of `relay transform`'s CPU.
	Bound func(b []byte) int

	// Where the last value returned starts.
	valLine   int
	valOffset int64
}

// NewReader reads values from src.
func NewReader(src io.Reader) *Reader {
	return &Reader{src: src, buf: make([]byte, 0, readChunk), line: 1}
}

// Form is the stream's form, known after the first call to Next.
func (r *Reader) Form() Form { return r.form }

// Pos is where the value Next last returned starts: its 0-based index, its
// line and its byte offset in the stream.
func (r *Reader) Pos() (index, line int, offset int64) { return r.n - 1, r.valLine, r.valOffset }

// Next returns the next value, valid until the following call. It returns
// io.EOF after the last value, an error wrapping ErrEmpty for a stream with
// no value (an empty array is one: "[]"), a *SyntaxError when the stream
// cannot be split, and a read error of the source as it is.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	v, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	r.n++
	return v, nil
}

func (r *Reader) next() ([]byte, error) {
	if r.form == FormUnknown {
		if err := r.detect(); err != nil {
			return nil, err
		}
	}
	c, ok, err := r.skipSpace()
	if err != nil {
		return nil, err
	}
	if r.form == FormValues {
		if !ok {
			return nil, r.endOfValues()
		}
		return r.value()
	}
	if r.closed {
		return nil, io.EOF
	}
	if !ok {
		return nil, r.syntax(r.n, "the input ends inside the array (no closing ])")
	}
	if c == ']' {
		return nil, r.closeArray()
	}
	if r.n > 0 {
		if c != ',' {
			return nil, r.syntax(r.n, fmt.Sprintf("want , or ] after event %d, found %s", r.n-1, quoteByte(c)))
		}
		r.r++
		if c, ok, err = r.skipSpace(); err != nil {
			return nil, err
		}
		if !ok {
			return nil, r.syntax(r.n, "the input ends inside the array (no closing ])")
		}
		if c == ']' {
			return nil, r.syntax(r.n, "a comma before ] (trailing commas are not JSON)")
		}
	}
	if c == ',' {
		return nil, r.syntax(r.n, "an empty element (two commas, or a comma after [)")
	}
	return r.value()
}

func (r *Reader) endOfValues() error {
	if r.n == 0 {
		return fmt.Errorf("%w", ErrEmpty)
	}
	return io.EOF
}

// detect skips a byte-order mark and whitespace and reads the form from
// the first byte.
func (r *Reader) detect() error {
	if err := r.fill(3); err != nil {
		return err
	}
	if bytes.HasPrefix(r.buf[r.r:r.w], []byte("\xef\xbb\xbf")) {
		r.r += 3
	}
	c, ok, err := r.skipSpace()
	if err != nil {
		return err
	}
	switch {
	case !ok:
		return fmt.Errorf("%w", ErrEmpty)
	case c == '[':
		r.form = FormArray
		r.r++
		c, ok, err := r.skipSpace()
		if err != nil {
			return err
		}
		if ok && c == ']' {
			r.r++
			return fmt.Errorf("%w: the array of events is empty", ErrEmpty)
		}
	default:
		r.form = FormValues
	}
	return nil
}

// closeArray consumes the array's ] and checks that only whitespace
// follows it.
func (r *Reader) closeArray() error {
	r.r++
	r.closed = true
	c, ok, err := r.skipSpace()
	if err != nil {
		return err
	}
	if ok {
		return r.syntax(r.n, fmt.Sprintf("%s after the array's closing ] (one array, or one value a line, not both)", quoteByte(c)))
	}
	return io.EOF
}

// skipSpace moves past whitespace and returns the next byte, or ok=false
// at the end of the stream.
func (r *Reader) skipSpace() (c byte, ok bool, err error) {
	for {
		for r.r < r.w {
			switch c := r.buf[r.r]; c {
			case '\n':
				r.line++
				r.r++
			case ' ', '\t', '\r':
				r.r++
			default:
				return c, true, nil
			}
		}
		if err := r.fill(1); err != nil {
			return 0, false, err
		}
		if r.r == r.w {
			return 0, false, nil
		}
	}
}

// value reads the value starting at buf[r] and returns its bytes.
func (r *Reader) value() ([]byte, error) {
	r.valLine, r.valOffset = r.line, r.base+int64(r.r)
	end := 0
	if r.Bound != nil && r.buf[r.r] == '{' {
		if n := r.Bound(r.buf[r.r:r.w]); n > 0 && n <= r.w-r.r {
			end = r.r + n
			r.line += bytes.Count(r.buf[r.r:end], []byte("\n"))
		}
	}
	if end == 0 {
		var err error
		if end, err = r.scan(); err != nil {
			return nil, err
		}
	}
	if limit := r.maxValue(); end-r.r > limit {
		return nil, r.syntax(r.n, fmt.Sprintf("event is larger than %d bytes", limit))
	}
	v := r.buf[r.r:end]
	r.r = end
	return v, nil
}

// scan finds the end of the value at buf[r] (an index into buf), reading
// more of the stream as needed. Objects and arrays end at their matching
// bracket (strings skipped), strings at their closing quote, and numbers
// and literals at the next delimiter.
func (r *Reader) scan() (int, error) {
	i := r.r
	first := r.buf[i]
	depth := 0
	switch first {
	case '{', '[':
	case '"':
		depth = -1 // a lone string: ends at its quote
	case '}', ']', ',', ':':
		return 0, r.syntax(r.n, fmt.Sprintf("%s where an event should start", quoteByte(first)))
	default:
		return r.scanScalar()
	}
	inString := depth < 0
	if inString {
		i++
	}
	for {
		if inString {
			j, closed := skipString(r.buf[i:r.w])
			i += j
			if closed {
				inString = false
				if depth < 0 {
					return i, nil
				}
				continue
			}
		} else {
			for ; i < r.w; i++ {
				switch r.buf[i] {
				case '"':
					inString = true
				case '{', '[':
					depth++
				case '}', ']':
					depth--
					if depth == 0 {
						return i + 1, nil
					}
				case '\n':
					r.line++
				}
				if inString {
					i++
					break
				}
			}
			if inString {
				continue
			}
		}
		// Out of buffered bytes inside the value: read more.
		shift, err := r.more(i)
		i -= shift
		if errors.Is(err, errEnded) {
			what := "the event"
			if inString {
				what = "a string"
			}
			return 0, r.syntaxAt(r.n, r.base+int64(r.w), fmt.Sprintf("the input ends inside %s (the event started at line %d, byte %d)", what, r.valLine, r.valOffset))
		}
		if err != nil {
			return 0, err
		}
	}
}

// skipString skips string content after its opening quote: it returns how
// many bytes of b it consumed and whether the closing quote was among them.
// A backslash at the very end of b is left unconsumed (its escape may be in
// the next chunk).
func skipString(b []byte) (int, bool) {
	// Eight bytes at a time through runs of plain bytes (bytes.IndexAny's
	// set lookup cost more than it saved on the short strings events are
	// made of).
	for i := 0; i < len(b); i++ {
		if i += jsonx.PlainPrefix(b[i:]); i >= len(b) {
			break
		}
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(b) {
				return i, false
			}
			i++
		}
	}
	return len(b), false
}

// scanScalar finds the end of a number or literal: the next delimiter.
func (r *Reader) scanScalar() (int, error) {
	i := r.r
	for {
		for ; i < r.w; i++ {
			switch r.buf[i] {
			case ' ', '\t', '\r', '\n', ',', ']', '}', '[', '{', '"', ':':
				return i, nil
			}
		}
		shift, err := r.more(i)
		i -= shift
		if errors.Is(err, errEnded) {
			return i, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// more reads more of the stream while a value starting at buf[r] is being
// scanned up to buf[i], moving the value to the front of buf (and growing
// buf) as needed. It returns by how much indices into buf moved, and an
// error when the stream ended (or the value outgrew MaxValue) first.
func (r *Reader) more(i int) (shift int, err error) {
	if limit := r.maxValue(); i-r.r > limit {
		return 0, r.syntaxAt(r.n, r.base+int64(i), fmt.Sprintf("event is larger than %d bytes (it started at line %d, byte %d)", limit, r.valLine, r.valOffset))
	}
	base, unread := r.base, r.w-r.r
	if err := r.fill(unread + 1); err != nil {
		return 0, err
	}
	shift = int(r.base - base)
	if r.w-r.r == unread { // the stream ended
		return shift, errEnded
	}
	return shift, nil
}

func (r *Reader) maxValue() int {
	if r.MaxValue <= 0 {
		return DefaultMaxValue
	}
	return r.MaxValue
}

// errEnded is more's "the stream ended inside the value"; the scanners
// turn it into a SyntaxError saying inside what.
var errEnded = errors.New("ended")

// fill tries to have at least n unread bytes buffered, moving the unread
// bytes to the front of buf and growing it when needed. At the end of the
// stream it returns nil with fewer.
func (r *Reader) fill(n int) error {
	for r.w-r.r < n && !r.eof {
		if r.rerr != nil {
			return r.rerr
		}
		if r.r > 0 {
			copy(r.buf[:cap(r.buf)], r.buf[r.r:r.w])
			r.base += int64(r.r)
			r.w -= r.r
			r.r = 0
		}
		if cap(r.buf)-r.w < readChunk/2 {
			grown := make([]byte, r.w, 2*cap(r.buf)+readChunk)
			copy(grown, r.buf[:r.w])
			r.buf = grown
		}
		r.buf = r.buf[:cap(r.buf)]
		k, err := r.src.Read(r.buf[r.w:])
		r.w += k
		r.buf = r.buf[:r.w]
		switch {
		case err == io.EOF:
			r.eof = true
		case err != nil:
			r.rerr = fmt.Errorf("read input: %w", err)
			if k == 0 {
				return r.rerr
			}
		case k == 0:
			// A reader returning 0, nil: ask again.
		}
	}
	return nil
}

func (r *Reader) syntax(index int, msg string) error {
	return r.syntaxAt(index, r.base+int64(r.r), msg)
}

func (r *Reader) syntaxAt(index int, offset int64, msg string) error {
	return &SyntaxError{Index: index, Line: r.line, Offset: offset, Msg: msg}
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", string(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
