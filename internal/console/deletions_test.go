package console

import (
	"context"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/store"
)

type fakeDeletions struct{ last store.DeletionQuery }

func (f *fakeDeletions) ListDeletions(_ context.Context, q store.DeletionQuery) ([]store.Deletion, error) {
	f.last = q
	all := []store.Deletion{
		{ID: 2, State: store.DeletionPending, Origin: "rudderstack", Subject: store.DeletionSubject{Email: "gone@example.com"},
			Attempts: 1, LastError: "klaviyo: 503", NextAt: testNow, CreatedAt: testNow,
			Steps: []store.DeletionStep{{Name: "drop queued events", Done: true, Detail: "2 queued events dropped"}, {Name: "klaviyo deletion: klaviyo"}}},
		{ID: 1, State: store.DeletionDone, Origin: "cli", Subject: store.DeletionSubject{UserID: "sha256:0123456789ab"}, CreatedAt: testNow},
	}
	var out []store.Deletion
	for _, d := range all {
		if q.State == "" || d.State == q.State {
			out = append(out, d)
		}
	}
	return out, nil
}

func TestDeletionsPage(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	_, body := s.get("/admin/deletions")
	if !strings.Contains(body, "not available") {
		t.Error("a console without deletions does not say so")
	}
	fd := &fakeDeletions{}
	tc.Console.deps.Deletions = fd
	_, body = s.get("/admin/deletions")
	for _, want := range []string{`data-id="del_2" data-state="pending"`, "2 queued events dropped", "klaviyo: 503", `data-id="del_1" data-state="done"`, "sha256:0123456789ab", "User deletions"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	_, body = s.get("/admin/deletions?state=done")
	if fd.last.State != store.DeletionDone || strings.Contains(body, "del_2") {
		t.Errorf("state filter: %+v", fd.last)
	}
	_, body = s.get("/admin/deletions?state=bogus")
	if !strings.Contains(body, "Unknown state") {
		t.Error("bogus state accepted")
	}
}

type fakeSuppressions struct{ fakeDeletions }

func (f *fakeSuppressions) ListSuppressions(_ context.Context, q store.SuppressionQuery) ([]store.Suppression, error) {
	return []store.Suppression{{ID: 3, Regulation: "sup_3", Origin: "rudderstack", Email: strings.Repeat("ab", 32), CreatedAt: testNow}}, nil
}

func TestDeletionsPageSuppressions(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	tc.Console.deps.Deletions = &fakeDeletions{}
	if _, body := s.get("/admin/deletions"); strings.Contains(body, "Suppressed users") {
		t.Error("a store without suppressions shows the section")
	}
	tc.Console.deps.Deletions = &fakeSuppressions{}
	_, body := s.get("/admin/deletions")
	for _, want := range []string{"Suppressed users", `data-regulation="sup_3"`, "email <code>hmac:abababababab</code>", "rudderstack"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, strings.Repeat("ab", 32)) {
		t.Error("the page shows the whole hash")
	}
}
