package storetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/store"
)

// testDeletionLifecycle: requests are stored pending, come back due in
// order, keep their steps across updates, and a done request no longer
// holds the user's identifiers.
func testDeletionLifecycle(t *testing.T, s store.Store) {
	ctx := context.Background()
	ds := []store.Deletion{
		{Subject: store.DeletionSubject{UserID: "u1", Email: "A@Example.com"}, Origin: "rudderstack", Dests: []string{"klaviyo"}},
		{Subject: store.DeletionSubject{Phone: "+15005550006"}, Origin: "cli", LocalOnly: true},
	}
	if err := s.CreateDeletions(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if ds[0].ID == 0 || ds[1].ID <= ds[0].ID || ds[0].State != store.DeletionPending || ds[0].CreatedAt.IsZero() {
		t.Fatalf("created: %+v", ds)
	}
	got, err := s.Deletion(ctx, ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != ds[0].Subject || got.Origin != "rudderstack" || len(got.Dests) != 1 || got.Dests[0] != "klaviyo" || got.LocalOnly {
		t.Errorf("read back %+v", got)
	}
	if g, _ := s.Deletion(ctx, ds[1].ID); !g.LocalOnly || g.Dests != nil {
		t.Errorf("read back %+v", g)
	}

	due, err := s.DueDeletions(ctx, time.Now(), 10)
	if err != nil || len(due) != 2 || due[0].ID != ds[0].ID {
		t.Fatalf("due = %+v, %v", due, err)
	}
	// Running survives (a crashed worker's request is due again); a retry
	// later is not due yet.
	got.State, got.Attempts, got.Steps = store.DeletionRunning, 1, []store.DeletionStep{{Name: "queue", Done: true, Detail: "3 dropped"}}
	if err := s.UpdateDeletion(ctx, got); err != nil {
		t.Fatal(err)
	}
	second := due[1]
	second.State, second.Attempts, second.LastError, second.NextAt = store.DeletionPending, 1, "klaviyo: 503", time.Now().Add(time.Hour)
	if err := s.UpdateDeletion(ctx, second); err != nil {
		t.Fatal(err)
	}
	due, err = s.DueDeletions(ctx, time.Now(), 10)
	if err != nil || len(due) != 1 || due[0].ID != ds[0].ID || due[0].State != store.DeletionRunning ||
		len(due[0].Steps) != 1 || !due[0].Steps[0].Done || due[0].Steps[0].Detail != "3 dropped" {
		t.Fatalf("due after updates = %+v, %v", due, err)
	}
	if due, _ := s.DueDeletions(ctx, time.Now().Add(2*time.Hour), 10); len(due) != 2 {
		t.Errorf("the retry is not due after its NextAt: %+v", due)
	}

	got.State = store.DeletionDone
	if err := s.UpdateDeletion(ctx, got); err != nil {
		t.Fatal(err)
	}
	done, _ := s.Deletion(ctx, got.ID)
	if done.State != store.DeletionDone || strings.Contains(done.Subject.Email+done.Subject.UserID, "xample") ||
		done.Subject.UserID == "u1" || !strings.HasPrefix(done.Subject.Email, "sha256:") {
		t.Errorf("a done request keeps the identifiers: %+v", done.Subject)
	}
	list, err := s.ListDeletions(ctx, store.DeletionQuery{State: store.DeletionDone})
	if err != nil || len(list) != 1 || list[0].ID != got.ID {
		t.Errorf("list done = %+v, %v", list, err)
	}
	if list, _ := s.ListDeletions(ctx, store.DeletionQuery{}); len(list) != 2 || list[0].ID != ds[1].ID {
		t.Errorf("list is not newest first: %+v", list)
	}
}

func testDeletionInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	err := s.CreateDeletions(ctx, []store.Deletion{{Subject: store.DeletionSubject{UserID: "ok"}}, {Origin: "api"}})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "deletion 1") {
		t.Errorf("empty subject: %v", err)
	}
	if list, _ := s.ListDeletions(ctx, store.DeletionQuery{}); len(list) != 0 {
		t.Errorf("a rejected call stored %d requests", len(list))
	}
	if _, err := s.Deletion(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if err := s.UpdateDeletion(ctx, store.Deletion{ID: 999, State: store.DeletionDone}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update unknown: %v", err)
	}
	if err := s.UpdateDeletion(ctx, store.Deletion{ID: 1, State: "gone"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bad state: %v", err)
	}
	if _, err := s.ForgetUser(ctx, store.DeletionSubject{}, nil, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("forget nobody: %v", err)
	}
}

// testForgetUser: the user's log rows (by userId, email in any case, or
// messageId) and matching dead letters go; everyone else's stay.
func testForgetUser(t *testing.T, s store.Store) {
	ctx := context.Background()
	record(t, s,
		store.LogEntry{MessageID: "m1", Dest: "k", UserID: "u1", Status: store.StatusDelivered, Time: at(0)},
		store.LogEntry{MessageID: "m2", Dest: "k", Email: "gone@example.com", Status: store.StatusQueued, Time: at(1)},
		store.LogEntry{MessageID: "m3", Dest: "k", Status: store.StatusQueued, Time: at(2)}, // phone only: known by messageId
		store.LogEntry{MessageID: "m4", Dest: "k", UserID: "u2", Email: "stay@example.com", Status: store.StatusDelivered, Time: at(3)},
	)
	d1 := deadLetter("m5", "k", 0)
	d1.Payload = []byte(`{"userId":"u1","type":"track"}`)
	d2 := deadLetter("m6", "k", 1)
	d2.Payload = []byte(`{"userId":"u2","type":"track"}`)
	addDead(t, s, &d1, &d2)
	audit, ok := s.(store.AuditLog)
	if !ok {
		t.Fatalf("%T does not implement store.AuditLog", s)
	}
	if err := audit.RecordAudit(ctx, []store.AuditEntry{
		{MessageID: "m1", Dest: "k", UserID: "u1", Email: "u1@example.com", Time: at(0), Sent: []string{"userId"}},
		{MessageID: "m2", Dest: "k", Email: "gone@example.com", Time: at(1), Sent: []string{"traits.email"}},
		{MessageID: "m4", Dest: "k", UserID: "u2", Email: "stay@example.com", Time: at(3), Sent: []string{"userId"}},
	}); err != nil {
		t.Fatal(err)
	}

	got, err := s.ForgetUser(ctx, store.DeletionSubject{UserID: "u1", Email: "Gone@Example.com"}, []string{"m3"},
		func(d store.DeadLetter) bool { return bytes.Contains(d.Payload, []byte(`"u1"`)) })
	if err != nil {
		t.Fatal(err)
	}
	if got != (store.Forgotten{LogRows: 3, DeadLetters: 1, AuditEntries: 2}) {
		t.Errorf("forgot %+v, want 3 log rows, 1 dead letter and 2 audit entries", got)
	}
	// The audit log keeps what was sent and dropped, without the user's
	// identifiers: no search by them finds anything.
	for _, who := range []string{"u1", "u1@example.com", "gone@example.com"} {
		if es, err := audit.QueryAudit(ctx, store.AuditQuery{User: who}); err != nil || len(es) != 0 {
			t.Errorf("audit entries of %s after forgetting: %+v %v", who, es, err)
		}
	}
	all, err := audit.QueryAudit(ctx, store.AuditQuery{})
	if err != nil || len(all) != 3 {
		t.Fatalf("audit entries = %d %v, want 3 kept", len(all), err)
	}
	for _, e := range all {
		if e.MessageID != "m4" && (e.UserID != "" || e.Email != "") {
			t.Errorf("audit entry %s keeps the user's identifiers: %q %q", e.MessageID, e.UserID, e.Email)
		}
		if e.MessageID == "m4" && e.UserID != "u2" {
			t.Errorf("another user's audit entry changed: %+v", e)
		}
	}
	if ids := messageIDs(query(t, s, store.LogQuery{})); len(ids) != 1 || ids[0] != "m4" {
		t.Errorf("log left: %v", ids)
	}
	if _, err := s.LookupDeadLetter(ctx, d1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the user's dead letter survived: %v", err)
	}
	if _, err := s.LookupDeadLetter(ctx, d2.ID); err != nil {
		t.Errorf("another user's dead letter went: %v", err)
	}
}
