package klaviyo

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/relaycdp/relay/internal/jsonx"
)

// A small append-style JSON encoder for the values a decoded event holds
// (nil, bool, float64, json.Number, string, []any, map[string]any). Props
// (custom properties) are written with it rather than by encoding/json's
// reflection over map[string]any, which sorts reflect.Values and allocates
// per key. Output is valid JSON with object keys sorted, like
// encoding/json's.

// appendFloat formats f as encoding/json does; NaN and ±Inf (which no
// decoded JSON holds) become null.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	// Whole numbers (counts, ids, prices in cents) are written as the
	// integers they are: the shortest-form search costs several times
	// more. (Not 0, which may be -0; below 1e15, where every float64
	// integer converts exactly.)
	if f != 0 && f > -1e15 && f < 1e15 && f == math.Trunc(f) {
		return strconv.AppendInt(b, int64(f), 10)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendValue appends any decoded JSON value; other types go through
// encoding/json.
func appendValue(b []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return jsonx.AppendString(b, t), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case float64:
		return appendFloat(b, t), nil
	case int:
		return strconv.AppendInt(b, int64(t), 10), nil
	case int64:
		return strconv.AppendInt(b, t, 10), nil
	case json.Number:
		if _, err := strconv.ParseFloat(string(t), 64); err != nil || t == "" {
			return jsonx.AppendString(b, string(t)), nil
		}
		return append(b, t...), nil
	case map[string]any:
		return appendMap(b, t)
	case []any:
		b = append(b, '[')
		for i, e := range t {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case []string:
		b = append(b, '[')
		for i, e := range t {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonx.AppendString(b, e)
		}
		return append(b, ']'), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, raw...), nil
}

// appendMap appends an object with sorted keys; nil is {}. The members
// are gathered with their values and sorted together, so that no value is
// looked up again by its key (hashing every key twice cost a few percent
// of `relay transform`).
func appendMap(b []byte, m map[string]any) ([]byte, error) {
	var buf [16]member
	ms := buf[:0]
	for k, v := range m {
		ms = append(ms, member{keyPrefix(k), k, v})
	}
	sortMembers(ms)
	b = append(b, '{')
	for i := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonx.AppendString(b, ms[i].k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, ms[i].v); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

type member struct {
	pre uint64 // keyPrefix(k)
	k   string
	v   any
}

// keyPrefix is k's first 8 bytes as a big-endian number, zero-padded:
// a smaller prefix means a smaller key, so most comparisons while sorting
// are of two numbers (comparing the strings was most of the sort).
func keyPrefix(k string) uint64 {
	var p uint64
	for i := range 8 {
		p <<= 8
		if i < len(k) {
			p |= uint64(k[i])
		}
	}
	return p
}

func (a *member) less(b *member) bool {
	return a.pre < b.pre || a.pre == b.pre && a.k < b.k
}

// sortMembers sorts by key, as encoding/json sorts a map's keys: by
// insertion for the dozen or so members events' objects have.
func sortMembers(ms []member) {
	if len(ms) > 24 {
		slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.k, b.k) })
		return
	}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].less(&ms[j-1]); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}
