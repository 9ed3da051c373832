package console

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/store"
)

// QueryAudit makes the fake store an audit log of two entries.
func (s *fakeStore) QueryAudit(_ context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	all := []store.AuditEntry{
		{ID: 2, MessageID: "m-2", Dest: "klaviyo", UserID: "u-2", Time: testNow, Sent: []string{"userId"}, Dropped: []string{"context.ip", "properties.diagnosis"}},
		{ID: 1, MessageID: "m-1", Dest: "klaviyo", UserID: "u-1", Email: "jane@example.com", Time: testNow, Sent: []string{"properties.plan"}, Dropped: []string{}},
	}
	var out []store.AuditEntry
	for _, e := range all {
		if (q.User == "" || q.User == e.UserID || q.User == e.Email) && (q.MessageID == "" || q.MessageID == e.MessageID) &&
			(q.BeforeID == 0 || e.ID < q.BeforeID) {
			out = append(out, e)
		}
	}
	return out, nil
}

func TestAuditPage(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	resp, body := s.get("/admin/audit?user=u-2")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "properties.diagnosis") || strings.Contains(body, "m-1</code>") {
		t.Errorf("audit page %d: %s", resp.StatusCode, body)
	}
	resp, body = s.get("/admin/audit?since=yesterday")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Cannot read since") {
		t.Errorf("bad since: %d", resp.StatusCode)
	}
	resp, body = s.get("/admin/audit/export")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	var first store.AuditEntry
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &first) != nil || first.MessageID != "m-2" {
		t.Errorf("export: %q", body)
	}
}
