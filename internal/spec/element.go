package spec

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// parser carries the per-request Options through one Parse call.
type parser struct {
	opts Options
	recv time.Time // opts.ReceivedAt in UTC; zero when unknown
	buf  []byte    // Options.Encode: the payloads, back to back
	// text, when set, is where the strings of the event come from.
	text *text
}

// envelope is what a batch envelope lends each of its elements. A bad
// envelope context or integrations value rejects every element (with a
// per-event error) rather than the whole body: a 400 would make
// analytics-go v3 retry the same body ten times.
type envelope struct {
	context         map[string]any
	integrations    map[string]any
	contextErr      *Error
	integrationsErr *Error
	// The envelope's objects as sent, for Options.Encode.
	rawContext      []byte
	rawIntegrations []byte
	sentAt          time.Time
	hasSentAt       bool
	writeKey        string
}

func (p *parser) readEnvelope(top *fields) envelope {
	var env envelope
	if raw := top[fContext]; !absent(raw) {
		m, ok := decodeObjectWith(raw, p.text, p.opts.Maps, p.opts.ContextKeys)
		if !ok {
			env.contextErr = &Error{Code: CodeInvalidType, Field: "context",
				Message: "the batch's context is " + kind(raw) + ", want an object"}
		}
		env.context, env.rawContext = m, raw
	}
	if raw := top[fIntegrations]; !absent(raw) {
		m, ok := decodeObjectWith(raw, p.text, p.opts.Maps, nil)
		if !ok {
			env.integrationsErr = &Error{Code: CodeInvalidType, Field: "integrations",
				Message: "the batch's integrations is " + kind(raw) + ", want an object"}
		}
		env.integrations, env.rawIntegrations = m, raw
	}
	env.sentAt, env.hasSentAt = parseTime(top[fSentAt])
	env.writeKey, _ = decodeString(top[fWriteKey])
	return env
}

// element parses one member of an array or batch.
func (p *parser) element(raw []byte, env *envelope, writeKey *string) Item {
	if len(raw) == 0 || raw[0] != '{' {
		return Item{Err: &Error{Code: CodeInvalidType, Message: "event is " + kind(raw) + ", want an object"}}
	}
	f := splitFields(raw)
	return p.object(raw, &f, env, writeKey)
}

// object normalises one event whose known top-level keys are split out
// in f. raw is the event's own bytes: its size is checked against
// MaxEventBytes and, when it has no messageId, its content names it.
func (p *parser) object(raw []byte, f *fields, env *envelope, writeKey *string) Item {
	var it Item
	if *writeKey == "" {
		if s, ok := p.text.decodeString(f[fWriteKey]); ok {
			*writeKey = s
		}
	}
	it.Err = p.fill(raw, f, env, &it.Event)
	if it.Event.MessageID == "" && !hasMessageID(f[fMessageID]) {
		it.Event.MessageID = generatedMessageID(raw, it.Event.Type)
	}
	if p.opts.Encode && it.Err == nil {
		it.Payload, it.Key = p.encode(f, env, &it.Event)
	}
	return it
}

// fill validates and normalises f into ev, stopping at the first problem.
// Whatever was read before the problem stays in ev.
func (p *parser) fill(raw []byte, f *fields, env *envelope, ev *Event) *Error {
	// messageId first, so that every rejection below still carries it.
	if v := f[fMessageID]; !absent(v) {
		s, ok := p.text.decodeString(v)
		if !ok {
			return fieldErr(CodeInvalidType, "messageId", "messageId is %s, want a string", kind(v))
		}
		ev.MessageID = s
	}
	if limit := p.opts.MaxEventBytes; limit > 0 && len(raw) > limit {
		return &Error{Code: CodeTooLarge,
			Message: fmt.Sprintf("event is %d bytes, over the %d-byte limit", len(raw), limit)}
	}
	if n := utf8.RuneCountInString(ev.MessageID); n > MaxMessageIDLength {
		return fieldErr(CodeTooLong, "messageId", "messageId is %d characters, over the %d-character limit", n, MaxMessageIDLength)
	}
	if err := p.readType(f[fType], ev); err != nil {
		return err
	}
	if err := p.readStrings(f, ev); err != nil {
		return err
	}
	ev.Bundled = readBundled(f[fMetadata])
	if p.opts.Encode {
		if err := checkObjects(f); err != nil {
			return err
		}
		if err := envelopeErr(env); err != nil {
			return err
		}
	} else {
		if err := p.readObjects(f, ev); err != nil {
			return err
		}
		if err := mergeEnvelope(env, ev); err != nil {
			return err
		}
	}
	if ev.Type == TypeTrack && strings.TrimSpace(ev.Event) == "" {
		if !absent(f[fEvent]) {
			return fieldErr(CodeMissingField, "event", "event is empty; a track call needs an event name")
		}
		return fieldErr(CodeMissingField, "event", "event is missing; a track call needs an event name")
	}
	p.times(f, env, ev)
	return nil
}

func fieldErr(code, path, format string, args ...any) *Error {
	return &Error{Code: code, Field: path, Message: fmt.Sprintf(format, args...)}
}

// readType sets ev.Type from the event's "type", else Options.DefaultType.
// Type names are matched case-insensitively and stored in lower case.
func (p *parser) readType(raw []byte, ev *Event) *Error {
	if len(raw) > 2 && raw[0] == '"' { // common case without allocating
		if t := typeConst(raw[1 : len(raw)-1]); t != "" {
			ev.Type = t
			return nil
		}
	}
	var s string
	if !absent(raw) {
		var ok bool
		if s, ok = decodeString(raw); !ok {
			return fieldErr(CodeInvalidType, "type", "type is %s, want a string", kind(raw))
		}
	}
	if s == "" {
		s = p.opts.DefaultType
	}
	if s == "" {
		return fieldErr(CodeMissingField, "type",
			"type is missing; every event in a batch must name its call (identify, track, page, screen, group or alias)")
	}
	switch t := strings.ToLower(s); t {
	case TypeIdentify, TypeTrack, TypePage, TypeScreen, TypeGroup, TypeAlias:
		ev.Type = t
		return nil
	}
	return fieldErr(CodeInvalidType, "type",
		"type %q is not one of identify, track, page, screen, group, alias", truncate(s, 40))
}

// typeConst returns the Type constant spelled exactly by b, or "".
func typeConst(b []byte) string {
	switch string(b) {
	case TypeIdentify:
		return TypeIdentify
	case TypeTrack:
		return TypeTrack
	case TypePage:
		return TypePage
	case TypeScreen:
		return TypeScreen
	case TypeGroup:
		return TypeGroup
	case TypeAlias:
		return TypeAlias
	}
	return ""
}

// readStrings reads the identifiers and names. userId and anonymousId (and,
// by the same reasoning, groupId and previousId) may be JSON numbers, as
// some back ends send numeric ids; they become decimal strings. A missing
// userId and anonymousId is not an error here: the mapping decides, since an
// email or phone in the traits may identify the person.
func (p *parser) readStrings(f *fields, ev *Event) *Error {
	ids := [...]struct {
		key field
		dst *string
	}{
		{fUserID, &ev.UserID},
		{fAnonymousID, &ev.AnonymousID},
		{fGroupID, &ev.GroupID},
		{fPreviousID, &ev.PreviousID},
	}
	for _, id := range ids {
		v := f[id.key]
		if absent(v) {
			continue
		}
		s, ok := p.text.decodeID(v)
		if !ok {
			name := fieldName(id.key)
			return fieldErr(CodeInvalidType, name, "%s is %s, want a string or a number", name, kind(v))
		}
		*id.dst = s
	}
	names := [...]struct {
		key field
		dst *string
	}{
		{fEvent, &ev.Event},
		{fName, &ev.Name},
		{fCategory, &ev.Category},
	}
	for _, n := range names {
		v := f[n.key]
		if absent(v) {
			continue
		}
		s, ok := p.text.decodeString(v)
		if !ok {
			name := fieldName(n.key)
			return fieldErr(CodeInvalidType, name, "%s is %s, want a string", name, kind(v))
		}
		*n.dst = s
	}
	return nil
}

// readObjects decodes traits, properties, context and integrations, which
// must be JSON objects when present.
func (p *parser) readObjects(f *fields, ev *Event) *Error {
	objs := [...]struct {
		key field
		dst *map[string]any
	}{
		{fTraits, &ev.Traits},
		{fProperties, &ev.Properties},
		{fContext, &ev.Context},
		{fIntegrations, &ev.Integrations},
		{fDestinations, &ev.Destinations},
	}
	for _, o := range objs {
		v := f[o.key]
		if absent(v) {
			continue
		}
		var keep []string
		if o.key == fContext {
			keep = p.opts.ContextKeys
		}
		obj, ok := decodeObjectWith(v, p.text, p.opts.Maps, keep)
		if !ok {
			return objectErr(o.key, v)
		}
		*o.dst = obj
	}
	if t, ok := ev.Context["traits"]; ok && t != nil {
		if _, isObj := t.(map[string]any); !isObj {
			return fieldErr(CodeInvalidType, "context.traits", "context.traits is %s, want an object", kindOf(t))
		}
	}
	return nil
}

// objectErr says why the value v of the object field k was refused:
// not an object, or (the one valid JSON encoding/json cannot decode) a
// number out of float64's range somewhere inside.
func objectErr(k field, v []byte) *Error {
	name := fieldName(k)
	if v[0] != '{' {
		return fieldErr(CodeInvalidType, name, "%s is %s, want an object", name, kind(v))
	}
	return fieldErr(CodeInvalidType, name, "%s holds a number too large for a 64-bit float", name)
}

// mergeEnvelope puts the envelope's context and integrations under the
// event's own: a top-level key the event sets (non-null) wins whole, any
// other key is copied from the envelope. So analytics-go v3's batch-level
// context.library reaches an event that has only context.traits.
func mergeEnvelope(env *envelope, ev *Event) *Error {
	if err := envelopeErr(env); err != nil {
		return err
	}
	ev.Context = mergeUnder(ev.Context, env.context)
	ev.Integrations = mergeUnder(ev.Integrations, env.integrations)
	return nil
}

// envelopeErr is the envelope's problem, if any, as each of its events'.
func envelopeErr(env *envelope) *Error {
	// Each item gets its own copy: callers may annotate their errors.
	if env.contextErr != nil {
		e := *env.contextErr
		return &e
	}
	if env.integrationsErr != nil {
		e := *env.integrationsErr
		return &e
	}
	return nil
}

func mergeUnder(own, under map[string]any) map[string]any {
	if len(under) == 0 {
		return own
	}
	if own == nil {
		return cloneMap(under)
	}
	for k, v := range under {
		if cur, ok := own[k]; !ok || cur == nil {
			own[k] = cloneValue(v)
		}
	}
	return own
}

// kindOf names the JSON kind of a decoded value.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
