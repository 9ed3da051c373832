package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/store"
)

// A NUL or invalid UTF-8 in a deletion's subject, a suppression or an
// audit entry is stored and found again on both stores (PostgreSQL's text
// keeps U+FFFD in its place, lookups mapped alike), instead of failing the
// request.
func TestUnsafeTextInDeletionsAndSuppressions(t *testing.T) {
	type auditedStore interface {
		store.Store
		store.AuditLog
	}
	stores := map[string]func(t *testing.T) auditedStore{
		"sqlite":   func(t *testing.T) auditedStore { return openSQLite(t, filepath.Join(t.TempDir(), "relay.db")) },
		"postgres": func(t *testing.T) auditedStore { return openPostgres(t, pgSchema(t)) },
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD") }
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			odd := "a\x00b\xffc"
			if err := s.RecordAudit(ctx, []store.AuditEntry{{MessageID: "m1", Dest: "hook", UserID: odd}}); err != nil {
				t.Fatalf("RecordAudit: %v", err)
			}
			got, err := s.ForgetUser(ctx, store.DeletionSubject{UserID: odd}, nil, nil)
			if err != nil {
				t.Fatalf("ForgetUser: %v", err)
			}
			if got.AuditEntries != 1 {
				t.Errorf("ForgetUser blanked %d audit entries, want 1", got.AuditEntries)
			}
			ds := []store.Deletion{{Subject: store.DeletionSubject{UserID: odd}, Origin: "api" + odd,
				Suppress: &store.Suppression{UserID: "h\x00", Origin: "api"}}}
			if err := s.CreateDeletions(ctx, ds); err != nil {
				t.Fatalf("CreateDeletions: %v", err)
			}
			d, err := s.Deletion(ctx, ds[0].ID)
			if err != nil {
				t.Fatalf("Deletion: %v", err)
			}
			if norm(d.Subject.UserID) != norm(odd) || norm(d.Origin) != norm("api"+odd) {
				t.Errorf("Deletion: userId %q, origin %q; want %q, %q (or with U+FFFD)", d.Subject.UserID, d.Origin, odd, "api"+odd)
			}
			n, err := s.RemoveSuppressions(ctx, "", []string{"h\x00"})
			if err != nil {
				t.Fatalf("RemoveSuppressions: %v", err)
			}
			if n != 1 {
				t.Errorf("RemoveSuppressions removed %d, want 1", n)
			}
		})
	}
}
