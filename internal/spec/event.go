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
//
// Parse fills it as follows: Type is lower case and one of the Type*
// constants; a valid event always has a MessageID (see
// GeneratedMessageIDPrefix); ids given as JSON numbers are decimal strings;
// the four maps are nil rather than empty and hold encoding/json's decoding
// (float64 numbers); all times are UTC. Unknown top-level keys (_metadata,
// writeKey, channel, rudderId…) are dropped. Treat the maps as read-only:
// copy before changing them.
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

	// Traits are the call's own traits (identify, group). context.traits
	// stay in Context["traits"], apart from them, because group traits
	// describe the group while context.traits describe the user; use
	// UserTraits for the user's traits merged as the type requires.
	Traits     map[string]any `json:"traits,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
	// Context is the merged context (envelope context under the event's own).
	Context map[string]any `json:"context,omitempty"`
	// Integrations is the merged integrations map (envelope under event).
	Integrations map[string]any `json:"integrations,omitempty"`
	// Destinations is the event's own top-level destinations object, the
	// per-destination options Segment Classic's docs wrote as
	// destinations.Klaviyo.listId (seeds 001, 002); destinations read it
	// under their integrations options.
	Destinations map[string]any `json:"destinations,omitempty"`
	// Bundled is analytics.js's _metadata.bundled: the integrations the
	// browser sent this event to itself (device mode), so a server-side
	// copy would count it twice. The rest of _metadata is dropped.
	Bundled []string `json:"bundled,omitempty"`

	// Timestamp is the skew-corrected event time (clients.md §1).
	Timestamp         time.Time `json:"timestamp"`
	OriginalTimestamp time.Time `json:"originalTimestamp,omitzero"`
	SentAt            time.Time `json:"sentAt,omitzero"`
	ReceivedAt        time.Time `json:"receivedAt"`
}
