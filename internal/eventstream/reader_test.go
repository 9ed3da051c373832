package eventstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/relaycdp/relay/internal/spec"
)

// readAll reads every value, copying each (Next reuses its buffer).
func readAll(t testing.TB, r *Reader) ([]string, error) {
	t.Helper()
	var vals []string
	for {
		v, err := r.Next()
		if err == io.EOF {
			return vals, nil
		}
		if err != nil {
			return vals, err
		}
		vals = append(vals, string(v))
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		form Form
		want []string
	}{
		{"array", `[{"a":1},{"b":[2,{"c":"]}"}]}]`, FormArray, []string{`{"a":1}`, `{"b":[2,{"c":"]}"}]}`}},
		{"array with whitespace and BOM", "\xef\xbb\xbf \n[\n  {\"a\":1} ,\r\n\t{\"b\":2}\n]\n\n", FormArray, []string{`{"a":1}`, `{"b":2}`}},
		{"array of scalars", `[1, "x", true, null, -2.5e3]`, FormArray, []string{`1`, `"x"`, `true`, `null`, `-2.5e3`}},
		{"array of arrays", `[[1,2],[]]`, FormArray, []string{`[1,2]`, `[]`}},
		{"ndjson", "{\"a\":1}\n{\"b\":2}\n", FormValues, []string{`{"a":1}`, `{"b":2}`}},
		{"ndjson CRLF, blank lines, no final newline", "\r\n{\"a\":1}\r\n\r\n{\"b\":2}", FormValues, []string{`{"a":1}`, `{"b":2}`}},
		{"pretty object stream", "{\n  \"a\": \"x\\\"}\"\n}\n{\n  \"b\": {}\n}\n", FormValues, []string{"{\n  \"a\": \"x\\\"}\"\n}", "{\n  \"b\": {}\n}"}},
		{"one object", `{"batch":[{"a":1}]}`, FormValues, []string{`{"batch":[{"a":1}]}`}},
		{"concatenated", `{"a":1}{"b":2}`, FormValues, []string{`{"a":1}`, `{"b":2}`}},
		{"scalars in a stream", "42\n\"s\"\n{}", FormValues, []string{`42`, `"s"`, `{}`}},
		{"backslashes", `["\\", "\\\"", {"k":"\\\\"}]`, FormArray, []string{`"\\"`, `"\\\""`, `{"k":"\\\\"}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Whole, and one byte per Read (every value crosses a refill).
			for _, src := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				r := NewReader(src)
				got, err := readAll(t, r)
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("values (-want +got):\n%s", diff)
				}
				if r.Form() != tc.form {
					t.Errorf("form = %d, want %d", r.Form(), tc.form)
				}
				if _, err := r.Next(); err != io.EOF {
					t.Errorf("Next after the end = %v, want io.EOF", err)
				}
			}
		})
	}
}

func TestReaderPos(t *testing.T) {
	in := "{\"a\":1}\n\n  {\"b\":\n2}\n[3]"
	r := NewReader(strings.NewReader(in))
	want := []struct {
		line   int
		offset int64
	}{{1, 0}, {3, 11}, {5, 20}}
	for i, w := range want {
		v, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		idx, line, off := r.Pos()
		if idx != i || line != w.line || off != w.offset {
			t.Errorf("value %d %q: Pos = %d, line %d, byte %d; want line %d, byte %d", i, v, idx, line, off, w.line, w.offset)
		}
		if in[off:off+int64(len(v))] != string(v) {
			t.Errorf("value %d is not the input at its offset", i)
		}
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		valid int    // values returned before the error
		empty bool   // ErrEmpty rather than a SyntaxError
		has   string // in the message
		index int
		line  int
		off   int64
	}{
		{name: "nothing", in: "", empty: true},
		{name: "only whitespace and BOM", in: "\xef\xbb\xbf \n\t", empty: true},
		{name: "empty array", in: " [ ] ", empty: true, has: "array of events is empty"},
		{name: "unclosed array", in: `[{"a":1}`, valid: 1, has: "ends inside the array", index: 1, line: 1, off: 8},
		{name: "missing comma", in: "[{\"a\":1}\n {\"b\":2}]", valid: 1, has: `want , or ] after event 0, found "{"`, index: 1, line: 2, off: 10},
		{name: "trailing comma", in: `[{"a":1},]`, valid: 1, has: "comma before ]", index: 1, line: 1, off: 9},
		{name: "double comma", in: `[{"a":1},,{}]`, valid: 1, has: "empty element", index: 1, line: 1, off: 9},
		{name: "leading comma", in: `[,{}]`, has: "empty element", index: 0, line: 1, off: 1},
		{name: "content after the array", in: "[{}]\n{}", valid: 1, has: `"{" after the array's closing ]`, index: 1, line: 2, off: 5},
		{name: "unterminated object", in: "{\"a\":1}\n{\"b\":\n{", valid: 1, has: "ends inside the event (the event started at line 2, byte 8)", index: 1, line: 3, off: 15},
		{name: "unterminated string", in: `[{"a":"xyz`, has: "ends inside a string", index: 0, line: 1, off: 10},
		{name: "trailing backslash", in: `{"a":"\`, has: "ends inside a string", index: 0, line: 1, off: 7},
		{name: "stray closer", in: "{}\n}", valid: 1, has: `"}" where an event should start`, index: 1, line: 2, off: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, src := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				r := NewReader(src)
				got, err := readAll(t, r)
				if len(got) != tc.valid {
					t.Errorf("%d values before the error, want %d: %q", len(got), tc.valid, got)
				}
				if err == nil {
					t.Fatalf("no error")
				}
				if !strings.Contains(err.Error(), tc.has) {
					t.Errorf("error %q does not contain %q", err, tc.has)
				}
				if tc.empty {
					if !errors.Is(err, ErrEmpty) {
						t.Errorf("error %v is not ErrEmpty", err)
					}
					continue
				}
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("error %v is not a SyntaxError", err)
				}
				if se.Index != tc.index || se.Line != tc.line || se.Offset != tc.off {
					t.Errorf("error at event %d, line %d, byte %d; want %d, %d, %d (%v)", se.Index, se.Line, se.Offset, tc.index, tc.line, tc.off, err)
				}
				if _, again := r.Next(); again != err {
					t.Errorf("Next after an error = %v, want the same error", again)
				}
			}
		})
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := NewReader(io.MultiReader(strings.NewReader(`[{"a":1},{"b":`), iotest.ErrReader(boom)))
	got, err := readAll(t, r)
	if len(got) != 1 || !errors.Is(err, boom) {
		t.Fatalf("values %q, error %v; want one value and the read error", got, err)
	}
}

func TestReaderMaxValue(t *testing.T) {
	big := `{"a":"` + strings.Repeat("x", 5000) + `"}`
	r := NewReader(strings.NewReader(`[{},` + big + `]`))
	r.MaxValue = 1000
	got, err := readAll(t, r)
	var se *SyntaxError
	if len(got) != 1 || !errors.As(err, &se) || se.Index != 1 || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Fatalf("values %q, error %v; want one value, then event 1 too large", got, err)
	}
}

var filler = strings.Repeat("y", 700)

// eventSource yields an endless-looking JSON array (or NDJSON) of n
// events without holding it: the reader's memory is checked against a
// stream far larger than what it may keep.
type eventSource struct {
	n, i   int
	ndjson bool
	buf    []byte
	pend   []byte
}

func (s *eventSource) Read(p []byte) (int, error) {
	for len(s.pend) == 0 {
		switch {
		case s.i > s.n:
			return 0, io.EOF
		case s.i == s.n:
			if !s.ndjson {
				s.pend = append(s.pend, "\n]\n"...)
			}
		default:
			sep := ",\n"
			switch {
			case s.ndjson:
				sep = "\n"
			case s.i == 0:
				sep = "[\n"
			}
			s.pend = append(append(s.buf[:0], sep...), `{"type":"track","messageId":"m`...)
			s.pend = strconv.AppendInt(s.pend, int64(s.i), 10)
			s.pend = append(append(append(s.pend, `","event":"E","properties":{"s":"`...), filler[:s.i%700]...), `"}}`...)
			s.buf = s.pend
		}
		s.i++
	}
	k := copy(p, s.pend)
	s.pend = s.pend[k:]
	return k, nil
}

// TestReaderBoundedMemory reads 200,000 events (about 80 MB) through one
// Reader and checks, by its state rather than by time, that it never held
// more than one read chunk and one event: its buffer stays at the size
// the largest event needs, and reading allocates nothing per event once
// the buffer is grown.
func TestReaderBoundedMemory(t *testing.T) {
	for _, ndjson := range []bool{false, true} {
		src := &eventSource{n: 200000, ndjson: ndjson}
		r := NewReader(src)
		maxCap, count := 0, 0
		for {
			v, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf(`"messageId":"m%d"`, count); !bytes.Contains(v, []byte(want)) {
				t.Fatalf("event %d is %.80s", count, v)
			}
			count++
			maxCap = max(maxCap, cap(r.buf))
		}
		if count != 200000 {
			t.Fatalf("%d events, want 200000", count)
		}
		// The largest event is under 1 KB; the buffer never needs more than
		// a read chunk and a half plus an event.
		if maxCap > 2*readChunk+readChunk/2 {
			t.Errorf("buffer grew to %d bytes over an %d-byte stream", maxCap, r.base)
		}
	}
	src := &eventSource{n: 1 << 30, ndjson: true}
	r := NewReader(src)
	for range 1000 { // grow the buffer to its working size first
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(10000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per event, want the reader to add none", allocs)
	}
}

// FuzzReader: whatever the input, Next ends (io.EOF or an error) without
// panicking, every value it returns is the input's bytes at the offset
// Pos reports, and when the input is a non-empty JSON array or a stream of
// JSON values (as encoding/json reads them), the values are exactly its
// elements or values, read whole or one byte at a time.
func FuzzReader(f *testing.F) {
	for _, s := range []string{`[{"a":1},{"b":"]}"}]`, "{\"a\":1}\n{\"b\":2}\n", "\xef\xbb\xbf[1,2]", `{"batch":[{}]}`,
		`["\\\"", {"x":[[]]}]`, "[", "[,]", "{}}", `"abc`, "1 2 3", "[{}]{}", "\n\n", `[{"a":"\`,
		"[{\"a\":\n1,\n\"b\":\"x\"},\n{\"c\":[1,\n2]} ,\n{\"d\":1e400}]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole := check(t, in, NewReader(bytes.NewReader(in)))
		bytewise := check(t, in, NewReader(iotest.OneByteReader(bytes.NewReader(in))))
		if diff := cmp.Diff(whole, bytewise); diff != "" {
			t.Fatalf("one byte at a time differs (-whole +bytewise):\n%s", diff)
		}
		// With relay transform's Bound, values, positions and errors
		// are the same, whether objects lie whole in the buffer or not.
		for _, src := range []io.Reader{bytes.NewReader(in), iotest.HalfReader(bytes.NewReader(in))} {
			var sc spec.ElementScanner
			r := NewReader(src)
			r.Bound = sc.Scan
			if diff := cmp.Diff(whole, check(t, in, r)); diff != "" {
				t.Fatalf("with Bound (-without +with):\n%s", diff)
			}
		}
		body := bytes.TrimPrefix(in, []byte("\xef\xbb\xbf"))
		want, ok := jsonValues(body)
		if !ok {
			return
		}
		if whole.Err != "" {
			t.Fatalf("valid input %q: error %v", in, whole.Err)
		}
		if diff := cmp.Diff(want, whole.Vals); diff != "" {
			t.Fatalf("values of %q (-encoding/json +reader):\n%s", in, diff)
		}
	})
}

type readResult struct {
	Vals  []string
	Lines []int
	Err   string
}

func check(t *testing.T, in []byte, r *Reader) readResult {
	var res readResult
	for i := 0; ; i++ {
		if i > len(in)+1 {
			t.Fatalf("more values than input bytes")
		}
		v, err := r.Next()
		if err == io.EOF {
			return res
		}
		if err != nil {
			var se *SyntaxError
			if !errors.Is(err, ErrEmpty) && !errors.As(err, &se) {
				t.Fatalf("error %v is neither ErrEmpty nor a SyntaxError", err)
			}
			res.Err = err.Error()
			return res
		}
		_, line, off := r.Pos()
		res.Lines = append(res.Lines, line)
		if off < 0 || off+int64(len(v)) > int64(len(in)) || !bytes.Equal(in[off:off+int64(len(v))], v) {
			t.Fatalf("value %q is not the input at byte %d", v, off)
		}
		res.Vals = append(res.Vals, string(v))
	}
}

// jsonValues splits body as encoding/json would: the elements of a
// non-empty array, or a stream of values. ok is false when encoding/json
// does not read it so.
func jsonValues(body []byte) (vals []string, ok bool) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false
	}
	if trimmed[0] == '[' {
		var raw []json.RawMessage
		if json.Unmarshal(body, &raw) != nil || len(raw) == 0 {
			return nil, false
		}
		for _, r := range raw {
			vals = append(vals, string(r))
		}
		return vals, true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var r json.RawMessage
		err := dec.Decode(&r)
		if err == io.EOF {
			return vals, len(vals) > 0
		}
		if err != nil {
			return nil, false
		}
		// encoding/json splits "00" into 0 and 0; the reader takes a
		// number or literal up to a delimiter ("00", which the event
		// parser then refuses as not JSON).
		off := dec.InputOffset()
		if first := r[0]; first != '{' && first != '[' && first != '"' && off < int64(len(body)) &&
			!bytes.ContainsRune([]byte(" \t\r\n{[\""), rune(body[off])) {
			return nil, false
		}
		vals = append(vals, string(r))
	}
}
