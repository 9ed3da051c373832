package console

import (
	"encoding/json"
	"fmt"

	"github.com/relaycdp/relay/internal/privacy"
)

// privacySection is the settings form's privacy and transformation
// fields (docs/PRIVACY.md). Every setting the stored document can hold
// must be on the form: saving the form rewrites the whole document, and a
// missing field would silently turn a policy off.
func privacySection() sectionDef {
	return sectionDef{"Privacy and transformations", []fieldDef{
		{Name: "privacyMode", Label: "Privacy mode", Kind: "select", Options: []string{privacy.ModeStandard, privacy.ModeHIPAA},
			Help: "hipaa: no IP, no user agent, no page URL query strings or referrers, no free-text properties or traits unless allowlisted, identifiers only email, phone and external_id. Each policy below can override it. Try it in the event tester first: it lists the keys a policy drops."},
		{Name: "propertyAllowlist", Label: "Property allowlist", Kind: "lines", Hint: "one property key per line",
			Help: "When set, only these top-level properties keys leave Relay (identifier keys are decided by Identifiers). Empty: no allowlist."},
		{Name: "traitAllowlist", Label: "Trait allowlist", Kind: "lines", Hint: "one trait key per line",
			Help: "When set, only these traits (the call's and context.traits) leave Relay. Empty: no allowlist."},
		{Name: "identifiers", Label: "Identifiers", Kind: "lines", Hint: "email\nphone\nexternal_id",
			Help: "Identifiers that may leave Relay, one per line: email, phone, external_id (userId), anonymous_id. Empty: the mode's default."},
		{Name: "dropIp", Label: "Drop IP", Kind: "tristate", Options: tristateOptions, Help: "Remove context.ip (Klaviyo's location.ip)."},
		{Name: "dropUserAgent", Label: "Drop user agent", Kind: "tristate", Options: tristateOptions, Help: "Remove context.userAgent."},
		{Name: "stripPageUrls", Label: "Strip page URLs", Kind: "tristate", Options: tristateOptions,
			Help: "Cut query strings from page URLs; remove referrers and search strings."},
		{Name: "dropFreeText", Label: "Drop free text", Kind: "tristate", Options: tristateOptions,
			Help: "Drop string, object and list values of properties and traits unless allowlisted."},
		{Name: "transformation", Label: "Transformation (JavaScript)", Kind: "code",
			Hint: "export function transformEvent(event, metadata) {\n  return event;\n}",
			Help: "transformEvent(event, metadata) returns the event, an array of events, or null to drop it; runs before the filter and the policy. A throw or timeout dead-letters that event with the line."},
		{Name: "filter", Label: "Filter", Kind: "json", Hint: `{"drop": "event == \"Debug\"", "rename": {"old": "new"}, "remove": ["note"]}`,
			Help: "JSON: drop (an expr condition), rename and remove (top-level properties)."},
	}}
}

// tristateOptions: a boolean policy left to the mode, or forced.
var tristateOptions = []string{"default", "on", "off"}

// privacyFieldValue shows a stored value in a tristate or JSON field.
func privacyFieldValue(kind string, v any) string {
	if kind == "tristate" {
		switch v {
		case true:
			return "on"
		case false:
			return "off"
		}
		return "default"
	}
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// privacyFormValue reads a tristate or JSON field; nil means unset.
func privacyFormValue(kind, text string) (any, error) {
	if kind == "tristate" {
		switch text {
		case "on":
			return true, nil
		case "off":
			return false, nil
		}
		return nil, nil
	}
	if text == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	return m, nil
}
