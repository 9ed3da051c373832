// Package klaviyo owns the mapping from a normalised event to Klaviyo
// operations (pure functions, no I/O), the destination settings, and the wire
// types of Klaviyo's JSON:API.
package klaviyo

// OpKind says which Klaviyo operation an Op is; delivery batches ops of one
// kind (and, for list operations, one list) into one bulk request.
type OpKind string

// The operations the mapping produces.
const (
	// OpEvent: POST /api/events; bulk: /api/event-bulk-create-jobs.
	OpEvent OpKind = "event"
	// OpProfile: POST /api/profile-import; bulk: /api/profile-bulk-import-jobs.
	OpProfile OpKind = "profile"
	// OpSubscribe: /api/profile-subscription-bulk-create-jobs, per list and
	// HistoricalImport/CustomSource.
	OpSubscribe OpKind = "subscribe"
	// OpUnsubscribe: /api/profile-subscription-bulk-delete-jobs, per list.
	OpUnsubscribe OpKind = "unsubscribe"
	// OpListAdd: list membership without a consent change; sent as a profile
	// bulk import job with a lists relationship (no profile id is needed:
	// /api/lists/{id}/relationships/profiles takes only Klaviyo profile
	// ids, so even the single call of `relay transform` is a one-profile
	// import job).
	OpListAdd OpKind = "list-add"
	// OpClientProfile: POST /client/profiles with the public key, for a
	// profile known only by anonymous_id.
	OpClientProfile OpKind = "client-profile"
	// OpListRemove: list membership ends, consent unchanged:
	// DELETE /api/lists/{id}/relationships/profiles with Klaviyo profile
	// ids, looked up first (GET /api/profiles?filter=equals(…)) when the
	// event does not carry one.
	OpListRemove OpKind = "list-remove"
	// OpClientEvent: POST /client/events with the public key, when the
	// destination has no private key (ClientOnly).
	OpClientEvent OpKind = "client-event"
	// OpClientSubscribe: POST /client/subscriptions with the public key,
	// one profile and a list (the client API takes no list-less or
	// historical subscription).
	OpClientSubscribe OpKind = "client-subscribe"
)

// Op is one Klaviyo operation an event maps to, in the form delivery can
// batch. Request renders it as the single (non-bulk) call of `relay transform`.
type Op struct {
	Kind OpKind `json:"kind"`
	// ListID is the list of OpSubscribe, OpUnsubscribe (optional: without
	// it the profile is unsubscribed from the channel) and OpListAdd.
	ListID string `json:"listId,omitempty"`
	// Profile is the profile of every kind: the imported profile, the
	// subscribed identifiers (with Subscriptions), or the event's profile.
	Profile *Profile `json:"profile,omitempty"`
	// Event is set for OpEvent: the event without its profile.
	Event *EventAttributes `json:"event,omitempty"`
	// HistoricalImport and CustomSource apply to OpSubscribe.
	HistoricalImport bool   `json:"historicalImport,omitempty"`
	CustomSource     string `json:"customSource,omitempty"`
}

// ProfileKey identifies the profile an op is about, for per-profile ordering:
// the first of external_id, email, phone_number, anonymous_id, id.
func (o Op) ProfileKey() string {
	p := o.Profile
	if p == nil {
		return ""
	}
	a := p.Attributes
	for _, k := range []string{a.ExternalID, a.Email, a.PhoneNumber, a.AnonymousID, p.ID} {
		if k != "" {
			return k
		}
	}
	return ""
}

// Request is one HTTP call to Klaviyo. Path is relative to the API base URL
// (https://a.klaviyo.com); Query holds the query string without "?". Body
// is a typed JSON:API document built by Op.Request or a bulk builder
// (render.go): send json.Marshal(Body). Empty fields are left out, never
// sent as null.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query,omitempty"`
	Body   any    `json:"body,omitempty"`
}
