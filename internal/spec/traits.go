package spec

import "strings"

// UserTraits returns the traits that describe the user, as a new map
// (nested values are shared with e; nil when there are none):
//
//   - identify: the call's traits, then context.traits filling the keys
//     traits lacks (traits win). RudderStack's HTTP API sample sends identify
//     traits only in context.traits, and rudder-sdk-node copies them there.
//   - every other type: context.traits only. A group call's traits describe
//     the group, not the user, and track/page/screen have no traits of their
//     own.
func (e *Event) UserTraits() map[string]any {
	ctx, _ := e.Context["traits"].(map[string]any)
	if e.Type != TypeIdentify {
		if len(ctx) == 0 {
			return nil
		}
		out := make(map[string]any, len(ctx))
		for k, v := range ctx {
			out[k] = v
		}
		return out
	}
	if len(e.Traits) == 0 && len(ctx) == 0 {
		return nil
	}
	out := make(map[string]any, len(e.Traits)+len(ctx))
	for k, v := range ctx {
		out[k] = v
	}
	for k, v := range e.Traits {
		out[k] = v
	}
	return out
}

// userTrait is UserTraits()[name] without building the map.
func (e *Event) userTrait(name string) (any, bool) {
	if e.Type == TypeIdentify {
		if v, ok := e.Traits[name]; ok {
			return v, true
		}
	}
	ctx, _ := e.Context["traits"].(map[string]any)
	v, ok := ctx[name]
	return v, ok
}

// Key is the ordering key the queue keeps events of one person in order
// by: userId, else anonymousId, else the user traits' email (trimmed and
// lower-cased, as Klaviyo matches emails case-insensitively), else their
// phone (trimmed). "" when the event names nobody. The key only groups
// events for ordering; it is not an identity for the destination.
func (e *Event) Key() string {
	if e.UserID != "" {
		return e.UserID
	}
	if e.AnonymousID != "" {
		return e.AnonymousID
	}
	if v, ok := e.userTrait("email"); ok {
		if s, ok := v.(string); ok {
			if s = strings.TrimSpace(s); s != "" {
				return strings.ToLower(s)
			}
		}
	}
	if v, ok := e.userTrait("phone"); ok {
		if s, ok := v.(string); ok {
			return strings.TrimSpace(s)
		}
	}
	return ""
}
