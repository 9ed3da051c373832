package klaviyo

import "strings"

// Public-key-only destinations (Segment Classic's "API Key", Freshpaint's
// public key): what Klaviyo's client API allows goes through /client/*
// with company_id; what needs the private key fails alone, visibly.

// ClientOnly reports whether the destination has a public key and no
// private key, so it delivers through the client API.
func (s Settings) ClientOnly() bool {
	return s.PrivateAPIKey == "" && s.PublicAPIKey != ""
}

// MissingKey says what the destination cannot do for want of a key, or ""
// when it has a private key. Relay reports it at start and in the console
// rather than discovering it through retries.
func (s Settings) MissingKey() string {
	switch {
	case s.PrivateAPIKey != "":
		return ""
	case s.PublicAPIKey != "":
		return "no privateApiKey: only the client API is used (events, profiles, list subscriptions through /client/*); unsubscribes, list membership without consent and list removal need privateApiKey"
	}
	return "no privateApiKey or publicApiKey: nothing can be delivered to Klaviyo until a key is set"
}

// clientOps turns server ops into their client API form. Ops the client
// API cannot express become failures of the event's parts.
func (m *mapper) clientOps(ops []Op) []Op {
	out := ops[:0:0]
	for _, op := range ops {
		switch op.Kind {
		case OpEvent:
			op.Kind = OpClientEvent
		case OpProfile:
			op.Kind = OpClientProfile
		case OpClientProfile:
		case OpSubscribe:
			if op.ListID == "" {
				m.clientFailure("subscribing without a list")
				continue
			}
			if op.HistoricalImport {
				m.warn("with only a public key the subscription goes through the list's opt-in: the client API takes no historical import (confirmOptin false)")
				op.HistoricalImport = false
				op.Profile = withoutConsentedAt(op.Profile)
			}
			op.Kind = OpClientSubscribe
		default:
			m.clientFailure(clientOpName(op.Kind))
			continue
		}
		out = append(out, op)
	}
	return out
}

func (m *mapper) clientFailure(what string) {
	m.failures = append(m.failures, &MapError{Code: CodeMissingPrivateKey, Field: "privateApiKey",
		Message: what + " needs privateApiKey: the destination has only a public key, and Klaviyo's client API cannot do it"})
}

func clientOpName(k OpKind) string {
	switch k {
	case OpUnsubscribe:
		return "unsubscribing"
	case OpListAdd:
		return "adding to a list without consent"
	case OpListRemove:
		return "removing from a list"
	}
	return strings.ReplaceAll(string(k), "-", " ")
}

// withoutConsentedAt copies a subscription profile without consented_at.
func withoutConsentedAt(p *Profile) *Profile {
	if p == nil || p.Attributes.Subscriptions == nil {
		return p
	}
	cp := *p
	subs := *p.Attributes.Subscriptions
	for _, ch := range []**ChannelConsent{&subs.Email, &subs.SMS} {
		if *ch != nil && (*ch).Marketing != nil {
			c := **ch
			mk := *c.Marketing
			mk.ConsentedAt = ""
			c.Marketing = &mk
			*ch = &c
		}
	}
	cp.Attributes.Subscriptions = &subs
	return &cp
}
