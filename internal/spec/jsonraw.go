package spec

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Helpers over raw JSON values that encoding/json has already validated
// (spans of a body that passed json.Valid, cut out by jsonsplit.go), so they
// can look at the first byte to tell the JSON kind and take fast paths
// without re-scanning.

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// kind names the JSON kind of raw for error messages ("a string", "null").
func kind(raw []byte) string {
	i := skipSpace(raw, 0)
	if i == len(raw) {
		return "empty"
	}
	switch raw[i] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// absent reports whether a field is missing or JSON null: both mean "not
// given", as in Segment's own handling of null fields.
func absent(raw []byte) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// decodeString returns raw as a Go string if it is a JSON string. The fast
// path copies strings without escapes or invalid UTF-8 directly; others go
// through encoding/json (which also replaces invalid UTF-8 with U+FFFD).
func decodeString(raw []byte) (string, bool) { return (*text)(nil).decodeString(raw) }

// text hands out the strings of one event as slices of one copy of its
// bytes (src), instead of one allocation per string: ParseElement's
// events, whose strings (ids, names, timestamps and every plain string
// of the objects) were a fifth of `relay transform`'s allocations. The
// strings keep that copy alive: no more than the event's own bytes. A nil
// *text copies each string.
type text struct {
	src []byte
	s   string // src's copy, made on first use
}

// of returns b's bytes as a string: a slice of t's copy when b lies in
// src (b is a subslice of it, as every value Parse splits out is).
func (t *text) of(b []byte) string {
	if t == nil || len(b) == 0 {
		return string(b)
	}
	// A subslice b of src has lost from its capacity exactly what it
	// starts after.
	off := cap(t.src) - cap(b)
	if off < 0 || off+len(b) > len(t.src) || &t.src[off] != &b[0] {
		return string(b)
	}
	if t.s == "" {
		t.s = string(t.src)
	}
	return t.s[off : off+len(b)]
}

// decodeString is the package's decodeString with its strings from t.
func (t *text) decodeString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return t.of(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// decodeID reads an identifier that may be a JSON string or number, its
// strings from t. Integers keep their literal digits (no float64 rounding:
// 2^53+1 stays exact); other numbers become their shortest decimal form
// ("1e3" → "1000").
func (t *text) decodeID(raw []byte) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	c := raw[0]
	if c == '"' {
		return t.decodeString(raw)
	}
	if c != '-' && (c < '0' || c > '9') {
		return "", false
	}
	integer := true
	for i, d := range raw {
		if (d < '0' || d > '9') && !(i == 0 && d == '-') {
			integer = false
			break
		}
	}
	if integer {
		return string(raw), true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil { // out of float64 range: the literal is the best we have
		return string(raw), true
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}

// decodeObject decodes a JSON object; an empty object gives nil, so an
// Event has one representation of "none" and survives a JSON round trip.
func decodeObject(raw []byte) (map[string]any, bool) {
	return decodeObjectWith(raw, nil, nil, nil)
}

// decodeObjectWith is decodeObject taking its strings from t, its maps
// from ms and, when keep is not nil, keeping only the members whose key is
// in keep (Options.ContextKeys).
func decodeObjectWith(raw []byte, t *text, ms *Maps, keep []string) (map[string]any, bool) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	d := valueDecoder{b: raw, s: t.of(raw), maps: ms}
	var v any
	var ok bool
	if keep == nil {
		v, ok = d.value()
	} else {
		d.i++
		v, ok = d.objectOnly(keep)
	}
	if !ok {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	if len(m) == 0 {
		return nil, true
	}
	return m, true
}

// cloneValue deep-copies a decoded JSON value so that envelope values
// merged into several events share no mutable maps or slices.
func cloneValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return cloneMap(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = cloneValue(e)
		}
		return out
	default:
		return v
	}
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

// truncate shortens s for quoting in an error message.
func truncate(s string, max int) string {
	n := 0
	for i := range s {
		if n == max {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
