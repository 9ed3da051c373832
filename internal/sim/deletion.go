package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// DeletedProfile is one profile removed by a data-privacy deletion job, as
// Klaviyo lists it on its Deleted Profiles page (relay addition to State).
type DeletedProfile struct {
	ID          string    `json:"id"`
	Email       string    `json:"email,omitempty"`
	PhoneNumber string    `json:"phone_number,omitempty"`
	ExternalID  string    `json:"external_id,omitempty"`
	Events      int       `json:"events"` // events removed with it
	DeletedAt   time.Time `json:"deleted_at"`
}

// POST /api/data-privacy-deletion-jobs → 202, no body. Klaviyo deletes
// asynchronously; the simulator applies the deletion at once, so State is
// up to date when the client has its answer. Exactly one identifier is
// allowed (the spec: "If multiple identifiers are provided, we will return
// an error"); no matching profile is not an error, as the job is accepted
// before Klaviyo looks.
func (s *Sim) deletionJob(q *request) *response {
	const ptr = "/data/attributes/profile/data"
	pin := profileFrom(obj(q.body, "data", "attributes", "profile", "data"), ptr)
	var given []string
	if pin.id != "" {
		given = append(given, "id")
	}
	for _, k := range []string{"email", "phone_number"} {
		if pin.str(k) != "" {
			given = append(given, k)
		}
	}
	switch len(given) {
	case 0:
		return errResp(invalid(ptr, "One profile identifier is required: email, phone_number or id."))
	case 1:
	default:
		return errResp(invalid(ptr, fmt.Sprintf("Only one profile identifier may be given; got %s.", strings.Join(given, ", "))))
	}
	if errs := pin.check(); len(errs) > 0 {
		return errResp(errs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.data
	var p *profile
	switch given[0] {
	case "id":
		p = st.profiles[pin.id]
	default:
		p = st.index(given[0])[indexKey(given[0], pin.str(given[0]))]
	}
	if p != nil {
		st.deleteProfile(p, q.now)
	}
	return &response{status: 202}
}

// deleteProfile removes p, its identifiers, list memberships and events.
func (st *store) deleteProfile(p *profile, now time.Time) {
	for _, k := range identifierKeys {
		if v := *p.ident(k); v != "" && st.index(k)[indexKey(k, v)] == p {
			delete(st.index(k), indexKey(k, v))
		}
	}
	for _, id := range slices.Clone(p.lists) {
		st.removeFromList(id, p)
	}
	delete(st.profiles, p.id)
	st.order = slices.DeleteFunc(st.order, func(q *profile) bool { return q == p })
	removed := 0
	st.events = slices.DeleteFunc(st.events, func(ev EventState) bool {
		if ev.ProfileID != p.id {
			return false
		}
		removed++
		return true
	})
	prefix := p.id + "\x00"
	for k := range st.eventKeys {
		if strings.HasPrefix(k, prefix) {
			delete(st.eventKeys, k)
		}
	}
	st.deleted = append(st.deleted, DeletedProfile{ID: p.id, Email: p.email, PhoneNumber: p.phone,
		ExternalID: p.externalID, Events: removed, DeletedAt: now.UTC()})
}
