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

// destination is spec's integrations filtering for one destination.
func destination(ev *spec.Event, name string) (bool, map[string]any) {
	return ev.Destination(name)
}
