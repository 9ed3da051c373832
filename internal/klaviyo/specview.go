package klaviyo

import "github.com/relaycdp/relay/internal/spec"

// userTraits are the user's traits as spec defines them (identify: traits
// then context.traits; other calls: context.traits). The mapping only
// reads them, so for calls other than identify it reads context.traits in
// place rather than through UserTraits' copy (one map less per event).
func userTraits(ev *spec.Event) map[string]any {
	if ev.Type != spec.TypeIdentify {
		t, _ := ev.Context["traits"].(map[string]any)
		return t
	}
	return ev.UserTraits()
}

// contextKeys are the keys of an event's context the mapping reads with
// settings s (spec.Options.ContextKeys): context.traits (userTraits), ip
// (profile location), externalId (klaviyoProfileID) and, when page calls
// are sent with additionalPageInfo, page. A mapping that reads another
// must add it here: TestStreamMatchesGolden and FuzzTransformStream
// compare the stream, which decodes only these, with Transform, which
// decodes every key.
func contextKeys(s *Settings) []string {
	if s.SendPageAsTrack && s.AdditionalPageInfo {
		return []string{"traits", "ip", "externalId", "page"}
	}
	return []string{"traits", "ip", "externalId"}
}

// destination is spec's integrations filtering for one destination. Its
// options are integrations.<name> over destinations.<name> (Segment
// Classic's wording in seeds 001 and 002): a key integrations sets wins.
func destination(ev *spec.Event, name string) (bool, map[string]any) {
	enabled, opts := ev.Destination(name)
	if !enabled {
		return false, nil
	}
	legacy, _ := getCI(ev.Destinations, name)
	under, ok := legacy.(map[string]any)
	if !ok || len(under) == 0 {
		return true, opts
	}
	merged := make(map[string]any, len(opts)+len(under))
	for k, v := range under {
		merged[k] = v
	}
	for k, v := range opts {
		merged[k] = v
	}
	return true, merged
}

// userTraits is userTraits(m.ev), with an identify's merged traits built
// in one of the stream's reused maps when there are some: spec's
// UserTraits by hand (TestStreamMatchesGolden holds the stream, which
// takes this path, to Transform, which takes UserTraits').
func (m *mapper) userTraits() map[string]any {
	ev := m.ev
	if ev.Type != spec.TypeIdentify || m.maps == nil {
		return userTraits(ev)
	}
	ctx, _ := ev.Context["traits"].(map[string]any)
	if len(ev.Traits) == 0 && len(ctx) == 0 {
		return nil
	}
	out := m.maps.Get()
	for k, v := range ctx {
		out[k] = v
	}
	for k, v := range ev.Traits {
		out[k] = v
	}
	return out
}
