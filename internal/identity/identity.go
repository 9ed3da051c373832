// Package identity owns how a user's identifiers are read from an event and
// normalised so that spellings of one identifier compare equal: the userId
// as sent, emails trimmed and lower-cased, phone numbers in E.164. User
// deletion, suppression and the delivery log all match users this way.
package identity

import (
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/relaycdp/relay/internal/spec"
)

// Keys under which the mapping takes an email or a phone number.
var (
	EmailKeys = []string{"email", "Email", "$email"}
	PhoneKeys = []string{"phone", "phoneNumber", "phone_number", "Phone", "$phone_number"}
)

// Email is the comparable form of an email address.
func Email(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// Phone is the comparable form of a phone number: E.164 when it parses
// (international, or national in the first of regions where it is valid),
// else "+" and its digits; "" when it has no digits.
func Phone(p string, regions ...string) string {
	p = strings.TrimSpace(p)
	if p == "" {
		return ""
	}
	for _, region := range append([]string{""}, regions...) {
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

// Raw are an event's identifiers as sent (not normalised).
type Raw struct {
	UserID string
	// Emails and Phones are those under traits, context.traits and
	// properties, in that order, at most one per place.
	Emails, Phones []string
}

// Of reads the identifiers of ev where the mapping takes them from.
func Of(ev *spec.Event) Raw {
	r := Raw{UserID: ev.UserID}
	ctxTraits, _ := ev.Context["traits"].(map[string]any)
	for _, bag := range []map[string]any{ev.Traits, ctxTraits, ev.Properties} {
		if e := First(bag, EmailKeys); e != "" {
			r.Emails = append(r.Emails, e)
		}
		if p := First(bag, PhoneKeys); p != "" {
			r.Phones = append(r.Phones, p)
		}
	}
	// A userId that is an email stands for the email when no trait gives
	// one (mapping rule §6.1).
	if len(r.Emails) == 0 && strings.Contains(ev.UserID, "@") {
		r.Emails = append(r.Emails, ev.UserID)
	}
	return r
}

// First is the first non-empty string of bag under keys.
func First(bag map[string]any, keys []string) string {
	for _, k := range keys {
		if s, ok := bag[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}
