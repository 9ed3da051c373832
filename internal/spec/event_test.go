package spec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUserTraits(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want map[string]any
	}{
		{"identify: traits win, context.traits fill",
			Event{Type: TypeIdentify, Traits: obj(`{"email":"t@x.io","plan":"pro"}`),
				Context: obj(`{"traits":{"email":"c@x.io","phone":"+1555"},"ip":"1.1.1.1"}`)},
			obj(`{"email":"t@x.io","plan":"pro","phone":"+1555"}`)},
		{"identify: only context.traits (RudderStack HTTP API sample)",
			Event{Type: TypeIdentify, Context: obj(`{"traits":{"email":"c@x.io"}}`)},
			obj(`{"email":"c@x.io"}`)},
		{"identify: only traits",
			Event{Type: TypeIdentify, Traits: obj(`{"email":"t@x.io"}`)},
			obj(`{"email":"t@x.io"}`)},
		{"group: traits describe the group",
			Event{Type: TypeGroup, Traits: obj(`{"name":"Acme"}`), Context: obj(`{"traits":{"email":"c@x.io"}}`)},
			obj(`{"email":"c@x.io"}`)},
		{"track: context.traits",
			Event{Type: TypeTrack, Context: obj(`{"traits":{"email":"c@x.io"}}`)},
			obj(`{"email":"c@x.io"}`)},
		{"track with traits of its own ignores them",
			Event{Type: TypeTrack, Traits: obj(`{"email":"t@x.io"}`)},
			nil},
		{"context.traits not an object is ignored",
			Event{Type: TypeIdentify, Traits: obj(`{"a":1}`), Context: obj(`{"traits":"x"}`)},
			obj(`{"a":1}`)},
		{"none", Event{Type: TypePage}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.ev.UserTraits()
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("UserTraits (-want +got):\n%s", d)
			}
			if got != nil {
				got["added"] = true // a new map: the event must not change
				if _, leaked := tc.ev.Traits["added"]; leaked {
					t.Error("UserTraits returned the event's own traits map")
				}
				if ct, _ := tc.ev.Context["traits"].(map[string]any); ct != nil {
					if _, leaked := ct["added"]; leaked {
						t.Error("UserTraits returned the event's context.traits map")
					}
				}
			}
		})
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"userId first", Event{Type: TypeTrack, UserID: "u", AnonymousID: "a", Context: obj(`{"traits":{"email":"e@x.io"}}`)}, "u"},
		{"then anonymousId", Event{Type: TypeTrack, AnonymousID: "a", Context: obj(`{"traits":{"email":"e@x.io"}}`)}, "a"},
		{"then email, normalised", Event{Type: TypeIdentify, Traits: obj(`{"email":" Jane@Example.COM ","phone":"+1555"}`)}, "jane@example.com"},
		{"email from context.traits", Event{Type: TypeTrack, Context: obj(`{"traits":{"email":"e@x.io"}}`)}, "e@x.io"},
		{"identify traits email wins over context.traits", Event{Type: TypeIdentify, Traits: obj(`{"email":"t@x.io"}`), Context: obj(`{"traits":{"email":"c@x.io"}}`)}, "t@x.io"},
		{"group traits are not the user's", Event{Type: TypeGroup, Traits: obj(`{"email":"acme@x.io"}`)}, ""},
		{"then phone", Event{Type: TypeIdentify, Traits: obj(`{"email":"","phone":" +15555550100 "}`)}, "+15555550100"},
		{"email not a string", Event{Type: TypeIdentify, Traits: obj(`{"email":5,"phone":"+1555"}`)}, "+1555"},
		{"nobody", Event{Type: TypeTrack}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.ev.Key(); got != tc.want {
				t.Errorf("Key() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDestination(t *testing.T) {
	tests := []struct {
		name         string
		integrations string
		dest         string
		wantEnabled  bool
		wantOpts     map[string]any
	}{
		{"no integrations", `{}`, "Klaviyo", true, nil},
		{"All true", `{"All":true}`, "Klaviyo", true, nil},
		{"named false", `{"Klaviyo":false}`, "Klaviyo", false, nil},
		{"named true", `{"Klaviyo":true}`, "Klaviyo", true, nil},
		{"All false, name absent", `{"All":false,"Mixpanel":true}`, "Klaviyo", false, nil},
		{"All false, name true", `{"All":false,"Klaviyo":true}`, "Klaviyo", true, nil},
		{"All false, name object", `{"All":false,"Klaviyo":{"listId":"L1","confirmOptin":false}}`, "Klaviyo", true, obj(`{"listId":"L1","confirmOptin":false}`)},
		{"object without All", `{"Klaviyo":{"listId":"L1"}}`, "Klaviyo", true, obj(`{"listId":"L1"}`)},
		{"All true, name false", `{"All":true,"Klaviyo":false}`, "Klaviyo", false, nil},
		{"lower-case key", `{"klaviyo":false}`, "Klaviyo", false, nil},
		{"upper-case key with options", `{"All":false,"KLAVIYO":{"listId":"L"}}`, "Klaviyo", true, obj(`{"listId":"L"}`)},
		{"any case of the name asked for", `{"Klaviyo":false}`, "klaviyo", false, nil},
		{"lower-case all", `{"all":false}`, "Klaviyo", false, nil},
		{"exact case wins", `{"Klaviyo":true,"klaviyo":false}`, "Klaviyo", true, nil},
		{"among other casings false wins", `{"klaviyo":{"listId":"a"},"KLAVIYO":false}`, "Klaviyo", false, nil},
		{"among other casings the first object", `{"klaviyo":{"listId":"b"},"KLAVIYO":{"listId":"a"},"KlaViyo":true}`, "Klaviyo", true, obj(`{"listId":"a"}`)},
		{"non-boolean value is ignored", `{"All":false,"Klaviyo":"yes"}`, "Klaviyo", false, nil},
		{"null value is ignored", `{"Klaviyo":null}`, "Klaviyo", true, nil},
		{"other destinations do not matter", `{"Segment.io":true,"Mixpanel":false}`, "Klaviyo", true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := Event{Type: TypeTrack, Integrations: obj(tc.integrations)}
			enabled, opts := ev.Destination(tc.dest)
			if enabled != tc.wantEnabled {
				t.Errorf("enabled = %v, want %v", enabled, tc.wantEnabled)
			}
			if d := cmp.Diff(tc.wantOpts, opts); d != "" {
				t.Errorf("opts (-want +got):\n%s", d)
			}
		})
	}
}
