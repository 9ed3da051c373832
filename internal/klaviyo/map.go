package klaviyo

import (
	"strings"

	"github.com/relaycdp/relay/internal/spec"
)

// Result is what one event maps to.
type Result struct {
	// Ops are the operations, in the order they must be sent (a profile
	// import before its subscription; Placed Order before its Ordered
	// Product events). Ops of one event may share one *Profile, and may
	// share maps with the event: treat both as read-only.
	Ops []Op
	// Skipped says why an event maps to nothing (filtered, or a type the
	// settings drop); Ops is then empty.
	Skipped string
	// Warnings are problems that did not stop the mapping (a dropped phone
	// number, an ignored legacy consent channel, …).
	Warnings []string
	// Failures are parts of the event that could not be mapped while the
	// rest was: an order's product without an id fails only its Ordered
	// Product event (DESIGN.md §6.3). Field names the part.
	Failures []*MapError
}

// MapError is an event that cannot be mapped: which field, and why.
type MapError struct {
	Code    string // one of the Code* constants
	Field   string // JSON path in the event, e.g. "properties.revenue"
	Message string // a sentence naming the field and the reason
}

func (e *MapError) Error() string { return e.Message }

// MapError codes.
const (
	CodeMissingField      = "missing_field"
	CodeInvalidType       = "invalid_type"
	CodeInvalidValue      = "invalid_value"
	CodeInvalidPhone      = "invalid_phone"
	CodeMissingIdentifier = "missing_identifier"
	CodeMissingPublicKey  = "missing_public_key"
	CodeMissingPrivateKey = "missing_private_key"
	CodeUnsupportedType   = "unsupported_type"
)

func typeErr(field, want string, v any) *MapError {
	return &MapError{Code: CodeInvalidType, Field: field,
		Message: field + " must be " + want + ", got " + jsonType(v)}
}

// mapper holds one Map call's inputs and accumulated warnings.
type mapper struct {
	ev *spec.Event
	s  *Settings
	// opts is integrations.Klaviyo when it is an object.
	opts map[string]any
	// patch is integrations.Klaviyo.fieldsTo{Unset,Append,Unappend} as
	// profile meta; patchFields are the trait names it covers.
	patch       *ProfileMeta
	patchFields map[string]bool
	warnings    []string
	// region caches phoneRegion (it may warn, so it runs once).
	region     string
	regionDone bool
	// phones, when not nil, remembers phone numbers normalised by earlier
	// events of the same stream.
	phones *phoneCache
	// maps, when not nil, lends the maps the operations are built in.
	maps *spec.Maps
	// failures are parts of the event that could not be mapped while the
	// rest was (one product of an order).
	failures []*MapError
}

func (m *mapper) warn(w string) { m.warnings = append(m.warnings, w) }

// Map maps one normalised event to Klaviyo operations (DESIGN.md §6). It
// is pure: no I/O, no clock. An error is always a *MapError.
func Map(ev *spec.Event, s Settings) (Result, error) {
	return mapEvent(ev, s, nil)
}

// shared is what the events of one stream share.
type shared struct {
	phones phoneCache
	// maps lends the maps an event's operations are built in; the stream
	// takes them back once the event's outcome is written.
	maps *spec.Maps
}

// newMap is a map for an operation, of about n entries.
func (m *mapper) newMap(n int) map[string]any {
	if m.maps != nil {
		return m.maps.Get()
	}
	return make(map[string]any, n)
}

// mapEvent is Map with what the events of a stream share (nil: nothing).
func mapEvent(ev *spec.Event, s Settings, sh *shared) (Result, error) {
	if ev == nil {
		return Result{}, &MapError{Code: CodeMissingField, Message: "no event"}
	}
	enabled, opts := destination(ev, "Klaviyo")
	if !enabled {
		return Result{Skipped: disabledReason(ev)}, nil
	}
	m := &mapper{ev: ev, s: &s, opts: opts}
	if sh != nil {
		m.phones, m.maps = &sh.phones, sh.maps
	}
	ops, skipped, err := m.dispatch()
	if err != nil {
		return Result{}, err
	}
	if s.ClientOnly() {
		ops = m.clientOps(ops)
	}
	return Result{Ops: ops, Skipped: skipped, Warnings: m.warnings, Failures: m.failures}, nil
}

func (m *mapper) dispatch() ([]Op, string, error) {
	switch m.ev.Type {
	case spec.TypeIdentify:
		ops, err := m.identify()
		return ops, "", err
	case spec.TypeTrack:
		return m.track()
	case spec.TypeScreen:
		ops, err := m.screen()
		return ops, "", err
	case spec.TypePage:
		if !m.s.SendPageAsTrack {
			return nil, "page calls are not sent to Klaviyo server-side (sendPageAsTrack is off)", nil
		}
		ops, err := m.page()
		return ops, "", err
	case spec.TypeGroup:
		ops, err := m.group()
		return ops, "", err
	case spec.TypeAlias:
		return nil, "alias calls are not sent: Relay does not merge Klaviyo profiles yet", nil
	case "":
		return nil, "", &MapError{Code: CodeMissingField, Field: "type", Message: "type is missing"}
	}
	return nil, "", &MapError{Code: CodeUnsupportedType, Field: "type",
		Message: "type " + quoteShort(m.ev.Type) + " is not supported (want identify, track, page, screen, group or alias)"}
}

// disabledReason explains why integrations filtering dropped an event.
func disabledReason(ev *spec.Event) string {
	if v, ok := getCI(ev.Integrations, "Klaviyo"); ok && v == false {
		return "integrations.Klaviyo is false"
	}
	if v, ok := getCI(ev.Integrations, "All"); ok && v == false {
		return "integrations.All is false and integrations.Klaviyo is not enabled"
	}
	return "integrations filtering disabled Klaviyo for this event"
}

// identify: POST /api/profile-import, then the list operation (§6.1).
func (m *mapper) identify() ([]Op, error) {
	traits := m.userTraits()
	if err := m.readPatch(traits); err != nil {
		return nil, err
	}
	p, err := m.buildProfile(profileInput{traits: traits, field: "traits"})
	if err != nil {
		return nil, err
	}
	if err := m.requireEmailIfEnforced(p); err != nil {
		return nil, err
	}
	a := &p.Attributes
	ops := make([]Op, 0, 2)
	switch {
	case a.Email != "" || a.PhoneNumber != "" || a.ExternalID != "" || p.ID != "":
		ops = append(ops, Op{Kind: OpProfile, Profile: p})
	case m.ev.AnonymousID != "" && m.s.FallbackOnAnonymousID:
		// /api/profile-import takes no anonymous_id (revision
		// 2025-10-15); the client API does, with the public key.
		if m.s.PublicAPIKey == "" {
			return nil, &MapError{Code: CodeMissingPublicKey, Field: "anonymousId",
				Message: "identify has only an anonymousId: /api/profile-import takes no anonymous_id and no publicApiKey is set for /client/profiles"}
		}
		a.AnonymousID = m.ev.AnonymousID
		ops = append(ops, Op{Kind: OpClientProfile, Profile: p})
	default:
		return nil, m.noIdentifierErr("identify")
	}
	listOps, err := m.identifyList(p, traits)
	if err != nil {
		return nil, err
	}
	return append(ops, listOps...), nil
}

// requireEmailIfEnforced: with enforceEmailAsPrimary an event needs an
// email or a phone number (seeds 001, 004).
func (m *mapper) requireEmailIfEnforced(p *Profile) error {
	if !m.s.EnforceEmailAsPrimary || p.Attributes.Email != "" || p.Attributes.PhoneNumber != "" {
		return nil
	}
	return &MapError{Code: CodeMissingIdentifier, Field: "traits.email",
		Message: "enforceEmailAsPrimary is on and the " + m.ev.Type + " has no email or phone number (traits.email, properties.email, traits.phone)"}
}

func (m *mapper) noIdentifierErr(what string) *MapError {
	msg := what + " has no userId, email or phone number"
	if m.ev.AnonymousID != "" {
		msg += " (it has an anonymousId: enable fallbackOnAnonymousId to identify the profile by it)"
	}
	return &MapError{Code: CodeMissingIdentifier, Field: "userId", Message: msg}
}

// readPatch reads integrations.Klaviyo.fieldsToUnset / fieldsToAppend /
// fieldsToUnappend (RudderStack): lists of trait names whose values are
// unset, appended to or removed from list properties instead of being
// set. An object {"key": value} is also accepted for append/unappend.
func (m *mapper) readPatch(traits map[string]any) error {
	if m.opts == nil {
		return nil
	}
	var pp PatchProperties
	fields := map[string]bool{}
	if v, ok := m.opt("fieldsToUnset"); ok {
		names, ok := stringList(v, true)
		if !ok {
			return typeErr("integrations.Klaviyo.fieldsToUnset", "a list of property names", v)
		}
		for _, n := range names {
			if n != "" {
				pp.Unset = append(pp.Unset, n)
				fields[n] = true
			}
		}
	}
	for _, f := range []struct {
		key string
		dst *map[string]any
	}{{"fieldsToAppend", &pp.Append}, {"fieldsToUnappend", &pp.Unappend}} {
		v, ok := m.opt(f.key)
		if !ok {
			continue
		}
		out := map[string]any{}
		if obj, isObj := v.(map[string]any); isObj {
			for k, val := range obj {
				out[k] = val
				fields[k] = true
			}
		} else {
			names, ok := stringList(v, true)
			if !ok {
				return typeErr("integrations.Klaviyo."+f.key, "a list of property names", v)
			}
			for _, n := range names {
				if val, ok := present(traits, n); ok {
					out[n] = val
					fields[n] = true
				}
			}
		}
		if len(out) > 0 {
			*f.dst = out
		}
	}
	if pp.Unset != nil || pp.Append != nil || pp.Unappend != nil {
		m.patch = &ProfileMeta{PatchProperties: &pp}
		m.patchFields = fields
	}
	return nil
}

// opt reads integrations.Klaviyo.<key> (key case-insensitive), ignoring null.
func (m *mapper) opt(key string) (any, bool) {
	v, ok := getCI(m.opts, key)
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

// group: the list is groupId; traits.subscribe true/false subscribes or
// unsubscribes, absent adds to the list (§6.2, seed 004).
func (m *mapper) group() ([]Op, error) {
	ev := m.ev
	listID := strings.TrimSpace(ev.GroupID)
	if listID == "" {
		return nil, &MapError{Code: CodeMissingField, Field: "groupId", Message: "groupId is required: it is the Klaviyo list id"}
	}
	user := m.userTraits()
	if err := m.readPatch(user); err != nil {
		return nil, err
	}
	// The user's identifiers: context.traits, else the group call's own
	// traits (RudderStack's group examples put email there).
	p, err := m.buildProfile(profileInput{traits: user, field: "context.traits", props: ev.Traits, propsField: "traits"})
	if err != nil {
		return nil, err
	}
	if err := m.requireEmailIfEnforced(p); err != nil {
		return nil, err
	}
	flag, flagField, err := m.subscribeFlag(ev.Traits, "traits")
	if err != nil {
		return nil, err
	}
	var ops []Op
	a := &p.Attributes
	if a.Email != "" || a.PhoneNumber != "" || a.ExternalID != "" || p.ID != "" {
		// context.traits (city, zip, plan, …) reach the profile as an
		// identify's traits would (seed 004 group example).
		ops = append(ops, Op{Kind: OpProfile, Profile: p})
	}
	plan := listPlan{
		listID: listID, field: "groupId", explicit: true, addWhenAbsent: true,
		flag: flag, flagField: flagField, idField: "context.traits", idAlso: "traits",
		// consent overrides: group traits, then the user's traits
		traitSources: []traitSource{{ev.Traits, "traits"}, {user, "context.traits"}},
	}
	rm, err := m.removal(ev.Traits, "traits")
	if err != nil {
		return nil, err
	}
	var listOps []Op
	if rm.field != "" {
		if flag != nil {
			return nil, &MapError{Code: CodeInvalidValue, Field: rm.field,
				Message: rm.field + " and " + flagField + " are both set: a group call either removes the profile from the list or changes its subscription"}
		}
		if rm.listID != "" {
			plan.listID = rm.listID
		}
		listOps, err = m.listRemoveOps(p, plan, rm.field)
	} else {
		listOps, err = m.listOps(p, plan)
	}
	if err != nil {
		return nil, err
	}
	return append(ops, listOps...), nil
}
