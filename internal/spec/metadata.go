package spec

import "github.com/relaycdp/relay/internal/jsonx"

// maxBundled bounds how many names of _metadata.bundled are kept: a real
// page bundles a handful of integrations, and the list must not let one
// event grow its stored payload without limit.
const maxBundled = 64

// readBundled returns the strings of _metadata.bundled (analytics-next
// names there every integration it loaded in the browser). Anything else
// (a missing or malformed _metadata, non-string entries) reads as nothing:
// _metadata is the SDK's bookkeeping, never a reason to reject an event.
func readBundled(meta []byte) []string {
	if len(meta) == 0 { // most events: no _metadata (and no key to allocate)
		return nil
	}
	raw, ok := member(meta, []byte(`"bundled"`))
	if !ok || len(raw) == 0 || raw[0] != '[' {
		return nil
	}
	var names []string
	it := newArrIter(raw)
	for len(names) < maxBundled {
		v, more := it.next()
		if !more {
			break
		}
		if s, ok := decodeString(v); ok && s != "" {
			names = append(names, s)
		}
	}
	return names
}

// appendBundled appends ev.Bundled as the payload's "bundled" member.
func appendBundled(b []byte, names []string) []byte {
	if len(names) == 0 {
		return b
	}
	b = append(b, `,"bundled":[`...)
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonx.AppendString(b, n)
	}
	return append(b, ']')
}
