package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaycdp/relay/internal/store"
)

// testAudit: the privacy audit log appends, finds entries by user (id or
// email), message id, destination and time, pages, and exports NDJSON.
func testAudit(t *testing.T, s store.Store) {
	a, ok := s.(store.AuditLog)
	if !ok {
		t.Fatalf("%T does not implement store.AuditLog", s)
	}
	ctx := context.Background()
	var in []store.AuditEntry
	for i := range 7 {
		in = append(in, store.AuditEntry{
			MessageID: fmt.Sprintf("m%d", i), Dest: "klaviyo", Source: "web",
			UserID: fmt.Sprintf("u%d", i%2), Email: fmt.Sprintf("U%d@Example.com", i%2),
			Time: at(0).Add(time.Duration(i) * time.Minute),
			Sent: []string{"properties.plan", "userId"}, Dropped: []string{"context.ip"},
		})
	}
	in[6].Dropped = nil
	if err := a.RecordAudit(ctx, in); err != nil {
		t.Fatalf("RecordAudit: %v", err)
	}
	ids := func(es []store.AuditEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.MessageID)
		}
		return out
	}
	q := func(q store.AuditQuery) []store.AuditEntry {
		t.Helper()
		got, err := a.QueryAudit(ctx, q)
		if err != nil {
			t.Fatalf("QueryAudit(%+v): %v", q, err)
		}
		return got
	}
	for _, c := range []struct {
		q    store.AuditQuery
		want []string
	}{
		{store.AuditQuery{}, []string{"m6", "m5", "m4", "m3", "m2", "m1", "m0"}},
		{store.AuditQuery{User: "u1"}, []string{"m5", "m3", "m1"}},
		{store.AuditQuery{User: "u0@EXAMPLE.com"}, []string{"m6", "m4", "m2", "m0"}},
		{store.AuditQuery{MessageID: "m3"}, []string{"m3"}},
		{store.AuditQuery{Dest: "other"}, nil},
		{store.AuditQuery{Since: at(2 * time.Minute), Until: at(4 * time.Minute)}, []string{"m3", "m2"}},
	} {
		if diff := cmp.Diff(c.want, ids(q(c.q))); diff != "" {
			t.Errorf("QueryAudit(%+v) (-want +got):\n%s", c.q, diff)
		}
	}
	// Paging.
	first := q(store.AuditQuery{Limit: 3})
	next := q(store.AuditQuery{Limit: 3, BeforeID: first[2].ID})
	if diff := cmp.Diff([]string{"m3", "m2", "m1"}, ids(next)); diff != "" {
		t.Errorf("second page (-want +got):\n%s", diff)
	}
	// Fields round-trip; no dropped keys reads as an empty list.
	got := q(store.AuditQuery{MessageID: "m6"})[0]
	if got.Email != "u0@example.com" || !got.Time.Equal(in[6].Time) || len(got.Dropped) != 0 || got.Dropped == nil ||
		!cmp.Equal(got.Sent, []string{"properties.plan", "userId"}) || got.Source != "web" {
		t.Errorf("entry = %+v", got)
	}
	// NDJSON export: every entry, one JSON object a line.
	var buf bytes.Buffer
	n, err := store.ExportAudit(ctx, a, store.AuditQuery{User: "u1"}, &buf)
	if err != nil || n != 3 {
		t.Fatalf("ExportAudit = %d, %v", n, err)
	}
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("export has %d lines", len(lines))
	}
	var e store.AuditEntry
	if err := json.Unmarshal(lines[0], &e); err != nil || e.MessageID != "m5" {
		t.Errorf("first line %s: %v", lines[0], err)
	}
	// Invalid entries write nothing.
	err = a.RecordAudit(ctx, []store.AuditEntry{{MessageID: "x", Dest: "klaviyo"}, {MessageID: "y"}})
	wantErr(t, "RecordAudit without dest", err, store.ErrInvalid)
	if len(q(store.AuditQuery{MessageID: "x"})) != 0 {
		t.Error("a failed RecordAudit wrote an entry")
	}
}

// testPruneAudit: retention.auditMaxAge removes audit entries older than
// it and nothing else; zero keeps them all.
func testPruneAudit(t *testing.T, s store.Store) {
	a, ok := s.(store.AuditLog)
	if !ok {
		t.Fatalf("%T does not implement store.AuditLog", s)
	}
	ctx := context.Background()
	now := time.Now().UTC()
	var in []store.AuditEntry
	for i, age := range []time.Duration{40 * 24 * time.Hour, 31 * 24 * time.Hour, 29 * 24 * time.Hour, time.Hour} {
		in = append(in, store.AuditEntry{MessageID: fmt.Sprintf("a%d", i), Dest: "klaviyo", Time: now.Add(-age), Sent: []string{"userId"}})
	}
	if err := a.RecordAudit(ctx, in); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Prune(ctx, store.Retention{LogMaxAge: time.Hour}); err != nil || got.AuditRows != 0 {
		t.Fatalf("Prune without auditMaxAge = %+v, %v; want no audit entry removed", got, err)
	}
	got, err := s.Prune(ctx, store.Retention{AuditMaxAge: 30 * 24 * time.Hour})
	if err != nil || got.AuditRows != 2 {
		t.Fatalf("Prune(30 days) = %+v, %v; want 2 audit entries removed", got, err)
	}
	left, err := a.QueryAudit(ctx, store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range left {
		ids = append(ids, e.MessageID)
	}
	if strings.Join(ids, ",") != "a3,a2" {
		t.Errorf("audit entries left: %v, want a3,a2", ids)
	}
	_, err = s.Prune(ctx, store.Retention{AuditMaxAge: -time.Hour})
	wantErr(t, "negative audit retention", err, store.ErrInvalid)
}
