// Package spec owns the Segment/RudderStack event model: parsing request
// bodies (single events, arrays, batch envelopes), validating them, and
// normalising them (envelope merge, traits, timestamps, messageId) into Event.
package spec

import (
	"time"
)

// Event types of the Segment spec.
const (
	TypeIdentify = "identify"
	TypeTrack    = "track"
	TypePage     = "page"
	TypeScreen   = "screen"
	TypeGroup    = "group"
	TypeAlias    = "alias"
)

// Event is one normalised Segment/RudderStack call. It is what the gateway
// commits to the queue (as JSON) and what the mapping reads. Fields keep the
// Segment JSON names so a stored event reads like the call that produced it.
type Event struct {
	Type        string `json:"type"`
	MessageID   string `json:"messageId"`
	UserID      string `json:"userId,omitempty"`
	AnonymousID string `json:"anonymousId,omitempty"`

	Event      string `json:"event,omitempty"`      // track
	Name       string `json:"name,omitempty"`       // page, screen
	Category   string `json:"category,omitempty"`   // page
	GroupID    string `json:"groupId,omitempty"`    // group
	PreviousID string `json:"previousId,omitempty"` // alias

	// Traits are the call's own traits (identify, group). ContextTraits are
	// context.traits, kept apart because group traits describe the group
	// while context.traits describe the user.
	Traits     map[string]any `json:"traits,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
	// Context is the merged context (envelope context under the event's own).
	Context map[string]any `json:"context,omitempty"`
	// Integrations is the merged integrations map (envelope under event).
	Integrations map[string]any `json:"integrations,omitempty"`

	// Timestamp is the skew-corrected event time (clients.md §1).
	Timestamp         time.Time `json:"timestamp"`
	OriginalTimestamp time.Time `json:"originalTimestamp,omitzero"`
	SentAt            time.Time `json:"sentAt,omitzero"`
	ReceivedAt        time.Time `json:"receivedAt"`
}
