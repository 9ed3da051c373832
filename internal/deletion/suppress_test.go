package deletion

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

func event(userID string, traits map[string]any) *spec.Event {
	return &spec.Event{Type: "track", UserID: userID, Event: "Viewed", Context: map[string]any{"traits": traits}}
}

// TestSuppressAPI: each way in suppresses the user's events (by userId,
// email in any case, phone in any spelling) and no one else's, and each
// way out lifts it.
func TestSuppressAPI(t *testing.T) {
	f, srv := newAPIServer(t)
	sp := f.worker.cfg.Suppressions
	if got := sp.Check(event("u1", nil), "US"); got != "" {
		t.Fatalf("an empty list suppresses: %q", got)
	}
	status, m := call(t, srv, "POST", "/v2/regulations", "del_key",
		`{"regulationType":"suppress","users":[{"userId":"u1"},{"email":"Jo@Example.com"},{"phone":"(500) 555-0006"}]}`)
	if status != 201 || len(m["ids"].([]any)) != 3 || !strings.HasPrefix(m["id"].(string), "sup_") {
		t.Fatalf("suppress: %d %v", status, m)
	}
	ids := m["ids"].([]any)
	for _, tc := range []struct {
		name string
		ev   *spec.Event
		want string
	}{
		{"userId", event("u1", nil), ids[0].(string)},
		{"email in context.traits", event("other", map[string]any{"email": " jo@example.COM"}), ids[1].(string)},
		{"email as userId", event("JO@example.com", nil), ids[1].(string)},
		{"phone, international", &spec.Event{Type: "identify", Traits: map[string]any{"phone": "+1 500-555-0006"}}, ids[2].(string)},
		{"phone, national", event("", map[string]any{"phone_number": "500.555.0006"}), ids[2].(string)},
		{"someone else", event("u2", map[string]any{"email": "ann@example.com", "phone": "+15005550007"}), ""},
		{"anonymous", &spec.Event{Type: "track", AnonymousID: "a1"}, ""},
	} {
		if got := sp.Check(tc.ev, "US"); got != tc.want {
			t.Errorf("%s: Check = %q, want %q", tc.name, got, tc.want)
		}
	}
	// Nothing readable is stored.
	stored, _ := f.store.ListSuppressions(t.Context(), store.SuppressionQuery{})
	if s := fmt.Sprint(stored); strings.Contains(s, "u1") || strings.Contains(strings.ToLower(s), "jo@") || strings.Contains(s, "5550006") {
		t.Errorf("the list keeps identifiers in clear: %s", s)
	}

	status, m = call(t, srv, "GET", "/regulations/"+ids[0].(string), "del_key", "")
	if reg, _ := m["data"].(map[string]any)["regulation"].(map[string]any); status != 200 || reg["overallStatus"] != "FINISHED" {
		t.Errorf("status of a suppression: %d %v", status, m)
	}
	if status, m = call(t, srv, "GET", "/admin/api/suppressions", "adm_token", ""); status != 200 || len(m["suppressions"].([]any)) != 3 {
		t.Errorf("list: %d %v", status, m)
	}

	// Segment: SUPPRESS_ONLY, then UNSUPPRESS.
	status, m = call(t, srv, "POST", "/regulations", "del_key", `{"regulationType":"SUPPRESS_ONLY","subjectType":"USER_ID","subjectIds":["u9"]}`)
	if status != 200 || sp.Check(event("u9", nil), "") == "" {
		t.Fatalf("SUPPRESS_ONLY: %d %v", status, m)
	}
	status, m = call(t, srv, "POST", "/regulations", "del_key", `{"regulationType":"UNSUPPRESS","subjectType":"USER_ID","subjectIds":["u9"]}`)
	if status != 200 || m["data"].(map[string]any)["unsuppressed"].(float64) != 1 || sp.Check(event("u9", nil), "") != "" {
		t.Errorf("UNSUPPRESS: %d %v", status, m)
	}
	// RudderStack: cancel the regulation by id; the admin API by identifier.
	if status, m = call(t, srv, "DELETE", "/v2/regulations/"+ids[0].(string), "adm_token", ""); status != 200 || sp.Check(event("u1", nil), "") != "" {
		t.Errorf("cancel: %d %v", status, m)
	}
	if status, m = call(t, srv, "POST", "/admin/api/suppressions/remove", "adm_token", `{"phone":"+15005550006"}`); status != 200 || m["unsuppressed"].(float64) != 1 {
		t.Errorf("remove by phone: %d %v", status, m)
	}
	if sp.Len() != 1 || sp.Check(event("x", map[string]any{"email": "jo@example.com"}), "") != ids[1].(string) {
		t.Errorf("the email's suppression should be the one left (%d)", sp.Len())
	}
	// No deletion was made by any of these.
	if ds, _ := f.store.ListDeletions(t.Context(), store.DeletionQuery{}); len(ds) != 0 {
		t.Errorf("suppressing alone created %d deletions", len(ds))
	}
}

// TestSuppressWithDelete: the regulation both deletes and suppresses,
// under the deletion's id, for the segment and rudderstack shapes.
func TestSuppressWithDelete(t *testing.T) {
	f, srv := newAPIServer(t)
	sp := f.worker.cfg.Suppressions
	status, m := call(t, srv, "POST", "/v2/regulations", "del_key", `{"regulationType":"suppress_with_delete","users":[{"userId":"u1"}]}`)
	if status != 201 {
		t.Fatalf("%d %v", status, m)
	}
	id := m["id"].(string)
	if got := sp.Check(event("u1", nil), ""); got != id {
		t.Errorf("Check = %q, want the deletion's id %q", got, id)
	}
	status, m = call(t, srv, "POST", "/regulations", "del_key", `{"regulationType":"SUPPRESS_WITH_DELETE_INTERNAL","subjectType":"USER_ID","subjectIds":["u2"]}`)
	if status != 200 || sp.Check(event("u2", nil), "") != m["data"].(map[string]any)["regulateId"] {
		t.Errorf("segment: %d %v", status, m)
	}
	if status, _ := call(t, srv, "POST", "/regulations", "del_key", `{"regulationType":"DELETE_ONLY","subjectType":"USER_ID","subjectIds":["u3"]}`); status != 200 || sp.Check(event("u3", nil), "") != "" {
		t.Errorf("DELETE_ONLY suppressed: %d", status)
	}
	if ds, _ := f.store.ListDeletions(t.Context(), store.DeletionQuery{}); len(ds) != 3 {
		t.Errorf("%d deletions, want 3", len(ds))
	}
	// Cancelling lifts the suppression; the deletion stays.
	if status, m := call(t, srv, "DELETE", "/admin/api/suppressions/"+id, "adm_token", ""); status != 200 || sp.Check(event("u1", nil), "") != "" {
		t.Errorf("cancel: %d %v", status, m)
	}
}

// TestSuppressionsAcrossNodes: a node sees another's suppression after a
// refresh, without restarting, and both hash alike (one key per store).
func TestSuppressionsAcrossNodes(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "state.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := NewSuppressions(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSuppressions(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	ss := []store.Suppression{a.Suppression(store.DeletionSubject{Email: "x@example.com"}, "api")}
	if err := st.AddSuppressions(ctx, ss); err != nil {
		t.Fatal(err)
	}
	ev := event("", map[string]any{"email": "X@example.com"})
	if b.Check(ev, "") != "" {
		t.Fatal("seen before a refresh: the test proves nothing")
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.Check(ev, ""); got != ss[0].Regulation {
		t.Errorf("after a refresh: %q", got)
	}
}

// BenchmarkCheck is the delivery hot path: an event checked against the
// list. "empty" is the usual case (no suppressions); "miss" a list of
// 100,000 userIds, emails and phones and an event of none of them.
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "state.db"), log)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sp, err := NewSuppressions(ctx, st, log)
	if err != nil {
		b.Fatal(err)
	}
	ev := event("user-42", map[string]any{"email": "someone@example.com", "phone": "+15005550006"})
	b.Run("empty", func(b *testing.B) {
		for b.Loop() {
			if sp.Check(ev, "US") != "" {
				b.Fatal("suppressed")
			}
		}
	})
	var ss []store.Suppression
	for i := range 100000 {
		ss = append(ss, sp.Suppression(store.DeletionSubject{UserID: fmt.Sprintf("u%d", i), Email: fmt.Sprintf("e%d@example.com", i),
			Phone: fmt.Sprintf("+1500%07d", i)}, "bench"))
	}
	if err := st.AddSuppressions(ctx, ss); err != nil {
		b.Fatal(err)
	}
	if err := sp.Reload(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("miss-100k", func(b *testing.B) {
		for b.Loop() {
			if sp.Check(ev, "US") != "" {
				b.Fatal("suppressed")
			}
		}
	})
	hit := event("u77", nil)
	b.Run("hit-userId-100k", func(b *testing.B) {
		for b.Loop() {
			if sp.Check(hit, "US") == "" {
				b.Fatal("not suppressed")
			}
		}
	})
}
