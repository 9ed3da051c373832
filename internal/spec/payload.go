package spec

import (
	"bytes"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/jsonx"
)

// Options.Encode: the queue payload written from the body's bytes. The
// gateway stores every accepted event and never reads its traits or
// properties; delivery decodes the payload later. Decoding the four objects
// into maps at ingest only to encode them again cost more CPU than
// everything else the gateway does per event, so in this mode they are
// checked and copied instead. What decodes from the payload must be exactly
// the Event the default mode returns; FuzzEncode holds the two together.

// checkObjects is readObjects without decoding: the four objects must be
// JSON objects when present, and so must the event's own context.traits.
func checkObjects(f *fields) *Error {
	for _, k := range [...]field{fTraits, fProperties, fContext, fIntegrations, fDestinations} {
		if v := f[k]; !absent(v) && (v[0] != '{' || mayOverflow(v) && !decodes(v)) {
			return objectErr(k, v)
		}
	}
	if ctx := f[fContext]; !absent(ctx) {
		if t, ok := member(ctx, []byte(`"traits"`)); ok && !absent(t) && t[0] != '{' {
			return fieldErr(CodeInvalidType, "context.traits", "context.traits is %s, want an object", kind(t))
		}
	}
	return nil
}

// encode appends ev's payload to p.buf and returns it with ev's key. ev
// holds the scalars fill read; the objects come from f and env, merged
// as mergeEnvelope merges them.
func (p *parser) encode(f *fields, env *envelope, ev *Event) ([]byte, string) {
	start := len(p.buf)
	b := append(p.buf, `{"type":`...)
	b = jsonx.AppendString(b, ev.Type)
	b = append(b, `,"messageId":`...)
	b = jsonx.AppendString(b, ev.MessageID)
	for _, s := range [...]struct{ key, val string }{
		{`,"userId":`, ev.UserID}, {`,"anonymousId":`, ev.AnonymousID}, {`,"event":`, ev.Event},
		{`,"name":`, ev.Name}, {`,"category":`, ev.Category}, {`,"groupId":`, ev.GroupID},
		{`,"previousId":`, ev.PreviousID},
	} {
		if s.val != "" {
			b = append(b, s.key...)
			b = jsonx.AppendString(b, s.val)
		}
	}
	b = appendObject(b, `,"traits":`, f[fTraits], nil)
	b = appendObject(b, `,"properties":`, f[fProperties], nil)
	b = appendObject(b, `,"context":`, f[fContext], env.rawContext)
	b = appendObject(b, `,"integrations":`, f[fIntegrations], env.rawIntegrations)
	b = appendObject(b, `,"destinations":`, f[fDestinations], nil)
	b = appendBundled(b, ev.Bundled)
	b = appendTime(b, `,"timestamp":`, ev.Timestamp)
	if !ev.OriginalTimestamp.IsZero() {
		b = appendTime(b, `,"originalTimestamp":`, ev.OriginalTimestamp)
	}
	if !ev.SentAt.IsZero() {
		b = appendTime(b, `,"sentAt":`, ev.SentAt)
	}
	b = appendTime(b, `,"receivedAt":`, ev.ReceivedAt)
	b = append(b, '}')
	p.buf = b
	return b[start:len(b):len(b)], p.key(f, env, ev)
}

// appendObject appends key and the object own with under's members merged
// beneath it (a member own sets to anything but null wins), or nothing
// when the result is empty: as mergeUnder and decodeObject leave the maps.
// Both are validated JSON objects or absent.
func appendObject(b []byte, key string, own, under []byte) []byte {
	if absent(own) || emptyObject(own) {
		own = nil
	}
	if absent(under) || emptyObject(under) {
		under = nil
	}
	if own == nil && under == nil {
		return b
	}
	b = append(b, key...)
	if under == nil {
		return append(b, own...)
	}
	if own == nil {
		return append(b, under...)
	}
	// own's members, then under's that own lacks or sets to null: a
	// decoder keeps the last of repeated keys, so under's value then wins.
	b = append(b, own[:len(own)-1]...) // own is a whole value: it ends with '}'
	it := newObjIter(under)
	for {
		k, v, ok := it.next()
		if !ok {
			return append(b, '}')
		}
		if cur, set := member(own, k); set && !absent(cur) {
			continue
		}
		b = append(b, ',')
		b = append(b, k...)
		b = append(b, ':')
		b = append(b, v...)
	}
}

func appendTime(b []byte, key string, t time.Time) []byte {
	b = append(b, key...)
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// emptyObject reports whether the object raw has no members.
func emptyObject(raw []byte) bool {
	i := skipSpace(raw, 1)
	return i < len(raw) && raw[i] == '}'
}

// member returns the value of the object obj's last member whose key
// equals key (both raw, quotes included), as a decoder would keep it.
func member(obj, key []byte) (val []byte, ok bool) {
	if len(obj) == 0 || obj[0] != '{' {
		return nil, false
	}
	it := newObjIter(obj)
	for {
		k, v, more := it.next()
		if !more {
			return val, ok
		}
		if sameKey(k, key) {
			val, ok = v, true
		}
	}
}

// sameKey compares two raw keys by what they decode to.
func sameKey(a, b []byte) bool {
	if bytes.IndexByte(a, '\\') < 0 && bytes.IndexByte(b, '\\') < 0 {
		return bytes.Equal(a, b)
	}
	return keyString(a) == keyString(b)
}

// key is Event.Key for an event whose objects were not decoded.
func (p *parser) key(f *fields, env *envelope, ev *Event) string {
	if ev.UserID != "" {
		return ev.UserID
	}
	if ev.AnonymousID != "" {
		return ev.AnonymousID
	}
	if v, ok := p.userTrait(f, env, ev.Type, []byte(`"email"`)); ok {
		if s, ok := decodeString(v); ok {
			if s = strings.TrimSpace(s); s != "" {
				return strings.ToLower(s)
			}
		}
	}
	if v, ok := p.userTrait(f, env, ev.Type, []byte(`"phone"`)); ok {
		if s, ok := decodeString(v); ok {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// userTrait is Event.userTrait over the raw objects: an identify's own
// traits first, then context.traits of the merged context.
func (p *parser) userTrait(f *fields, env *envelope, typ string, name []byte) ([]byte, bool) {
	if typ == TypeIdentify {
		if v, ok := member(f[fTraits], name); ok {
			return v, true
		}
	}
	traits, ok := member(f[fContext], []byte(`"traits"`))
	if !ok || absent(traits) {
		traits, _ = member(env.rawContext, []byte(`"traits"`))
	}
	return member(traits, name)
}

// mayOverflow reports whether the object raw (valid JSON) might hold a
// number float64 cannot represent (encoding/json fails to decode those into
// any): outside strings, an exponent of three digits or more, or a run of
// 300 digits. Strings are skipped: ids and hashes inside them ("…e123…")
// made a plain byte scan send most events to the slow check. decodes
// settles the rare yes.
func mayOverflow(raw []byte) bool {
	run := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '"':
			i = skipString(raw, i) - 1
		case isDigit(c):
			if run++; run >= 300 {
				return true
			}
			continue
		case c == 'e' || c == 'E':
			j := i + 1
			if j < len(raw) && (raw[j] == '+' || raw[j] == '-') {
				j++
			}
			if j+2 < len(raw) && isDigit(raw[j]) && isDigit(raw[j+1]) && isDigit(raw[j+2]) {
				return true
			}
		}
		run = 0
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// decodes reports whether encoding/json can decode the object raw.
func decodes(raw []byte) bool {
	_, ok := decodeObject(raw)
	return ok
}
