package deletion

import (
	"encoding/json"
	"strings"

	"github.com/nyaruka/phonenumbers"

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

// phoneKey makes spellings of one number compare equal: E.164 when the
// number parses (international, or national in one of the regions), else
// its digits.
func (m matcher) phoneKey(p string) string {
	p = strings.TrimSpace(p)
	if p == "" {
		return ""
	}
	for _, region := range append([]string{""}, m.regions...) {
		if num, err := phonenumbers.Parse(p, strings.ToUpper(region)); err == nil && phonenumbers.IsValidNumber(num) {
			return phonenumbers.Format(num, phonenumbers.E164)
		}
	}
	var b strings.Builder
	for _, r := range p {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "+" + b.String()
}

// identity is the part of a spec.Event that identifies its user.
type identity struct {
	UserID     any            `json:"userId"`
	Traits     map[string]any `json:"traits"`
	Properties map[string]any `json:"properties"`
	Context    struct {
		Traits map[string]any `json:"traits"`
	} `json:"context"`
}

var (
	emailKeys = []string{"email", "Email", "$email"}
	phoneKeys = []string{"phone", "phoneNumber", "phone_number", "Phone", "$phone_number"}
)

// payload reports whether the event JSON belongs to the user. A payload
// that does not decode is not theirs (it cannot be delivered either).
func (m matcher) payload(raw []byte) bool {
	var id identity
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
