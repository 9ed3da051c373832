package deletion

import (
	"encoding/json"
	"strings"

	"github.com/relaycdp/relay/internal/identity"
	"github.com/relaycdp/relay/internal/store"
)

// matcher decides whether a stored event (spec.Event JSON) belongs to the
// user being forgotten: by userId, or by an email or phone number found
// where the mapping takes them from (traits, context.traits, properties).
type matcher struct {
	userID  string
	email   string // lower case
	phone   string // E.164 when it parsed, else its digits
	regions []string
}

// newMatcher reads national phone numbers (the subject's and the events')
// in the destinations' defaultPhoneCountry regions, as the mapping does.
func newMatcher(s store.DeletionSubject, regions ...string) matcher {
	m := matcher{userID: s.UserID, email: strings.ToLower(strings.TrimSpace(s.Email)), regions: regions}
	m.phone = m.phoneKey(s.Phone)
	return m
}

// phoneKey makes spellings of one number compare equal, as the delivery
// log stores them (identity.Phone).
func (m matcher) phoneKey(p string) string { return identity.Phone(p, m.regions...) }

// eventIdentity is the part of a spec.Event that identifies its user.
type eventIdentity struct {
	UserID     any            `json:"userId"`
	Traits     map[string]any `json:"traits"`
	Properties map[string]any `json:"properties"`
	Context    struct {
		Traits map[string]any `json:"traits"`
	} `json:"context"`
}

var (
	emailKeys = identity.EmailKeys
	phoneKeys = identity.PhoneKeys
)

// payload reports whether the event JSON belongs to the user. A payload
// that does not decode is not theirs (it cannot be delivered either).
func (m matcher) payload(raw []byte) bool {
	var id eventIdentity
	if json.Unmarshal(raw, &id) != nil {
		return false
	}
	if m.userID != "" {
		switch v := id.UserID.(type) {
		case string:
			if v == m.userID {
				return true
			}
		case float64:
			if b, _ := json.Marshal(v); string(b) == m.userID {
				return true
			}
		}
	}
	for _, bag := range []map[string]any{id.Traits, id.Context.Traits, id.Properties} {
		if m.email != "" && m.email == strings.ToLower(strings.TrimSpace(first(bag, emailKeys))) {
			return true
		}
		if m.phone != "" && m.phone == m.phoneKey(first(bag, phoneKeys)) {
			return true
		}
	}
	// userId is an email when traits carry none (mapping rule §6.1).
	if s, ok := id.UserID.(string); ok && m.email != "" && strings.EqualFold(s, m.email) {
		return true
	}
	return false
}

func first(bag map[string]any, keys []string) string {
	for _, k := range keys {
		if s, ok := bag[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}
