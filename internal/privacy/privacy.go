// Package privacy owns a destination's privacy policy: which parts of an
// event may leave Relay for that destination (privacyMode standard or hipaa,
// and the policies hipaa implies, each also settable alone), and the report
// of which keys a policy kept and which it dropped. Reports name keys,
// never values, so they can be logged and stored in the audit log.
package privacy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/relaycdp/relay/internal/spec"
)

// Modes of Config.Mode.
const (
	ModeStandard = "standard"
	ModeHIPAA    = "hipaa"
)

// Identifiers of Config.Identifiers.
const (
	IDEmail       = "email"
	IDPhone       = "phone"
	IDExternalID  = "external_id"  // userId
	IDAnonymousID = "anonymous_id" // anonymousId
)

var allIdentifiers = []string{IDEmail, IDPhone, IDExternalID, IDAnonymousID}

// Config is a destination's privacy settings as the user writes them.
// Mode sets the defaults; every other field, when set, overrides its
// mode's default (a nil pointer or nil list means "as the mode says").
type Config struct {
	// Mode is ModeStandard (default: nothing is dropped) or ModeHIPAA.
	Mode string `json:"privacyMode,omitempty"`
	// PropertyAllowlist, when set, is the only top-level properties keys
	// that leave Relay; TraitAllowlist the same for traits (the call's and
	// context.traits). Allowlisted keys are kept even when free text.
	PropertyAllowlist []string `json:"propertyAllowlist,omitempty"`
	TraitAllowlist    []string `json:"traitAllowlist,omitempty"`
	// DropIP removes context.ip (Klaviyo's location.ip).
	DropIP *bool `json:"dropIp,omitempty"`
	// DropUserAgent removes context.userAgent and context.userAgentData.
	DropUserAgent *bool `json:"dropUserAgent,omitempty"`
	// StripPageURLs removes query strings and fragments from page URLs
	// (context.page.url, properties.url) and drops referrers and search
	// strings (context.page.referrer/search, properties.referrer/search).
	StripPageURLs *bool `json:"stripPageUrls,omitempty"`
	// DropFreeText drops property and trait values that are free text
	// (strings, objects, lists) unless their key is allowlisted; numbers
	// and booleans pass.
	DropFreeText *bool `json:"dropFreeText,omitempty"`
	// Identifiers are the identifiers that may leave Relay: "email",
	// "phone", "external_id" (userId), "anonymous_id". Standard: all;
	// hipaa: email, phone, external_id.
	Identifiers []string `json:"identifiers,omitempty"`
}

// Error is a privacy settings problem; it names the setting.
type Error struct {
	Setting string
	Reason  string
}

func (e *Error) Error() string { return fmt.Sprintf("privacy setting %s: %s", e.Setting, e.Reason) }

// Policy is a compiled Config. The zero Policy and a nil *Policy drop
// nothing. A Policy is immutable and safe for concurrent use.
type Policy struct {
	mode          string
	props, traits map[string]struct{} // nil: no allowlist
	dropIP        bool
	dropUA        bool
	stripPages    bool
	dropFreeText  bool
	ids           [4]bool // indexed like allIdentifiers
}

// Compile checks c and builds its Policy.
func Compile(c Config) (*Policy, error) {
	p := &Policy{mode: c.Mode}
	hipaa := false
	switch c.Mode {
	case "", ModeStandard:
		p.mode = ModeStandard
	case ModeHIPAA:
		hipaa = true
	default:
		return nil, &Error{"privacyMode", fmt.Sprintf("unknown mode %q (want standard or hipaa)", c.Mode)}
	}
	p.dropIP = orDefault(c.DropIP, hipaa)
	p.dropUA = orDefault(c.DropUserAgent, hipaa)
	p.stripPages = orDefault(c.StripPageURLs, hipaa)
	p.dropFreeText = orDefault(c.DropFreeText, hipaa)
	var err error
	if p.props, err = keySet("propertyAllowlist", c.PropertyAllowlist); err != nil {
		return nil, err
	}
	if p.traits, err = keySet("traitAllowlist", c.TraitAllowlist); err != nil {
		return nil, err
	}
	ids := c.Identifiers
	if ids == nil {
		ids = allIdentifiers
		if hipaa {
			ids = allIdentifiers[:3]
		}
	}
	for _, id := range ids {
		i := slices.Index(allIdentifiers, id)
		if i < 0 {
			return nil, &Error{"identifiers", fmt.Sprintf("unknown identifier %q (want email, phone, external_id or anonymous_id)", id)}
		}
		p.ids[i] = true
	}
	return p, nil
}

func orDefault(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

func keySet(setting string, keys []string) (map[string]struct{}, error) {
	if keys == nil {
		return nil, nil
	}
	set := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		if strings.TrimSpace(k) == "" {
			return nil, &Error{setting, "empty key"}
		}
		set[k] = struct{}{}
	}
	return set, nil
}

// Mode is the policy's mode.
func (p *Policy) Mode() string {
	if p == nil || p.mode == "" {
		return ModeStandard
	}
	return p.mode
}

// Active reports whether the policy can drop anything at all.
func (p *Policy) Active() bool {
	if p == nil {
		return false
	}
	return p.props != nil || p.traits != nil || p.dropIP || p.dropUA || p.stripPages || p.dropFreeText ||
		p.ids != [4]bool{true, true, true, true}
}

func (p *Policy) allows(id string) bool {
	return p.ids[slices.Index(allIdentifiers, id)]
}

// identifierTraits are the trait (and property) keys that carry an
// identifier; Config.Identifiers alone decides them.
var identifierTraits = map[string]string{
	"email":        IDEmail,
	"phone":        IDPhone,
	"phoneNumber":  IDPhone,
	"phone_number": IDPhone,
}

// Report says which keys a policy let through and which it dropped, as
// dotted paths (properties.plan, context.ip, userId), each list sorted.
// It never holds values.
type Report struct {
	Sent    []string `json:"sent"`
	Dropped []string `json:"dropped"`
}

// Apply returns ev as the policy lets it leave Relay, and the report. ev
// is not changed: maps the policy changes are copied, the others shared.
// The report's "<path>?query" entries mean the URL at path was sent
// without its query string and fragment.
func (p *Policy) Apply(ev *spec.Event) (spec.Event, Report) {
	out := *ev
	var r Report
	if p == nil {
		p = &Policy{ids: [4]bool{true, true, true, true}}
	}
	p.identifiers(&out, &r)
	if p.stripPages {
		out.Properties, _ = stripPageFields(out.Properties, "properties.", &r)
	}
	out.Properties, _ = p.filterMap(out.Properties, "properties.", p.props, &r)
	out.Traits, _ = p.filterMap(out.Traits, "traits.", p.traits, &r)
	out.Context = p.context(out.Context, &r)
	slices.Sort(r.Sent)
	slices.Sort(r.Dropped)
	return out, r
}

func (p *Policy) identifiers(ev *spec.Event, r *Report) {
	if ev.UserID != "" {
		if p.allows(IDExternalID) {
			r.Sent = append(r.Sent, "userId")
		} else {
			ev.UserID = ""
			r.Dropped = append(r.Dropped, "userId")
		}
	}
	if ev.AnonymousID != "" {
		if p.allows(IDAnonymousID) {
			r.Sent = append(r.Sent, "anonymousId")
		} else {
			ev.AnonymousID = ""
			r.Dropped = append(r.Dropped, "anonymousId")
		}
	}
}

// cow is a copy-on-write map: it copies its source on the first change.
type cow struct {
	src, m map[string]any
	copied bool
}

func (c *cow) copy() {
	if !c.copied {
		c.m = make(map[string]any, len(c.src))
		for k, v := range c.src {
			c.m[k] = v
		}
		c.copied = true
	}
}

func (c *cow) delete(k string) { c.copy(); delete(c.m, k) }
func (c *cow) set(k string, v any) {
	c.copy()
	c.m[k] = v
}

// result is the map and whether it differs from the source; an emptied
// map becomes nil.
func (c *cow) result() (map[string]any, bool) {
	if !c.copied {
		return c.src, false
	}
	if len(c.m) == 0 {
		return nil, true
	}
	return c.m, true
}

// filterMap applies the allowlist, the identifier rule and the free-text
// rule to the top-level keys of m, copying m only when a key goes.
func (p *Policy) filterMap(m map[string]any, prefix string, allow map[string]struct{}, r *Report) (map[string]any, bool) {
	c := cow{src: m, m: m}
	for k, v := range m {
		if p.keep(k, v, allow) {
			r.Sent = append(r.Sent, prefix+k)
			continue
		}
		r.Dropped = append(r.Dropped, prefix+k)
		c.delete(k)
	}
	return c.result()
}

func (p *Policy) keep(key string, v any, allow map[string]struct{}) bool {
	if id, ok := identifierTraits[key]; ok {
		return p.allows(id)
	}
	if allow != nil {
		_, ok := allow[key]
		return ok
	}
	if p.dropFreeText {
		switch v.(type) {
		case float64, bool, nil, int, int64:
			return true
		default:
			return false
		}
	}
	return true
}

// context applies the ip, user agent, page and trait rules to the context.
func (p *Policy) context(ctx map[string]any, r *Report) map[string]any {
	c := cow{src: ctx, m: ctx}
	drop := func(key string, on bool) {
		if _, ok := ctx[key]; !ok {
			return
		}
		if !on {
			r.Sent = append(r.Sent, "context."+key)
			return
		}
		c.delete(key)
		r.Dropped = append(r.Dropped, "context."+key)
	}
	drop("ip", p.dropIP)
	drop("userAgent", p.dropUA)
	drop("userAgentData", p.dropUA)
	if traits, ok := ctx["traits"].(map[string]any); ok {
		if nt, changed := p.filterMap(traits, "context.traits.", p.traits, r); changed {
			if nt == nil {
				c.delete("traits")
			} else {
				c.set("traits", nt)
			}
		}
	}
	if page, ok := ctx["page"].(map[string]any); ok && p.stripPages {
		if np, changed := stripPageFields(page, "context.page.", r); changed {
			c.set("page", np)
		}
	}
	m, _ := c.result()
	return m
}

// stripPageFields removes referrer and search and cuts query strings and
// fragments from url (page objects and page properties share these names).
func stripPageFields(m map[string]any, prefix string, r *Report) (map[string]any, bool) {
	c := cow{src: m, m: m}
	for _, k := range [...]string{"referrer", "search"} {
		if _, ok := m[k]; ok {
			c.delete(k)
			r.Dropped = append(r.Dropped, prefix+k)
		}
	}
	if u, ok := m["url"].(string); ok {
		if s := stripQuery(u); s != u {
			c.set("url", s)
			r.Dropped = append(r.Dropped, prefix+"url?query")
		}
	}
	return c.result()
}

// stripQuery cuts the query string and fragment off a URL (at the first
// '?' or '#', which is where a URL's path ends).
func stripQuery(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i]
	}
	return s
}
