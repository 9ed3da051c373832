package spec

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/relaycdp/relay/internal/jsonx"
)

// decodeValid decodes a JSON value that validJSON accepted, to what
// json.Unmarshal into an `any` gives (map[string]any, []any, string,
// float64, bool, nil), and false where json.Unmarshal fails (a number out
// of float64's range). Why not json.Unmarshal: it re-validates the bytes
// and steps a state machine per byte; decoding the events' objects was a
// third of `relay transform`'s CPU (docs/BENCHMARKS.md). Strings with
// escapes or non-ASCII bytes that are not valid UTF-8 are left to
// encoding/json, so their unquoting is its own. FuzzDecodeValid holds it to
// json.Unmarshal. On bytes validJSON did not accept it returns false or a
// partial value; it never panics.
//
// The bytes are copied into one string first and every plain string (keys
// and values) is a slice of it: one allocation per value decoded instead
// of one per key and string (BenchmarkDecodeObject). The decoded strings
// keep that copy alive, which is no more than the strings' own bytes plus
// the value's punctuation and numbers.
func decodeValid(raw []byte) (any, bool) {
	d := valueDecoder{b: raw, s: string(raw)}
	return d.value()
}

type valueDecoder struct {
	b    []byte
	s    string // b's bytes, which plain strings are sliced from
	i    int
	maps *Maps // where objects' maps come from; nil: made new
}

func (d *valueDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next returns the byte after any whitespace (0 at the end) and moves past it.
func (d *valueDecoder) next() byte {
	d.space()
	if d.i >= len(d.b) {
		return 0
	}
	c := d.b[d.i]
	d.i++
	return c
}

func (d *valueDecoder) value() (any, bool) {
	d.space()
	if d.i >= len(d.b) {
		return nil, false
	}
	switch d.b[d.i] {
	case '{':
		d.i++
		return d.object()
	case '[':
		d.i++
		return d.array()
	case '"':
		return d.str()
	case 't':
		d.i += len("true")
		return true, true
	case 'f':
		d.i += len("false")
		return false, true
	case 'n':
		d.i += len("null")
		return nil, true
	}
	return d.number()
}

func (d *valueDecoder) object() (any, bool) {
	m := d.maps.get()
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, true
	}
	for {
		d.space()
		k, ok := d.str()
		if !ok || d.next() != ':' {
			return nil, false
		}
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		m[k] = v
		switch d.next() {
		case ',':
		case '}':
			return m, true
		default:
			return nil, false
		}
	}
}

// objectOnly is object keeping only the members whose key is in keep.
// The values of the others are skipped, not decoded, but still fail the
// object where decoding them would (a number out of float64's range), so
// that what is accepted does not depend on keep.
func (d *valueDecoder) objectOnly(keep []string) (any, bool) {
	m := d.maps.get()
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, true
	}
	for {
		d.space()
		k, ok := d.str()
		if !ok || d.next() != ':' {
			return nil, false
		}
		if slices.Contains(keep, k) {
			v, ok := d.value()
			if !ok {
				return nil, false
			}
			m[k] = v
		} else {
			d.space()
			end, suspect := skipSuspect(d.b, d.i)
			if v := d.b[d.i:end]; len(v) == 0 || suspect && !decodesValue(v) {
				return nil, false
			}
			d.i = end
		}
		switch d.next() {
		case ',':
		case '}':
			return m, true
		default:
			return nil, false
		}
	}
}

// skipSuspect is skipValue also telling, in the same walk, whether the
// value might hold a number json.Unmarshal cannot decode: mayOverflow's
// answer for the value's bytes.
func skipSuspect(b []byte, i int) (end int, suspect bool) {
	if i >= len(b) {
		return len(b), false
	}
	switch b[i] {
	case '"':
		return skipString(b, i), false
	case '{', '[':
	default:
		end = skipValue(b, i)
		return end, mayOverflow(b[i:end])
	}
	depth, run := 0, 0
	for j := i; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '"':
			j = skipString(b, j) - 1
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				return j + 1, suspect
			}
		case isDigit(c):
			if run++; run >= 300 {
				suspect = true
			}
			continue
		case c == 'e' || c == 'E':
			k := j + 1
			if k < len(b) && (b[k] == '+' || b[k] == '-') {
				k++
			}
			if k+2 < len(b) && isDigit(b[k]) && isDigit(b[k+1]) && isDigit(b[k+2]) {
				suspect = true
			}
		}
		run = 0
	}
	return len(b), suspect
}

// decodesValue reports whether encoding/json can decode the value raw.
func decodesValue(raw []byte) bool {
	_, ok := decodeValid(raw)
	return ok
}

func (d *valueDecoder) array() (any, bool) {
	a := []any{}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return a, true
	}
	for {
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		a = append(a, v)
		switch d.next() {
		case ',':
		case ']':
			return a, true
		default:
			return nil, false
		}
	}
}

// str decodes the string at b[i].
func (d *valueDecoder) str() (string, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	start, plain := d.i+1, true
	j := start + jsonx.PlainASCIIPrefix(d.b[start:])
	if j < len(d.b) && d.b[j] == '"' { // the common case: plain ASCII
		d.i = j + 1
		return d.s[start:j], true
	}
	for ; j < len(d.b); j++ {
		c := d.b[j]
		if c == '"' {
			break
		}
		if c == '\\' {
			plain = false
			j++ // the escaped byte cannot end the string
		} else if c >= utf8.RuneSelf {
			plain = false
		}
	}
	if j >= len(d.b) {
		return "", false
	}
	d.i = j + 1
	if plain || (utf8.Valid(d.b[start:j]) && !hasBackslash(d.b[start:j])) {
		return d.s[start:j], true
	}
	var s string
	if err := json.Unmarshal(d.b[start-1:j+1], &s); err != nil {
		return "", false
	}
	return s, true
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

func (d *valueDecoder) number() (any, bool) {
	start := d.i
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case '-', '+', '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			d.i++
			continue
		}
		break
	}
	if d.i == start {
		return nil, false
	}
	f, err := strconv.ParseFloat(d.s[start:d.i], 64)
	if err != nil {
		return nil, false
	}
	return f, true
}
