package identity

import (
	"slices"
	"testing"

	"github.com/relaycdp/relay/internal/spec"
)

func TestPhone(t *testing.T) {
	for _, tc := range []struct{ in, region, want string }{
		{"+1 (500) 555-0006", "", "+15005550006"},
		{"(500) 555-0006", "US", "+15005550006"},
		{"020 7946 0018", "GB", "+442079460018"},
		{"12-34", "", "+1234"}, // not a number anywhere: its digits
		{"none", "", ""},
		{"", "US", ""},
	} {
		if got := Phone(tc.in, tc.region); got != tc.want {
			t.Errorf("Phone(%q, %q) = %q, want %q", tc.in, tc.region, got, tc.want)
		}
	}
}

func TestOf(t *testing.T) {
	ev := spec.Event{UserID: "u1", Traits: map[string]any{"email": "A@x.io"},
		Context:    map[string]any{"traits": map[string]any{"phone": "+15005550006"}},
		Properties: map[string]any{"$email": "b@x.io", "phone_number": 42}}
	got := Of(&ev)
	if got.UserID != "u1" || !slices.Equal(got.Emails, []string{"A@x.io", "b@x.io"}) || !slices.Equal(got.Phones, []string{"+15005550006"}) {
		t.Errorf("Of = %+v", got)
	}
	if got := Of(&spec.Event{UserID: "Jo@x.io"}); !slices.Equal(got.Emails, []string{"Jo@x.io"}) {
		t.Errorf("an email userId: %+v", got)
	}
}
