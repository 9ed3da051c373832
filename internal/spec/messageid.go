package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"slices"
)

// GeneratedMessageIDPrefix starts every messageId that Parse made up for an
// event that came without one.
const GeneratedMessageIDPrefix = "relay-"

// hasMessageID reports whether the event carries a messageId of its own
// (anything but absent, null or ""), valid or not.
func hasMessageID(v []byte) bool {
	return !absent(v) && string(v) != `""`
}

// volatileKey reports whether k may change between an SDK's first attempt
// and its retry of the same event (sentAt is re-stamped per attempt) or is
// not part of the call.
func volatileKey(k string) bool {
	switch k {
	case "messageId", "sentAt", "writeKey", "_metadata":
		return true
	}
	return false
}

// generatedMessageID names an event that has no messageId by its content:
// "relay-" + the first 32 hex digits of SHA-256 over the effective type and
// the event's top-level keys in sorted order with compacted values,
// leaving out sentAt, writeKey and _metadata.
//
// It is deterministic on purpose. messageId is the dedup key, and an SDK
// that retries a request after a timeout sends the same events again; a
// random id would turn every such retry into a duplicate in Klaviyo. It
// ignores the event's position in the batch, the order of its top-level
// keys, whitespace, and the keys a retry may change. The price: two genuinely separate calls that
// are identical in every other field (no messageId, no timestamp) are
// treated as one. Every SDK sets messageId and timestamp, so this only
// touches hand-written requests, which should set them too.
func generatedMessageID(obj []byte, typ string) string {
	m := rawMembers(obj)
	keys := make([]string, 0, len(m))
	for k := range m {
		if !volatileKey(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	h := sha256.New()
	var buf bytes.Buffer
	var n []byte
	put := func(b []byte) { // length-prefixed, so no two inputs collide
		n = binary.AppendUvarint(n[:0], uint64(len(b)))
		h.Write(n)
		h.Write(b)
	}
	put([]byte(typ))
	for _, k := range keys {
		buf.Reset()
		if err := json.Compact(&buf, m[k]); err != nil { // unreachable: validated
			buf.Write(m[k])
		}
		put([]byte(k))
		put(buf.Bytes())
	}
	var sum [sha256.Size]byte
	return GeneratedMessageIDPrefix + hex.EncodeToString(h.Sum(sum[:0])[:16])
}
