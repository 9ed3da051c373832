package klaviyo

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"

	"github.com/relaycdp/relay/internal/jsonx"
)

// Hand-written appenders for `relay transform`'s outcomes and the request
// bodies the mapping renders most (events, profile imports, subscription
// and list jobs). encoding/json's reflection over the wire structs was a
// quarter of the stream's CPU (BenchmarkAppendOutcome). They write the
// bytes encoding/json writes for the same values with HTML escaping off
// (compact; the indented form is json.Indent of it, as json.Encoder
// indents): same field order (declaration order, embedded fields in
// place), same omitempty/omitzero rules, same string escapes.
// FuzzTransformStream and TestAppendOutcomeMatchesEncodingJSON hold them
// to encoding/json. Rare values (profile meta, location coordinates, other
// bodies) go through encoding/json itself (stdEncoder).

// errNotFinite stops the appender on a value encoding/json refuses, so
// that the caller falls back to encoding/json and its error.
var errNotFinite = errors.New("klaviyo: non-finite number")

// outcomeAppender appends outcomes; std encodes what it does not write
// itself.
type outcomeAppender struct {
	std stdEncoder
}

// stdEncoder is encoding/json with HTML characters unescaped, compact.
type stdEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func (e *stdEncoder) append(b []byte, v any) ([]byte, error) {
	if e.enc == nil {
		e.enc = json.NewEncoder(&e.buf)
		e.enc.SetEscapeHTML(false)
	}
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return b, err
	}
	return append(b, bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))...), nil
}

// appendOutcome appends o as encoding/json writes an Outcome.
func (a *outcomeAppender) appendOutcome(b []byte, o *Outcome) ([]byte, error) {
	b = append(b, `{"messageId":`...)
	b = appendWireString(b, o.MessageID)
	if o.Requests != nil { // omitzero: [] is kept
		b = append(b, `,"requests":[`...)
		for i := range o.Requests {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = a.appendRequest(b, &o.Requests[i]); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	b = appendStringField(b, "skipped", o.Skipped)
	if len(o.Warnings) > 0 {
		b = append(b, `,"warnings":[`...)
		for i, w := range o.Warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendWireString(b, w)
		}
		b = append(b, ']')
	}
	if o.Error != nil {
		b = append(b, `,"error":`...)
		b = appendOutcomeError(b, o.Error)
	}
	if len(o.Failures) > 0 {
		b = append(b, `,"failures":[`...)
		for i := range o.Failures {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendOutcomeError(b, &o.Failures[i])
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

func appendOutcomeError(b []byte, e *OutcomeError) []byte {
	b = append(b, `{"code":`...)
	b = appendWireString(b, e.Code)
	b = appendStringField(b, "field", e.Field)
	b = append(b, `,"message":`...)
	b = appendWireString(b, e.Message)
	return append(b, '}')
}

func (a *outcomeAppender) appendRequest(b []byte, r *Request) ([]byte, error) {
	b = append(b, `{"method":`...)
	b = appendWireString(b, r.Method)
	b = append(b, `,"path":`...)
	b = appendWireString(b, r.Path)
	b = appendStringField(b, "query", r.Query)
	if r.Body != nil {
		b = append(b, `,"body":`...)
		var err error
		if b, err = a.appendBody(b, r.Body); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendBody writes the bodies Op.Request renders for events and profiles;
// the others (and nil pointers) go through encoding/json.
func (a *outcomeAppender) appendBody(b []byte, body any) ([]byte, error) {
	switch t := body.(type) {
	case *EventCreateBody:
		if t != nil {
			return a.appendEventCreate(b, t)
		}
	case *ProfileImportBody:
		if t != nil {
			b = append(b, `{"data":`...)
			b, err := a.appendImportProfile(b, &t.Data)
			return append(b, '}'), err
		}
	case *SubscriptionJobBody:
		if t != nil {
			return appendSubscriptionJob(b, t), nil
		}
	case *ProfileBulkImportBody:
		if t != nil {
			return a.appendProfileBulkImport(b, t)
		}
	}
	return a.std.append(b, body)
}

func (a *outcomeAppender) appendEventCreate(b []byte, body *EventCreateBody) ([]byte, error) {
	b = append(b, `{"data":{"type":`...)
	b = appendWireString(b, body.Data.Type)
	b = append(b, `,"attributes":{`...)
	b, err := appendEventAttrs(b, &body.Data.Attributes.wireEventAttrs)
	if err != nil {
		return b, err
	}
	b = append(b, `,"profile":{"data":`...)
	p := &body.Data.Attributes.Profile.Data
	b = appendProfileHead(b, p.Type, p.ID)
	b = appendStringField(b, "anonymous_id", p.Attributes.AnonymousID)
	if b, err = a.appendImportAttrs(b, &p.Attributes.wireImportAttrs); err != nil {
		return b, err
	}
	if p.Attributes.Meta != nil {
		b = append(b, `,"meta":`...)
		if b, err = a.std.append(b, p.Attributes.Meta); err != nil {
			return b, err
		}
	}
	return append(b, "}}}}}}"...), nil
}

// appendEventAttrs writes wireEventAttrs' fields, without braces (they
// are embedded in the event body's attributes).
func appendEventAttrs(b []byte, e *wireEventAttrs) ([]byte, error) {
	b = append(b, `"properties":`...)
	b, err := appendMap(b, e.Properties)
	if err != nil {
		return b, err
	}
	b = appendStringField(b, "time", e.Time)
	if e.Value != nil {
		if math.IsNaN(*e.Value) || math.IsInf(*e.Value, 0) {
			return b, errNotFinite
		}
		b = append(b, `,"value":`...)
		b = appendFloat(b, *e.Value)
	}
	b = appendStringField(b, "value_currency", e.ValueCurrency)
	b = appendStringField(b, "unique_id", e.UniqueID)
	b = append(b, `,"metric":{"data":{"type":`...)
	b = appendWireString(b, e.Metric.Data.Type)
	b = append(b, `,"attributes":{"name":`...)
	b = appendWireString(b, e.Metric.Data.Attributes.Name)
	return append(b, "}}}"...), nil
}

// appendProfileHead opens a profile resource, {"type":…,"id":…,"attributes":{,
// leaving its attributes open for the caller (appendKey writes no comma
// after an opening brace).
func appendProfileHead(b []byte, typ, id string) []byte {
	b = append(b, `{"type":`...)
	b = appendWireString(b, typ)
	b = appendStringField(b, "id", id)
	return append(b, `,"attributes":{`...)
}

func (a *outcomeAppender) appendImportProfile(b []byte, p *wireImportProfile) ([]byte, error) {
	b = appendProfileHead(b, p.Type, p.ID)
	b, err := a.appendImportAttrs(b, &p.Attributes)
	if err != nil {
		return b, err
	}
	b = append(b, '}')
	if p.Meta != nil {
		b = append(b, `,"meta":`...)
		if b, err = a.std.append(b, p.Meta); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendImportAttrs writes wireImportAttrs' members inside an object
// already open (appendKey places the commas).
func (a *outcomeAppender) appendImportAttrs(b []byte, w *wireImportAttrs) ([]byte, error) {
	b = appendStringField(b, "email", w.Email)
	b = appendStringField(b, "phone_number", w.PhoneNumber)
	b = appendStringField(b, "external_id", w.ExternalID)
	b = appendStringField(b, "first_name", w.FirstName)
	b = appendStringField(b, "last_name", w.LastName)
	b = appendStringField(b, "organization", w.Organization)
	b = appendStringField(b, "title", w.Title)
	b = appendStringField(b, "image", w.Image)
	var err error
	if w.Location != nil {
		b = appendKey(b, "location")
		if b, err = a.appendLocation(b, w.Location); err != nil {
			return b, err
		}
	}
	if len(w.Properties) > 0 {
		b = appendKey(b, "properties")
		if b, err = appendMap(b, w.Properties); err != nil {
			return b, err
		}
	}
	return b, nil
}

func (a *outcomeAppender) appendLocation(b []byte, l *Location) ([]byte, error) {
	b = append(b, '{')
	b = appendStringField(b, "address1", l.Address1)
	b = appendStringField(b, "address2", l.Address2)
	b = appendStringField(b, "city", l.City)
	b = appendStringField(b, "region", l.Region)
	b = appendStringField(b, "country", l.Country)
	b = appendStringField(b, "zip", l.Zip)
	b = appendStringField(b, "timezone", l.Timezone)
	var err error
	for _, c := range [...]struct {
		key string
		v   any
	}{{"latitude", l.Latitude}, {"longitude", l.Longitude}} {
		if c.v != nil {
			b = appendKey(b, c.key)
			if b, err = a.std.append(b, c.v); err != nil {
				return b, err
			}
		}
	}
	b = appendStringField(b, "ip", l.IP)
	return append(b, '}'), nil
}

func appendSubscriptionJob(b []byte, body *SubscriptionJobBody) []byte {
	d := &body.Data
	b = append(b, `{"data":{"type":`...)
	b = appendWireString(b, d.Type)
	b = append(b, `,"attributes":{`...)
	b = appendStringField(b, "custom_source", d.Attributes.CustomSource)
	if d.Attributes.HistoricalImport {
		b = appendKey(b, "historical_import")
		b = append(b, "true"...)
	}
	b = appendKey(b, "profiles")
	b = append(b, `{"data":`...)
	if d.Attributes.Profiles.Data == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range d.Attributes.Profiles.Data {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSubProfile(b, &d.Attributes.Profiles.Data[i])
		}
		b = append(b, ']')
	}
	b = append(b, "}}"...)
	if d.Relationships != nil {
		b = append(b, `,"relationships":{"list":{"data":`...)
		b = appendListRef(b, &d.Relationships.List.Data)
		b = append(b, "}}"...)
	}
	return append(b, "}}"...)
}

func appendSubProfile(b []byte, p *wireSubProfile) []byte {
	b = appendProfileHead(b, p.Type, p.ID)
	b = appendStringField(b, "email", p.Attributes.Email)
	b = appendStringField(b, "phone_number", p.Attributes.PhoneNumber)
	b = appendKey(b, "subscriptions")
	s := &p.Attributes.Subscriptions
	b = append(b, '{')
	for _, c := range [...]struct {
		key string
		v   *ChannelConsent
	}{{"email", s.Email}, {"sms", s.SMS}} {
		if c.v == nil {
			continue
		}
		b = appendKey(b, c.key)
		b = append(b, '{')
		if c.v.Marketing != nil {
			b = appendKey(b, "marketing")
			b = appendConsent(b, c.v.Marketing)
		}
		if c.v.Transactional != nil {
			b = appendKey(b, "transactional")
			b = appendConsent(b, c.v.Transactional)
		}
		b = append(b, '}')
	}
	return append(b, "}}}"...)
}

func appendConsent(b []byte, c *Consent) []byte {
	b = append(b, `{"consent":`...)
	b = appendWireString(b, c.Consent)
	b = appendStringField(b, "consented_at", c.ConsentedAt)
	return append(b, '}')
}

func appendListRef(b []byte, r *wireListRef) []byte {
	b = append(b, `{"type":`...)
	b = appendWireString(b, r.Type)
	b = append(b, `,"id":`...)
	b = appendWireString(b, r.ID)
	return append(b, '}')
}

func (a *outcomeAppender) appendProfileBulkImport(b []byte, body *ProfileBulkImportBody) ([]byte, error) {
	d := &body.Data
	b = append(b, `{"data":{"type":`...)
	b = appendWireString(b, d.Type)
	b = append(b, `,"attributes":{"profiles":{"data":`...)
	if d.Attributes.Profiles.Data == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range d.Attributes.Profiles.Data {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = a.appendImportProfile(b, &d.Attributes.Profiles.Data[i]); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, "}}"...)
	if d.Relationships != nil {
		b = append(b, `,"relationships":{"lists":{"data":`...)
		if lists := d.Relationships.Lists.Data; lists == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for i := range lists {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendListRef(b, &lists[i])
			}
			b = append(b, ']')
		}
		b = append(b, "}}"...)
	}
	return append(b, "}}"...), nil
}

// appendKey appends "key": after a comma, unless it is the first member of
// the object just opened.
func appendKey(b []byte, key string) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// appendStringField appends an omitempty string member.
func appendStringField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = appendKey(b, key)
	return appendWireString(b, v)
}

// appendWireString appends s as encoding/json writes a string: as
// jsonx.AppendString (which the custom properties keep using, so their
// bytes stay what they were), except that encoding/json writes \b and \f
// in their short forms. Both are ASCII, so splitting s at them changes
// nothing else. A string written without any escape (its length plus the
// quotes) holds neither, so most strings are not searched for them.
func appendWireString(b []byte, s string) []byte {
	n := len(b)
	b = jsonx.AppendString(b, s)
	if len(b)-n == len(s)+2 {
		return b
	}
	i := strings.IndexAny(s, "\b\f")
	if i < 0 {
		return b
	}
	b = append(b[:n], '"')
	for ; i >= 0; i = strings.IndexAny(s, "\b\f") {
		b = appendStringBody(b, s[:i])
		if s[i] == '\b' {
			b = append(b, `\b`...)
		} else {
			b = append(b, `\f`...)
		}
		s = s[i+1:]
	}
	b = appendStringBody(b, s)
	return append(b, '"')
}

// appendStringBody is jsonx.AppendString without the quotes.
func appendStringBody(b []byte, s string) []byte {
	n := len(b)
	b = jsonx.AppendString(b, s)
	copy(b[n:], b[n+1:len(b)-1])
	return b[:len(b)-2]
}
