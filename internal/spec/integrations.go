package spec

import (
	"slices"
	"strings"
)

// Destination reports whether the event's integrations let it go to the
// destination called name, and the options object given for it, if any:
//
//   - integrations[name] === false → skipped;
//   - integrations[name] is an object → enabled, with that object as opts
//     (e.g. integrations.Klaviyo.listId);
//   - integrations[name] === true → enabled, no options;
//   - name absent (or any other value) → enabled unless integrations.All === false.
//
// Segment treats integration keys as case-sensitive; we match name (and
// "All") case-insensitively, so "Klaviyo", "klaviyo" and "KLAVIYO" all work,
// because a user's wrong casing should not silently send an event they
// meant to hold back. An exact-case key wins; among several other casings a
// false wins, then an object (the first by key order), then true.
func (e *Event) Destination(name string) (enabled bool, opts map[string]any) {
	if v, ok := lookupFold(e.Integrations, name); ok {
		switch t := v.(type) {
		case bool:
			return t, nil
		case map[string]any:
			return true, t
		}
	}
	if v, ok := lookupFold(e.Integrations, "All"); ok {
		if b, isBool := v.(bool); isBool && !b {
			return false, nil
		}
	}
	return true, nil
}

// lookupFold finds key in m: the exact key if present, else a bool or
// object value under any casing of it, chosen deterministically.
func lookupFold(m map[string]any, key string) (any, bool) {
	if len(m) == 0 {
		return nil, false
	}
	if v, ok := m[key]; ok {
		if decisive(v) {
			return v, true
		}
	}
	var keys []string
	for k, v := range m {
		if k != key && strings.EqualFold(k, key) && decisive(v) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, false
	}
	slices.Sort(keys)
	best := m[keys[0]]
	for _, k := range keys {
		switch v := m[k].(type) {
		case bool:
			if !v {
				return v, true
			}
		case map[string]any:
			if _, isObj := best.(map[string]any); !isObj {
				best = v
			}
		}
	}
	return best, true
}

// decisive reports whether an integrations value says anything: only
// booleans and objects do; null, strings and numbers are ignored.
func decisive(v any) bool {
	switch v.(type) {
	case bool, map[string]any:
		return true
	}
	return false
}
