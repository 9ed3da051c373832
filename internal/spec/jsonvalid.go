package spec

import "github.com/relaycdp/relay/internal/jsonx"

// validJSON reports whether b is exactly one JSON value with optional
// whitespace around it: json.Valid's answer (the same grammar, no UTF-8
// check inside strings, the same limit of 10,000 nested arrays and
// objects), which FuzzValidJSON holds it to. Why not json.Valid: its
// scanner calls a state function per byte, and on ingest bodies it was 15%
// of relay's CPU at half load; this runs several times faster
// (BenchmarkValidJSON). Parse calls it once per body; everything else in
// this package relies on the body having passed it.
func validJSON(b []byte) bool {
	v := validator{b: b}
	i, ok := v.value(v.space(0), 0)
	return ok && v.space(i) == len(b)
}

// maxNesting is encoding/json's limit on nested arrays and objects.
const maxNesting = 10000

type validator struct{ b []byte }

func (v validator) space(i int) int {
	for i < len(v.b) {
		switch v.b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value checks the value starting at b[i] (depth containers deep) and
// returns the index just past it.
func (v validator) value(i, depth int) (int, bool) {
	if i >= len(v.b) {
		return i, false
	}
	switch c := v.b[i]; {
	case c == '"':
		return v.str(i)
	case c == '{':
		return v.object(i, depth+1)
	case c == '[':
		return v.array(i, depth+1)
	case c == '-' || c >= '0' && c <= '9':
		return v.number(i)
	case c == 't':
		return v.literal(i, "true")
	case c == 'f':
		return v.literal(i, "false")
	case c == 'n':
		return v.literal(i, "null")
	}
	return i, false
}

func (v validator) literal(i int, lit string) (int, bool) {
	end := i + len(lit)
	return end, end <= len(v.b) && string(v.b[i:end]) == lit
}

// str checks the string starting at b[i]=='"'.
func (v validator) str(i int) (int, bool) {
	b := v.b
	for i++; i < len(b); i++ {
		i += jsonx.PlainPrefix(b[i:])
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		default: // backslash
			n, ok := escapeLen(b[i+1:])
			if !ok {
				return i, false
			}
			i += n
		}
	}
	return i, false
}

// escapeLen is the length of the escape whose backslash precedes rest.
func escapeLen(rest []byte) (int, bool) {
	if len(rest) == 0 {
		return 0, false
	}
	switch rest[0] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 1, true
	case 'u':
		if len(rest) < 5 {
			return 0, false
		}
		for _, h := range rest[1:5] {
			if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
				return 0, false
			}
		}
		return 5, true
	}
	return 0, false
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i].
func (v validator) number(i int) (int, bool) {
	b := v.b
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// object checks the object starting at b[i]=='{'.
func (v validator) object(i, depth int) (int, bool) {
	i, empty, ok := v.open(i, depth, '}')
	if !ok || empty {
		return i, ok
	}
	for {
		if i >= len(v.b) || v.b[i] != '"' {
			return i, false
		}
		if i, ok = v.str(i); !ok {
			return i, false
		}
		if i = v.space(i); i >= len(v.b) || v.b[i] != ':' {
			return i, false
		}
		if i, ok = v.value(v.space(i+1), depth); !ok {
			return i, false
		}
		var closed bool
		if i, closed, ok = v.afterItem(i, '}'); !ok || closed {
			return i, ok
		}
	}
}

// objectFields is object that also sets f to the values of the object's
// known keys, as splitFields of the object would: ParseElement validates
// and splits an event in one walk instead of two.
func (v validator) objectFields(i, depth int, f *fields) (int, bool) {
	i, empty, ok := v.open(i, depth, '}')
	if !ok || empty {
		return i, ok
	}
	for {
		if i >= len(v.b) || v.b[i] != '"' {
			return i, false
		}
		ks := i
		if i, ok = v.str(i); !ok {
			return i, false
		}
		k := fieldOf(v.b[ks:i])
		if i = v.space(i); i >= len(v.b) || v.b[i] != ':' {
			return i, false
		}
		vs := v.space(i + 1)
		if i, ok = v.value(vs, depth); !ok {
			return i, false
		}
		if k != fUnknown {
			f[k] = v.b[vs:i]
		}
		var closed bool
		if i, closed, ok = v.afterItem(i, '}'); !ok || closed {
			return i, ok
		}
	}
}

// array checks the array starting at b[i]=='['.
func (v validator) array(i, depth int) (int, bool) {
	i, empty, ok := v.open(i, depth, ']')
	if !ok || empty {
		return i, ok
	}
	for {
		var closed bool
		if i, ok = v.value(i, depth); !ok {
			return i, false
		}
		if i, closed, ok = v.afterItem(i, ']'); !ok || closed {
			return i, ok
		}
	}
}

// open reads past a container's opening byte at b[i] and the space after
// it; empty says the container closed at once.
func (v validator) open(i, depth int, closing byte) (next int, empty, ok bool) {
	if depth > maxNesting {
		return i, false, false
	}
	i = v.space(i + 1)
	if i < len(v.b) && v.b[i] == closing {
		return i + 1, true, true
	}
	return i, false, true
}

// afterItem reads what follows a member or element at b[i]: the
// container's closing byte (closed) or a comma and the space after it.
func (v validator) afterItem(i int, closing byte) (next int, closed, ok bool) {
	if i = v.space(i); i >= len(v.b) {
		return i, false, false
	}
	switch v.b[i] {
	case closing:
		return i + 1, true, true
	case ',':
		return v.space(i + 1), false, true
	}
	return i, false, false
}
