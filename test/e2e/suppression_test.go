package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// TestUserSuppression: through relay serve into the simulator, a
// suppressed user's later events never reach Klaviyo (skipped in the
// delivery log with the regulation's id) while everyone else's do; a user
// known only by phone is deleted from the log and suppressed; relay forget
// --unsuppress lets the user's events through again.
func TestUserSuppression(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ks, cfg, data, addr := adminRelaySetup(t)
	r := startRelay(t, cfg, data, addr)
	ctx := context.Background()

	track := func(id, user, email string) string {
		return fmt.Sprintf(`{"type":"track","messageId":%q,"userId":%q,"event":"Viewed","context":{"traits":{"email":%q}}}`, id, user, email)
	}
	byPhone := func(id, phone string) string {
		return fmt.Sprintf(`{"type":"track","messageId":%q,"anonymousId":"anon-ph","event":"Viewed","context":{"traits":{"phone":%q}}}`, id, phone)
	}
	ingest := func(events ...string) {
		t.Helper()
		status, msg, err := r.post(ctx, "/v1/batch", `{"batch":[`+strings.Join(events, ",")+`]}`)
		if err != nil || status != 200 {
			t.Fatalf("ingest: %d %s %v", status, msg, err)
		}
	}
	logPage := func(q string) string {
		req, _ := http.NewRequest("GET", r.url("/admin/log?q="+q), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	ingest(track("sup-1", "u-sup", "sup@example.com"), byPhone("ph-1", "+15005550006"), track("other-1", "u-other", "other@example.com"))
	testutil.EventuallyWhy(t, 30*time.Second, "first events delivered", func() (bool, string) {
		st := ks.State()
		n := countPrefix(st.Events, "sup-") + countPrefix(st.Events, "ph-") + countPrefix(st.Events, "other-")
		return n == 3, fmt.Sprintf("%d of 3", n)
	})
	testutil.EventuallyWhy(t, 10*time.Second, "the phone user's log row", func() (bool, string) {
		return strings.Contains(logPage("ph-1"), `data-message-id="ph-1"`), "not yet"
	})

	// RudderStack's suppress: no deletion, future events dropped.
	status, body := adminCall(t, r, "POST", "/v2/regulations", deletionKey, `{"regulationType":"suppress","users":[{"userId":"u-sup"}]}`)
	if status != 201 {
		t.Fatalf("suppress: %d %v", status, body)
	}
	supID := body["id"].(string)
	// The phone-only user: deleted (log rows too) and suppressed, the
	// number spelled differently from the events'.
	status, body = adminCall(t, r, "POST", "/admin/api/deletions", adminToken, `{"phone":"+1 (500) 555-0006","suppress":true,"localOnly":true}`)
	if status != 201 {
		t.Fatalf("delete and suppress by phone: %d %v", status, body)
	}
	delID := body["deletion"].(map[string]any)["id"].(string)
	testutil.EventuallyWhy(t, 30*time.Second, "the phone user's deletion done", func() (bool, string) {
		_, b := adminCall(t, r, "GET", "/admin/api/deletions/"+delID, adminToken, "")
		d := b["deletion"].(map[string]any)
		return d["state"] == "done", fmt.Sprintf("%v", d)
	})
	if page := logPage("ph-1"); strings.Contains(page, `data-message-id="ph-1"`) || !strings.Contains(page, "Nothing matches") {
		t.Errorf("the phone-only user's delivery log row survived the deletion")
	}

	ingest(track("sup-2", "u-sup", "sup@example.com"), `{"type":"identify","messageId":"sup-3","userId":"u-sup","traits":{"plan":"pro"}}`,
		byPhone("ph-2", "(500) 555-0006"), byPhone("ph-3", "+15005550006"), track("other-2", "u-other", "other@example.com"))
	testutil.EventuallyWhy(t, 30*time.Second, "the other user's event delivered", func() (bool, string) {
		return countPrefix(ks.State().Events, "other-") == 2, "not yet"
	})
	testutil.EventuallyWhy(t, 10*time.Second, "the suppressed events skipped in the log", func() (bool, string) {
		a, b := logPage("sup-2"), logPage("ph-3")
		return strings.Contains(a, "suppressed by regulation "+supID) && strings.Contains(b, "suppressed by regulation "+delID), "not yet"
	})
	st := ks.State()
	if n := countPrefix(st.Events, "sup-") + countPrefix(st.Events, "ph-"); n != 2 {
		t.Errorf("%d events of the suppressed users in Klaviyo, want only the 2 sent before", n)
	}
	for _, p := range st.Profiles {
		if p.ExternalID == "u-sup" && p.Properties["plan"] != nil {
			t.Errorf("the suppressed identify reached Klaviyo: %+v", p)
		}
	}

	// Lift u-sup's suppression with relay forget; the next event goes.
	out, err := exec.Command(relayBin, "forget", "--config", cfg, "--server", "http://"+addr, "--token", adminToken,
		"--unsuppress", "--user", "u-sup").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 suppression(s) lifted") {
		t.Fatalf("relay forget --unsuppress: %v\n%s", err, out)
	}
	ingest(track("sup-4", "u-sup", "sup@example.com"), byPhone("ph-4", "+15005550006"), track("other-3", "u-other", "other@example.com"))
	testutil.EventuallyWhy(t, 30*time.Second, "the unsuppressed user's event delivered", func() (bool, string) {
		st := ks.State()
		return countPrefix(st.Events, "sup-4") == 1 && countPrefix(st.Events, "other-") == 3, "not yet"
	})
	if n := countPrefix(ks.State().Events, "ph-"); n != 1 {
		t.Errorf("%d phone user events in Klaviyo, want the 1 sent before its suppression", n)
	}
	if strings.Contains(r.Logs(), "5550006") || strings.Contains(r.Logs(), "u-sup") {
		t.Errorf("the relay log names a suppressed identifier")
	}
}

// TestSuppressWithoutServer: with no relay serve running, relay forget
// --suppress-only stores the suppression, and the next relay serve skips
// the user's events.
func TestSuppressWithoutServer(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ks, cfg, data, addr := adminRelaySetup(t)
	out, err := exec.Command(relayBin, "forget", "--config", cfg, "--data", data, "--suppress-only", "--email", "Quiet@Example.com").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "suppression sup_1 stored in the store") {
		t.Fatalf("relay forget --suppress-only: %v\n%s", err, out)
	}
	r := startRelay(t, cfg, data, addr)
	ctx := context.Background()
	for _, ev := range []string{
		`{"messageId":"quiet-1","userId":"u-q","event":"Viewed","context":{"traits":{"email":"quiet@example.com"}}}`,
		`{"messageId":"loud-1","userId":"u-l","event":"Viewed","context":{"traits":{"email":"loud@example.com"}}}`,
	} {
		if status, msg, err := r.post(ctx, "/v1/track", ev); err != nil || status != 200 {
			t.Fatalf("ingest: %d %s %v", status, msg, err)
		}
	}
	testutil.EventuallyWhy(t, 30*time.Second, "the other user's event delivered", func() (bool, string) {
		return countPrefix(ks.State().Events, "loud-") == 1, "not yet"
	})
	testutil.EventuallyWhy(t, 10*time.Second, "the suppressed event skipped in the log", func() (bool, string) {
		req, _ := http.NewRequest("GET", r.url("/admin/log?q=quiet-1"), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "suppressed by regulation sup_1"), "not yet"
	})
	if n := countPrefix(ks.State().Events, "quiet-"); n != 0 {
		t.Errorf("the suppressed user's event reached Klaviyo")
	}
}

// TestSuppressionAcrossNodes: two relay serve nodes share PostgreSQL and
// JetStream; a user suppressed through one node has their events skipped
// whichever node delivers them, once the other node's refresh (2 s) has
// run.
func TestSuppressionAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	scaleOut(t, 3*time.Second)
	ks := startSim(t, sim.Faults{})
	dir := t.TempDir()
	cfg := relayConfig(t, dir, ks.URL, "")
	appendFile(t, cfg, fmt.Sprintf("admin: {token: %s}\n", adminToken))
	a := startRelay(t, cfg, filepath.Join(dir, "a"), freeAddr(t))
	b := startRelay(t, cfg, filepath.Join(dir, "b"), freeAddr(t))
	if status, body := adminCall(t, a, "POST", "/admin/api/suppressions", adminToken, `{"userId":"u-x"}`); status != 201 {
		t.Fatalf("suppress on node a: %d %v", status, body)
	}
	time.Sleep(3 * time.Second) // node b's refresh interval, the documented window
	ctx := context.Background()
	var events []string
	for i := range 10 {
		events = append(events, fmt.Sprintf(`{"type":"track","messageId":"x-%d","userId":"u-x","event":"Viewed"}`, i),
			fmt.Sprintf(`{"type":"track","messageId":"y-%d","userId":"u-y","event":"Viewed"}`, i))
	}
	for _, r := range []*relayProc{a, b} {
		if status, msg, err := r.post(ctx, "/v1/batch", `{"batch":[`+strings.Join(events, ",")+`]}`); err != nil || status != 200 {
			t.Fatalf("ingest: %d %s %v", status, msg, err)
		}
	}
	testutil.EventuallyWhy(t, 60*time.Second, "the other user's events delivered", func() (bool, string) {
		n := countPrefix(ks.State().Events, "y-")
		return n == 10, fmt.Sprintf("%d of 10", n)
	})
	// Every node settles the suppressed events as skipped; give the last
	// batch the time the marker's took, then none may be in Klaviyo.
	testutil.EventuallyWhy(t, 10*time.Second, "the suppressed events skipped", func() (bool, string) {
		req, _ := http.NewRequest("GET", b.url("/admin/log?status=skipped"), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		n := strings.Count(string(page), "suppressed by regulation sup_1")
		return n >= 10, fmt.Sprintf("%d skipped", n)
	})
	if n := countPrefix(ks.State().Events, "x-"); n != 0 {
		t.Errorf("%d suppressed events reached Klaviyo", n)
	}
}
