package deletion

import (
	"testing"

	"github.com/relaycdp/relay/internal/store"
)

func TestMatcher(t *testing.T) {
	for _, tc := range []struct {
		name    string
		subject store.DeletionSubject
		payload string
		want    bool
	}{
		{"userId", store.DeletionSubject{UserID: "u1"}, `{"userId":"u1","type":"track"}`, true},
		{"other userId", store.DeletionSubject{UserID: "u1"}, `{"userId":"u10"}`, false},
		{"numeric userId", store.DeletionSubject{UserID: "42"}, `{"userId":42}`, true},
		{"traits email, any case", store.DeletionSubject{Email: "A@Example.com"}, `{"traits":{"email":"a@example.COM"}}`, true},
		{"context traits email", store.DeletionSubject{Email: "a@example.com"}, `{"context":{"traits":{"email":"a@example.com"}}}`, true},
		{"properties email", store.DeletionSubject{Email: "a@example.com"}, `{"properties":{"email":"a@example.com"}}`, true},
		{"userId is the email", store.DeletionSubject{Email: "a@example.com"}, `{"userId":"A@example.com"}`, true},
		{"phone spelled differently", store.DeletionSubject{Phone: "+1 (500) 555-0006"}, `{"traits":{"phone":"+15005550006"}}`, true},
		{"phone under phoneNumber", store.DeletionSubject{Phone: "+15005550006"}, `{"context":{"traits":{"phoneNumber":"+1 500 555 0006"}}}`, true},
		{"national phone in the destination's region", store.DeletionSubject{Phone: "(500) 555-0006"}, `{"traits":{"phone":"+15005550006"}}`, true},
		{"other phone", store.DeletionSubject{Phone: "+15005550006"}, `{"traits":{"phone":"+15005550007"}}`, false},
		{"anonymous event", store.DeletionSubject{UserID: "u1", Email: "a@example.com"}, `{"anonymousId":"u1"}`, false},
		{"not JSON", store.DeletionSubject{UserID: "u1"}, `u1`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := newMatcher(tc.subject, "US").payload([]byte(tc.payload)); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzMatcher(f *testing.F) {
	f.Add("u1", "a@example.com", "+15005550006", `{"userId":"u1","traits":{"email":"a@example.com","phone":"+15005550006"}}`)
	f.Add("", "", "+", `{"traits":{"phone":7}}`)
	f.Fuzz(func(t *testing.T, user, email, phone, payload string) {
		m := newMatcher(store.DeletionSubject{UserID: user, Email: email, Phone: phone})
		m.payload([]byte(payload)) // must not panic
		if user == "" && email == "" && m.phone == "" && m.payload([]byte(payload)) {
			t.Fatalf("an empty subject matched %q", payload)
		}
	})
}
