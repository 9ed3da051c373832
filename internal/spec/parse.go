package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Options tell Parse what it cannot read from the body.
type Options struct {
	// ReceivedAt is when the server received the request. Zero means
	// unknown (relay transform): timestamps are then not skew-corrected.
	ReceivedAt time.Time
	// DefaultType is the type implied by the path (/v1/track → "track");
	// empty for /v1/batch and /v1/import, where every element needs a type.
	DefaultType string
	// MaxEventBytes rejects (per event) any element larger than this; 0 = no limit.
	MaxEventBytes int
	// Encode makes Parse write each valid event as the queue stores it
	// (Item.Payload) and its ordering key (Item.Key), straight from the
	// body's bytes: traits, properties, context and integrations are checked
	// (objects, context.traits too) and copied, not decoded, so they stay
	// nil in Item.Event and Event's methods that read them do not apply.
	// The payload decodes (encoding/json) to the Event the default mode
	// returns. This is the gateway's mode: it stores events it never reads,
	// and decoding and re-encoding their maps was most of its CPU.
	Encode bool
	// Scratch, with Encode, is where the payloads are written when its
	// capacity suffices (Batch.Scratch hands it back, perhaps grown): a
	// caller that parses request after request reuses it once it is done
	// with the previous Batch's payloads, instead of allocating about the
	// body's size per request.
	Scratch []byte
	// Items, like Scratch, is reused for Batch.Items when its capacity
	// suffices; Parse overwrites every element it uses.
	Items []Item
	// Maps, when set, lends the maps the events' objects are decoded
	// into: they are valid until Maps.Reset (see Maps).
	Maps *Maps
	// Scanned, for ParseElement: when raw is the object it last scanned
	// (the same bytes, not a copy), its validation is not done again.
	Scanned *ElementScanner
	// ContextKeys, when not nil, are the only keys of context (the
	// event's and a batch envelope's) decoded into Event.Context; the
	// others are left out of it, for a caller that reads no other:
	// `relay transform`'s mapping reads three or four of the ten or so
	// keys SDKs send, and decoding the rest (library, userAgent, page,
	// os...) was wasted. Whether an event is accepted does not depend on
	// it.
	ContextKeys []string
}

// Batch is a parsed request body.
type Batch struct {
	// WriteKey is the body's writeKey, if any (Basic auth wins over it).
	WriteKey string
	// Items has one element per input event, in input order.
	Items []Item
	// Scratch is the buffer the payloads were written to (Options.Scratch),
	// for the caller to reuse once it no longer needs them.
	Scratch []byte
}

// Item is one input event: normalised, or rejected with Err.
type Item struct {
	Event Event  // what could be read, at least MessageID where present
	Err   *Error // nil when the event is valid
	// With Options.Encode, for a valid event: its JSON (see Encode) and
	// Event.Key() as the full event would give it.
	Payload []byte
	Key     string
}

// Error is a per-event rejection: which field, and why.
type Error struct {
	Code    string // stable machine code, e.g. "invalid_type", "missing_field"
	Field   string // JSON path of the offending field, e.g. "properties.revenue"
	Message string // human sentence naming the field and the reason
}

func (e *Error) Error() string { return e.Message }

// Codes of Error. Field is "" when the event as a whole is at fault.
const (
	// CodeInvalidType: a field (or the event itself) has the wrong JSON
	// type, or "type" names no Segment call.
	CodeInvalidType = "invalid_type"
	// CodeMissingField: a required field is absent, null or empty.
	CodeMissingField = "missing_field"
	// CodeTooLong: a string is over its length limit (messageId).
	CodeTooLong = "too_long"
	// CodeTooLarge: the event is over Options.MaxEventBytes.
	CodeTooLarge = "too_large"
)

// MaxMessageIDLength is Segment's limit on messageId, in characters.
const MaxMessageIDLength = 100

// ErrMalformed is returned (wrapped) by Parse when the body as a whole is
// unreadable: not JSON, not an object or array, or an empty batch.
var ErrMalformed = errors.New("malformed request body")

// Parse reads one event, a JSON array of events, or a batch envelope
// {"batch":[…]} and normalises every element. It returns an error wrapping
// ErrMalformed only when the body as a whole is unreadable; per-event
// problems are reported in Items[i].Err.
//
// The envelope's context and integrations are merged under each element's
// own (the element wins per top-level key), its sentAt is the fallback for
// elements without one, and its writeKey becomes Batch.WriteKey (else the
// first element's). The envelope's timestamp (rudder-sdk-node) and
// messageId (analytics-go v3) describe the request, not an event, and are
// ignored.
//
// Parse never panics and keeps nothing from body: the returned Batch may
// outlive it. The body is validated once (validJSON), split without
// copying (jsonsplit.go), and only the values an Event keeps are decoded.
func Parse(body []byte, opts Options) (*Batch, error) {
	p := newParser(body, opts)
	b, err := p.parse(body)
	if b != nil {
		b.Scratch = p.buf
	}
	return b, err
}

// ParseElement parses raw as Parse parses the array [raw]: an object is
// one event (a "batch" key in it is no envelope), anything else is that
// event's error. `relay transform` reads a streamed array's elements with
// it: wrapping each in brackets cost a copy, and Parse's walk to split
// the one-element array, for every event (BenchmarkParseElement).
func ParseElement(raw []byte, opts Options) (*Batch, error) {
	v := validator{b: raw}
	start := v.space(0)
	var f fields
	var end int
	var ok bool
	obj := start < len(raw) && raw[start] == '{'
	switch sc := opts.Scanned; {
	case sc != nil && sc.holds(raw):
		f, end, ok = sc.f, len(raw), true
	case obj: // the common case: validated and split in one walk
		end, ok = v.objectFields(start, 2, &f) // two levels down, as inside [raw]
	default:
		end, ok = v.value(start, 1)
	}
	if !ok || v.space(end) != len(raw) {
		// Parse's own error, its offsets counted in the array.
		return Parse(slices.Concat([]byte("["), raw, []byte("]")), opts)
	}
	p := newParser(raw, opts)
	if !opts.Encode {
		// The event's strings are slices of one copy of it. (Encode's
		// payloads are copies already, and Parse's body may be a whole
		// request, which one retained string would keep alive.)
		p.text = &text{src: raw}
	}
	b := &Batch{}
	var it Item
	if obj {
		it = p.object(raw[start:end], &f, &envelope{}, &b.WriteKey)
	} else {
		it = p.element(raw[start:end], &envelope{}, &b.WriteKey)
	}
	b.Items = append(opts.Items[:0], it)
	b.Scratch = p.buf
	return b, nil
}

// ElementScanner validates an element of a streamed array ahead of
// ParseElement, as the stream is split (eventstream.Reader.Bound): the
// stream's bytes are walked once to find where each event ends and that
// it is JSON, instead of once for each.
type ElementScanner struct {
	raw []byte
	f   fields
}

// Scan returns the length of the object at the start of b when b holds
// all of it and ParseElement would find it valid JSON, else 0 (b is
// invalid, incomplete, or not an object). Options.Scanned then hands the
// object's validation and split to ParseElement.
func (sc *ElementScanner) Scan(b []byte) int {
	sc.raw = nil
	if len(b) == 0 || b[0] != '{' {
		return 0
	}
	sc.f = fields{}
	v := validator{b: b}
	end, ok := v.objectFields(0, 2, &sc.f) // two levels down, as ParseElement
	if !ok {
		return 0
	}
	sc.raw = b[:end]
	return end
}

// holds reports whether raw is the object last scanned, and forgets it:
// a buffer reused for the next value could put other bytes at the same
// place.
func (sc *ElementScanner) holds(raw []byte) bool {
	same := len(sc.raw) == len(raw) && len(raw) > 0 && &sc.raw[0] == &raw[0]
	sc.raw = nil
	return same
}

func newParser(body []byte, opts Options) parser {
	p := parser{opts: opts, recv: opts.ReceivedAt.UTC()}
	if opts.Encode {
		// Payloads are cut from one buffer about the body's size (they are
		// its events minus unknown keys, plus normalised times).
		// A reused Scratch near that size is taken as is: should it run
		// out, append moves the rest to a larger array (the payloads cut
		// before stay valid where they are).
		p.buf = opts.Scratch[:0]
		if cap(p.buf) < len(body) {
			p.buf = make([]byte, 0, len(body)+len(body)/4+512)
		}
	}
	return p
}

func (p *parser) parse(body []byte) (*Batch, error) {
	i := skipSpace(body, 0)
	if i == len(body) {
		return nil, fmt.Errorf("%w: body is empty", ErrMalformed)
	}
	if !validJSON(body) {
		var v any
		return nil, invalidJSON(json.Unmarshal(body, &v))
	}
	value := body[i:skipValue(body, i)]
	switch value[0] {
	case '[':
		return p.events(value, &envelope{}, "the array of events is empty")
	case '{':
		top := splitFields(value)
		if top[fBatch] == nil {
			b := &Batch{Items: make([]Item, 1)}
			b.Items[0] = p.object(value, &top, &envelope{}, &b.WriteKey)
			return b, nil
		}
		rawBatch := top[fBatch]
		if rawBatch[0] != '[' {
			return nil, fmt.Errorf("%w: batch is %s, want an array", ErrMalformed, kind(rawBatch))
		}
		env := p.readEnvelope(&top)
		return p.events(rawBatch, &env, "batch is empty")
	default:
		return nil, fmt.Errorf("%w: body is %s, want an object or an array", ErrMalformed, kind(value))
	}
}

// MaxBatchEvents caps the elements of one array or batch; Parse answers
// ErrMalformed above it. Segment documents at most 2,500 events per batch
// (clients.md), and SDKs flush long before that. Without a cap a body of
// bare elements ("0,0,0,…") cost a ~300-byte Item each: a 2 MB body made a
// million Items, allocated 1.5 GB and held over 600 MB.
const MaxBatchEvents = 10000

// events parses the elements of the array arr.
func (p *parser) events(arr []byte, env *envelope, emptyMsg string) (*Batch, error) {
	it := newArrIter(arr)
	raw, ok := it.next()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, emptyMsg)
	}
	// A guess at the count (events are rarely under 256 bytes) saves most
	// regrowth without a counting pass over the array.
	items := p.opts.Items[:0]
	if cap(items) == 0 { // a reused slice grows by append if need be
		items = make([]Item, 0, min(len(arr)/256+1, 2500))
	}
	b := &Batch{WriteKey: env.writeKey, Items: items}
	for ok {
		if len(b.Items) == MaxBatchEvents {
			return nil, fmt.Errorf("%w: more than %d events in one request (send them in several batches)", ErrMalformed, MaxBatchEvents)
		}
		b.Items = append(b.Items, p.element(raw, env, &b.WriteKey))
		raw, ok = it.next()
	}
	return b, nil
}

func invalidJSON(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: invalid JSON at byte %d: %s", ErrMalformed, se.Offset, se.Error())
	}
	return fmt.Errorf("%w: invalid JSON", ErrMalformed)
}
