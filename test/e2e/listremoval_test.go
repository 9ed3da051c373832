package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// TestListRemoval sends removeFromList through relay serve into the
// simulator (docs/KLAVIYO.md "Per-event options"): an identify, a group and
// a track each end one list membership, the profile's consent stays as it
// was, another member of the same list stays, a known Klaviyo profile id
// (context.externalId klaviyo-profileId) needs no lookup, and a removal for
// a profile on no list changes nothing.
func TestListRemoval(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	s := startSim(t, sim.Faults{})
	dir := t.TempDir()
	cfg := relayConfig(t, dir, s.URL, `{"listId": "LDEF"}`)
	r := startRelay(t, cfg, filepath.Join(dir, "data"), freeAddr(t))
	ctx := context.Background()
	send := func(path, body string) {
		t.Helper()
		status, msg, err := r.post(ctx, path, body)
		if err != nil || status != 200 {
			t.Fatalf("POST %s: %d %s %v", path, status, msg, err)
		}
	}
	profile := func(email string) (sim.ProfileState, bool) {
		for _, p := range s.State().Profiles {
			if p.Email == email {
				return p, true
			}
		}
		return sim.ProfileState{}, false
	}
	lists := func(email string) string {
		p, _ := profile(email)
		l := slices.Clone(p.Lists)
		slices.Sort(l)
		return strings.Join(l, ",")
	}

	// Memberships: rm-1 subscribed to L1 (an explicit list), to LDEF (the
	// default list) and a member of G1 (a group); rm-2 subscribed to L1.
	send("/v1/identify", `{"userId":"rm-1","traits":{"email":"rm-1@example.com"},"integrations":{"Klaviyo":{"listId":"L1"}}}`)
	send("/v1/identify", `{"userId":"rm-1","traits":{"email":"rm-1@example.com"}}`)
	send("/v1/group", `{"userId":"rm-1","groupId":"G1","context":{"traits":{"email":"rm-1@example.com"}}}`)
	send("/v1/identify", `{"userId":"rm-2","traits":{"email":"rm-2@example.com"},"integrations":{"Klaviyo":{"listId":"L1"}}}`)
	testutil.EventuallyWhy(t, 30*time.Second, "memberships", func() (bool, string) {
		got := lists("rm-1@example.com") + " / " + lists("rm-2@example.com")
		return got == "G1,L1,LDEF / L1", got
	})
	before, _ := profile("rm-1@example.com")
	rm2, _ := profile("rm-2@example.com")
	if marketing(before) != "SUBSCRIBED" {
		t.Fatalf("rm-1 not subscribed before the removals: %+v", before.Subscriptions)
	}
	lookups := s.State().Requests["GET /api/profiles"]

	// Removals: identify (integrations, its list), group (traits, groupId),
	// track (integrations, the listId setting), and rm-2 by its Klaviyo
	// profile id from L1 named by the trait.
	send("/v1/identify", `{"userId":"rm-1","traits":{"email":"rm-1@example.com"},"integrations":{"Klaviyo":{"listId":"L1","removeFromList":true}}}`)
	send("/v1/group", `{"userId":"rm-1","groupId":"G1","traits":{"removeFromList":true},"context":{"traits":{"email":"rm-1@example.com"}}}`)
	send("/v1/track", `{"userId":"rm-1","event":"Left Newsletter","integrations":{"Klaviyo":{"removeFromList":true}},"context":{"traits":{"email":"rm-1@example.com"}}}`)
	testutil.EventuallyWhy(t, 30*time.Second, "rm-1 on no list", func() (bool, string) {
		got := lists("rm-1@example.com")
		return got == "", got
	})
	if got := lists("rm-2@example.com"); got != "L1" {
		t.Errorf("rm-2's lists after rm-1's removals = %q, want L1 (another member stays)", got)
	}
	after, _ := profile("rm-1@example.com")
	if marketing(after) != "SUBSCRIBED" {
		t.Errorf("removal changed consent: %+v", after.Subscriptions)
	}
	if n := s.State().Requests["DELETE /api/lists/{id}/relationships/profiles"]; n != 3 {
		t.Errorf("list relationship DELETEs = %d, want 3", n)
	}
	if n := s.State().Requests["GET /api/profiles"] - lookups; n < 1 {
		t.Errorf("profile lookups for the removals = %d, want at least 1 (by email)", n)
	}

	lookups = s.State().Requests["GET /api/profiles"]
	send("/v1/track", fmt.Sprintf(`{"userId":"rm-2","event":"Left L1","integrations":{"Klaviyo":{"removeFromList":"L1"}},
	  "context":{"externalId":[{"type":"klaviyo-profileId","id":%q}],"traits":{"email":"rm-2@example.com"}}}`, rm2.ID))
	// A profile Klaviyo knows on no list: the removal is delivered and
	// changes nothing.
	send("/v1/track", `{"userId":"rm-3","event":"Left L1","integrations":{"Klaviyo":{"removeFromList":"L1"}},"context":{"traits":{"email":"rm-3@example.com"}}}`)
	testutil.EventuallyWhy(t, 30*time.Second, "rm-2 removed from L1 and rm-3's event delivered", func() (bool, string) {
		st := s.State()
		metrics := 0
		for _, e := range st.Events {
			if e.Metric == "Left L1" {
				metrics++
			}
		}
		got := lists("rm-2@example.com")
		return got == "" && metrics == 2 && len(st.Lists["L1"]) == 0, fmt.Sprintf("rm-2 lists %q, Left L1 events %d, L1 %v", got, metrics, st.Lists["L1"])
	})
	if n := s.State().Requests["GET /api/profiles"] - lookups; n > 1 {
		t.Errorf("profile lookups = %d, want at most 1 (rm-3's; rm-2 came with its Klaviyo profile id)", n)
	}
	if st := s.State(); st.Rejected != 0 {
		t.Errorf("the simulator rejected %d request(s): %+v", st.Rejected, st.Rejections)
	}
}

// marketing is a profile's email marketing consent, "" when it has none.
func marketing(p sim.ProfileState) string {
	if p.Subscriptions.Email == nil || p.Subscriptions.Email.Marketing == nil {
		return ""
	}
	return p.Subscriptions.Email.Marketing.Consent
}
