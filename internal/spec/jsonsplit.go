package spec

import "github.com/relaycdp/relay/internal/jsonx"

// A zero-copy splitter for JSON that has already been validated (Parse
// calls validJSON, json.Valid's equal, on the whole body first). It finds
// where each member of an object or element of an array starts and ends,
// so Parse can look at an event's top-level fields, measure each event and
// hash it, without encoding/json re-scanning and copying every value into
// a json.RawMessage at each level. Values are still decoded by encoding/json.
// On input that is not valid JSON it stops early (ok=false) but never
// reads out of bounds; a differential fuzz test pins it to encoding/json.

// skipString returns the index just past the string starting at b[i]=='"'.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		if j += jsonx.PlainPrefix(b[j:]); j >= len(b) {
			break
		}
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default: // number, true, false, null
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}

// objIter walks the members of an object: b must start with '{'.
type objIter struct {
	b    []byte
	i    int
	done bool
}

func newObjIter(b []byte) objIter { return objIter{b: b, i: 1} }

// next returns the next member's raw key (quotes included) and value.
func (it *objIter) next() (key, val []byte, ok bool) {
	if it.done {
		return nil, nil, false
	}
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		it.done = true // '}' or invalid input
		return nil, nil, false
	}
	ke := skipString(b, i)
	key = b[i:ke]
	i = skipSpace(b, ke)
	if i >= len(b) || b[i] != ':' {
		it.done = true
		return nil, nil, false
	}
	vs := skipSpace(b, i+1)
	ve := skipValue(b, vs)
	if vs >= ve {
		it.done = true
		return nil, nil, false
	}
	it.i = ve
	return key, b[vs:ve], true
}

// arrIter walks the elements of an array: b must start with '['.
type arrIter struct {
	b    []byte
	i    int
	done bool
}

func newArrIter(b []byte) arrIter { return arrIter{b: b, i: 1} }

func (it *arrIter) next() (val []byte, ok bool) {
	if it.done {
		return nil, false
	}
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] == ']' {
		it.done = true
		return nil, false
	}
	e := skipValue(b, i)
	if e <= i {
		it.done = true
		return nil, false
	}
	it.i = e
	return b[i:e], true
}

// keyString unquotes a raw member key. Keys without escapes are the
// common case and are compared without allocating by the callers' switch
// on string(inner); this is for the rest.
func keyString(key []byte) string {
	if s, ok := decodeString(key); ok {
		return s
	}
	return ""
}

// rawMembers splits an object into a map, last duplicate winning, exactly
// as json.Unmarshal into map[string]json.RawMessage would (but sharing
// b's bytes).
func rawMembers(b []byte) map[string][]byte {
	m := make(map[string][]byte)
	it := newObjIter(b)
	for {
		k, v, ok := it.next()
		if !ok {
			return m
		}
		m[keyString(k)] = v
	}
}
