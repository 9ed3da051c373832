package destination

import "github.com/relaycdp/relay/internal/privacy"

// PrivacyFields describe the privacy and transformation settings
// (docs/PRIVACY.md) for a type whose settings embed privacy.Config and a
// transformation and filter. Every setting the stored document can hold
// must be on the form: saving the form rewrites the whole document, and a
// missing field would silently turn a policy off.
func PrivacyFields() []Field {
	const sec = "Privacy and transformations"
	tristate := []string{"default", "on", "off"}
	return []Field{
		{Section: sec, Name: "privacyMode", Label: "Privacy mode", Kind: KindSelect, Options: []string{privacy.ModeStandard, privacy.ModeHIPAA},
			Help: "hipaa: no IP, no user agent, no page URL query strings or referrers, no free-text properties or traits unless allowlisted, identifiers only email, phone and external_id. Each policy below can override it. Try it in the event tester first: it lists the keys a policy drops."},
		{Section: sec, Name: "propertyAllowlist", Label: "Property allowlist", Kind: KindLines, Hint: "one property key per line",
			Help: "When set, only these top-level properties keys leave Relay (identifier keys are decided by Identifiers). Empty: no allowlist."},
		{Section: sec, Name: "traitAllowlist", Label: "Trait allowlist", Kind: KindLines, Hint: "one trait key per line",
			Help: "When set, only these traits (the call's and context.traits) leave Relay. Empty: no allowlist."},
		{Section: sec, Name: "identifiers", Label: "Identifiers", Kind: KindLines, Hint: "email\nphone\nexternal_id",
			Help: "Identifiers that may leave Relay, one per line: email, phone, external_id (userId), anonymous_id. Empty: the mode's default."},
		{Section: sec, Name: "dropIp", Label: "Drop IP", Kind: KindTristate, Options: tristate, Help: "Remove context.ip (Klaviyo's location.ip)."},
		{Section: sec, Name: "dropUserAgent", Label: "Drop user agent", Kind: KindTristate, Options: tristate, Help: "Remove context.userAgent."},
		{Section: sec, Name: "stripPageUrls", Aliases: []string{"dropPageUrls"}, Label: "Strip page URLs", Kind: KindTristate, Options: tristate,
			Help: "Cut query strings from page URLs; remove referrers and search strings."},
		{Section: sec, Name: "dropFreeText", Label: "Drop free text", Kind: KindTristate, Options: tristate,
			Help: "Drop string, object and list values of properties and traits unless allowlisted."},
		{Section: sec, Name: "transformation", Label: "Transformation (JavaScript)", Kind: KindCode,
			Hint: "export function transformEvent(event, metadata) {\n  return event;\n}",
			Help: "transformEvent(event, metadata) returns the event, an array of events, or null to drop it; runs before the filter and the policy. A throw or timeout dead-letters that event with the line."},
		{Section: sec, Name: "filter", Label: "Filter", Kind: KindJSON, Hint: `{"drop": "event == \"Debug\"", "rename": {"old": "new"}, "remove": ["note"]}`,
			Help: "JSON: drop (an expr condition), rename and remove (top-level properties)."},
	}
}
