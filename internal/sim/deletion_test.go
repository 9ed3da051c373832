package sim

import (
	"testing"
)

func deletionBody(profile map[string]any) map[string]any {
	data := map[string]any{"type": "profile", "attributes": map[string]any{}}
	for k, v := range profile {
		if k == "id" {
			data["id"] = v
		} else {
			data["attributes"].(map[string]any)[k] = v
		}
	}
	return map[string]any{"data": map[string]any{"type": "data-privacy-deletion-job",
		"attributes": map[string]any{"profile": map[string]any{"data": data}}}}
}

func TestDeletionJob(t *testing.T) {
	h := newHarness(t, Config{})
	seed := func() (emailID, phoneID string) {
		h.sim.Reset()
		h.must(call{method: "POST", path: "/api/events", body: eventBody("Viewed", "e1", profileAttrs("email", "Gone@Example.com", "external_id", "u1"))}, 202)
		h.must(call{method: "POST", path: "/api/events", body: eventBody("Viewed", "e2", profileAttrs("email", "gone@example.com"))}, 202)
		h.must(call{method: "POST", path: "/api/events", body: eventBody("Viewed", "e3", profileAttrs("phone_number", "+15005550006"))}, 202)
		h.must(call{method: "POST", path: "/api/events", body: eventBody("Viewed", "e4", profileAttrs("email", "stay@example.com"))}, 202)
		st := h.sim.State()
		return st.profileBy("external_id", "u1").ID, st.profileBy("phone_number", "+15005550006").ID
	}
	for _, tc := range []struct {
		name       string
		by         func(emailID, phoneID string) map[string]any
		goneEvents []string // unique ids that must be gone
	}{
		{"email, case-insensitively", func(string, string) map[string]any { return map[string]any{"email": "GONE@example.com"} }, []string{"e1", "e2"}},
		{"phone", func(string, string) map[string]any { return map[string]any{"phone_number": "+15005550006"} }, []string{"e3"}},
		{"profile id", func(id, _ string) map[string]any { return map[string]any{"id": id} }, []string{"e1", "e2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emailID, phoneID := seed()
			h.must(call{method: "POST", path: "/api/data-privacy-deletion-jobs", body: deletionBody(tc.by(emailID, phoneID))}, 202)
			st := h.sim.State()
			if len(st.Profiles) != 2 || st.profileBy("email", "stay@example.com") == nil {
				t.Errorf("profiles after deletion: %+v", st.Profiles)
			}
			left := map[string]bool{}
			for _, e := range st.Events {
				left[e.UniqueID] = true
			}
			for _, uid := range tc.goneEvents {
				if left[uid] {
					t.Errorf("event %s survived the deletion", uid)
				}
			}
			if !left["e4"] || len(st.Events) != 4-len(tc.goneEvents) {
				t.Errorf("events left: %v", left)
			}
			if len(st.Deleted) != 1 || st.Deleted[0].Events != len(tc.goneEvents) {
				t.Errorf("deleted: %+v", st.Deleted)
			}
		})
	}

	t.Run("identifiers are free again", func(t *testing.T) {
		seed()
		h.must(call{method: "POST", path: "/api/data-privacy-deletion-jobs", body: deletionBody(map[string]any{"email": "gone@example.com"})}, 202)
		// The same unique_id is a new event of a new profile, not a duplicate.
		h.must(call{method: "POST", path: "/api/events", body: eventBody("Viewed", "e1", profileAttrs("email", "gone@example.com", "external_id", "u1"))}, 202)
		st := h.sim.State()
		p := st.profileBy("email", "gone@example.com")
		if p == nil || p.ID == st.Deleted[0].ID || len(st.Events) != 3 {
			t.Errorf("re-created profile %+v, events %d", p, len(st.Events))
		}
	})

	t.Run("no match is accepted", func(t *testing.T) {
		seed()
		h.must(call{method: "POST", path: "/api/data-privacy-deletion-jobs", body: deletionBody(map[string]any{"email": "nobody@example.com"})}, 202)
		if st := h.sim.State(); len(st.Profiles) != 3 || len(st.Deleted) != 0 {
			t.Errorf("profiles %d, deleted %v", len(st.Profiles), st.Deleted)
		}
	})

	for _, tc := range []struct {
		name    string
		body    any
		pointer string
	}{
		{"two identifiers", deletionBody(map[string]any{"email": "a@example.com", "phone_number": "+15005550006"}), "/data/attributes/profile/data"},
		{"no identifier", deletionBody(map[string]any{}), "/data/attributes/profile/data"},
		{"bad email", deletionBody(map[string]any{"email": "not-an-email"}), "/data/attributes/profile/data/attributes/email"},
		{"wrong type", map[string]any{"data": map[string]any{"type": "profile-deletion", "attributes": map[string]any{
			"profile": map[string]any{"data": map[string]any{"type": "profile", "attributes": map[string]any{"email": "a@example.com"}}}}}}, "/data/type"},
		{"missing profile", map[string]any{"data": map[string]any{"type": "data-privacy-deletion-job", "attributes": map[string]any{}}}, "/data/attributes/profile"},
		{"unknown attribute", deletionBody(map[string]any{"email": "a@example.com", "external_id": "u1"}), "/data/attributes/profile/data/attributes/external_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed()
			a := h.must(call{method: "POST", path: "/api/data-privacy-deletion-jobs", body: tc.body}, 400)
			if got := a.errors(t)[0].Source; got == nil || got.Pointer != tc.pointer {
				t.Errorf("pointer %+v, want %s: %s", got, tc.pointer, a.body)
			}
			if st := h.sim.State(); len(st.Profiles) != 3 {
				t.Errorf("a rejected request deleted profiles: %d left", len(st.Profiles))
			}
		})
	}
}
