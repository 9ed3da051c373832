package spec

import (
	"errors"
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
}

// Batch is a parsed request body.
type Batch struct {
	// WriteKey is the body's writeKey, if any (Basic auth wins over it).
	WriteKey string
	// Items has one element per input event, in input order.
	Items []Item
}

// Item is one input event: normalised, or rejected with Err.
type Item struct {
	Event Event  // what could be read, at least MessageID where present
	Err   *Error // nil when the event is valid
}

// Error is a per-event rejection: which field, and why.
type Error struct {
	Code    string // stable machine code, e.g. "invalid_type", "missing_field"
	Field   string // JSON path of the offending field, e.g. "properties.revenue"
	Message string // human sentence naming the field and the reason
}

func (e *Error) Error() string { return e.Message }

// ErrMalformed is returned (wrapped) by Parse when the body as a whole is
// unreadable: not JSON, not an object or array, or an empty batch.
var ErrMalformed = errors.New("malformed request body")

// Parse reads one event, a JSON array of events, or a batch envelope
// {"batch":[…]} and normalises every element. It returns an error wrapping
// ErrMalformed only when the body as a whole is unreadable; per-event
// problems are reported in Items[i].Err.
func Parse(body []byte, opts Options) (*Batch, error) {
	return nil, errors.New("spec.Parse: not built yet")
}
