package klaviyo

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Helpers for reading decoded JSON values (map[string]any from spec.Event).

// getCI returns m[key], falling back to a case-insensitive match.
func getCI(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// present reports whether m has key with a non-null value.
func present(m map[string]any, key string) (any, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

// firstPresent returns the first of keys with a non-null value in m.
func firstPresent(m map[string]any, keys ...string) (string, any, bool) {
	for _, k := range keys {
		if v, ok := present(m, k); ok {
			return k, v, true
		}
	}
	return "", nil, false
}

// toNumber reads a JSON number or a numeric string.
func toNumber(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, !math.IsNaN(t) && !math.IsInf(t, 0)
	case json.Number:
		f, err := t.Float64()
		return f, err == nil
	case int:
		return float64(t), true
	case int64:
		return float64(t), true
	case string:
		s := strings.TrimSpace(t)
		if s == "" {
			return 0, false
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false
		}
		return f, true
	}
	return 0, false
}

// scalarString reads a string, or a number rendered without exponent (ids
// and zip codes often arrive as numbers).
func scalarString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return "", false
		}
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case json.Number:
		return t.String(), true
	case int:
		return strconv.Itoa(t), true
	case int64:
		return strconv.FormatInt(t, 10), true
	}
	return "", false
}

// jsonType names a decoded JSON value's type for error messages.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64, json.Number, int, int64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// quoteShort quotes a string for a message, cut to a readable length.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		r := []rune(s)
		if len(r) > max {
			s = string(r[:max]) + "…"
		}
	}
	return strconv.Quote(s)
}

// klaviyoTime renders an event time as ISO 8601 UTC with milliseconds.
func klaviyoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return t.Format("2006-01-02T15:04:05.000Z07:00")
	}
	// The layout by hand: time.Format's general machinery cost more than
	// the digits (every event has a time). FuzzKlaviyoTime holds it to
	// Format.
	h, mi, s := t.Clock()
	b := []byte("0000-00-00T00:00:00.000Z")
	put := func(at, n, width int) {
		for i := at + width - 1; i >= at; i-- {
			b[i] = byte('0' + n%10)
			n /= 10
		}
	}
	put(0, y, 4)
	put(5, int(mo), 2)
	put(8, d, 2)
	put(11, h, 2)
	put(14, mi, 2)
	put(17, s, 2)
	put(20, t.Nanosecond()/1e6, 3)
	return string(b)
}

// flatten turns nested objects into dotted keys: {"a":{"b":1}} →
// {"a.b":1}. Arrays are kept as values (Klaviyo stores lists).
func flatten(m map[string]any) map[string]any {
	nested := false
	for _, v := range m {
		if _, ok := v.(map[string]any); ok {
			nested = true
			break
		}
	}
	if !nested {
		return m
	}
	out := make(map[string]any, len(m))
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(prefix+k+".", sub)
				continue
			}
			out[prefix+k] = v
		}
	}
	walk("", m)
	return out
}

// isEmail checks an address as Klaviyo validates it at delivery: one @
// with a local part, no white space or list separators, and a domain of
// two or more non-empty dot-separated labels whose last (the TLD) is two
// or more letters (or an xn-- IDN label). Anything looser is accepted
// here and then fails the whole bulk item at Klaviyo.
func isEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.LastIndexByte(s, '@') != at ||
		strings.ContainsAny(s, " \t\r\n,;<>") {
		return false
	}
	domain := s[at+1:]
	dot := strings.LastIndexByte(domain, '.')
	if dot < 0 || strings.HasPrefix(domain, ".") || strings.Contains(domain, "..") {
		return false // no dot, or an empty label (a trailing dot leaves an empty TLD)
	}
	return validTLD(domain[dot+1:])
}

func validTLD(tld string) bool {
	if strings.HasPrefix(strings.ToLower(tld), "xn--") && len(tld) > 4 {
		return true
	}
	n := 0
	for _, r := range tld {
		if !unicode.IsLetter(r) {
			return false
		}
		n++
	}
	return n >= 2
}
