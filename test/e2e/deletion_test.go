package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

const (
	adminToken  = "adm_e2e_token_0123456789"
	deletionKey = "dk_e2e_key_0123456789"
)

// deliveryEndpoints are every endpoint delivery sends events and profiles to.
var deliveryEndpoints = []string{"POST /api/events", "POST /api/event-bulk-create-jobs", "POST /api/profile-import",
	"POST /api/profile-bulk-import-jobs", "POST /api/profiles", "PATCH /api/profiles/{id}"}

// TestUserDeletion: a user's events reach Klaviyo, more of them wait in the
// queue while Klaviyo fails; a RudderStack-style deletion request drops the
// queued ones, survives a SIGKILL while Klaviyo's deletion endpoint fails,
// and after the restart deletes the profile and its events in Klaviyo.
// Another user is left alone; `relay forget` deletes a third one.
func TestUserDeletion(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ks, cfg, data, addr := adminRelaySetup(t)
	r := startRelay(t, cfg, data, addr)
	ctx := context.Background()

	track := func(id, user, email string) string {
		return fmt.Sprintf(`{"type":"track","messageId":%q,"userId":%q,"event":"Viewed","context":{"traits":{"email":%q}}}`, id, user, email)
	}
	ingest := func(events ...string) {
		t.Helper()
		status, msg, err := r.post(ctx, "/v1/batch", `{"batch":[`+strings.Join(events, ",")+`]}`)
		if err != nil || status != 200 {
			t.Fatalf("ingest: %d %s %v", status, msg, err)
		}
	}
	ingest(track("gone-1", "u-gone", "gone@example.com"), track("gone-2", "u-gone", "gone@example.com"),
		track("keep-1", "u-keep", "keep@example.com"), track("cli-1", "u-cli", "cli@example.com"))
	testutil.EventuallyWhy(t, 30*time.Second, "first events delivered", func() (bool, string) {
		st := ks.State()
		n := countPrefix(st.Events, "gone-") + countPrefix(st.Events, "keep-") + countPrefix(st.Events, "cli-")
		return n == 4, fmt.Sprintf("%d of 4", n)
	})

	// Klaviyo now fails deliveries and deletions: the next events of the
	// user wait in the queue, and the deletion cannot finish.
	ks.SetFaults(sim.Faults{ErrorRate: 1, Endpoints: append([]string{"POST /api/data-privacy-deletion-jobs"}, deliveryEndpoints...)})
	ingest(track("gone-3", "u-gone", "gone@example.com"), `{"type":"identify","messageId":"gone-4","userId":"u-gone","traits":{"email":"gone@example.com","plan":"pro"}}`)

	status, body := adminCall(t, r, "POST", "/v2/regulations", deletionKey,
		`{"regulationType":"suppress_with_delete","users":[{"userId":"u-gone","email":"gone@example.com"}]}`)
	if status != 201 {
		t.Fatalf("regulation: %d %v", status, body)
	}
	id := body["id"].(string)
	var d map[string]any
	testutil.EventuallyWhy(t, 60*time.Second, "the queued events dropped and Klaviyo's deletion failing", func() (bool, string) {
		_, b := adminCall(t, r, "GET", "/admin/api/deletions/"+id, adminToken, "")
		d = b["deletion"].(map[string]any)
		steps, _ := d["steps"].([]any)
		return d["state"] == "pending" && d["attempts"].(float64) >= 1 && len(steps) == 3 &&
			steps[0].(map[string]any)["done"] == true, fmt.Sprintf("%v", d)
	})
	// The two queued events are gone either way: dropped from the queue
	// by the deletion, or (suppress_with_delete) skipped by the
	// suppression stage when a retry claimed them first.
	detail := d["steps"].([]any)[0].(map[string]any)["detail"].(string)
	var dropped int
	if _, err := fmt.Sscanf(detail, "%d queued", &dropped); err != nil {
		t.Fatalf("queue step detail %q: %v", detail, err)
	}
	if suppressed := suppressedEvents(t, r); dropped+suppressed != 2 {
		t.Errorf("queue step %q and %d suppressed events: want the 2 queued events gone", detail, suppressed)
	}
	if !strings.Contains(d["lastError"].(string), "503") && !strings.Contains(d["lastError"].(string), "500") {
		t.Errorf("last error: %v", d["lastError"])
	}

	// Die mid-way; Klaviyo recovers; the restarted relay finishes.
	r.kill()
	ks.SetFaults(sim.Faults{})
	r = startRelay(t, cfg, data, addr)
	testutil.EventuallyWhy(t, 90*time.Second, "the deletion done after the restart", func() (bool, string) {
		_, b := adminCall(t, r, "GET", "/admin/api/deletions/"+id, adminToken, "")
		d = b["deletion"].(map[string]any)
		return d["state"] == "done", fmt.Sprintf("%v", d)
	})
	if strings.Contains(fmt.Sprint(d), "gone@example.com") || strings.Contains(fmt.Sprint(d), "u-gone") {
		t.Errorf("a finished deletion still shows the identifiers: %v", d)
	}

	// relay forget through the running server.
	out, err := exec.Command(relayBin, "forget", "--config", cfg, "--server", "http://"+addr, "--token", adminToken,
		"--email", "cli@example.com", "--wait", "60s").CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": done") {
		t.Fatalf("relay forget: %v\n%s", err, out)
	}

	// A marker event after everything: once it is in Klaviyo, any dropped
	// event that had survived would be there too.
	ingest(track("keep-2", "u-keep", "keep@example.com"))
	testutil.EventuallyWhy(t, 30*time.Second, "the marker delivered", func() (bool, string) {
		n := countPrefix(ks.State().Events, "keep-")
		return n == 2, fmt.Sprintf("%d of 2; requests %v; log:\n%s", n, ks.State().Requests, r.Logs())
	})
	st := ks.State()
	if n := countPrefix(st.Events, "gone-") + countPrefix(st.Events, "cli-"); n != 0 {
		t.Errorf("%d events of deleted users are in Klaviyo", n)
	}
	for _, p := range st.Profiles {
		if p.ExternalID == "u-gone" || p.Email == "gone@example.com" || p.Email == "cli@example.com" {
			t.Errorf("a deleted user's profile is in Klaviyo: %+v", p)
		}
	}
	if len(st.Profiles) != 1 || st.Profiles[0].Email != "keep@example.com" || len(st.Deleted) != 2 {
		t.Errorf("profiles %+v, deleted %+v", st.Profiles, st.Deleted)
	}
	if st.Rejected != 0 {
		t.Errorf("Klaviyo rejected requests: %+v", st.Rejections)
	}
	for _, secret := range []string{adminToken, deletionKey, simKey} {
		if strings.Contains(r.Logs(), secret) {
			t.Errorf("a secret is in the log")
		}
	}
}

// TestForgetWithoutServer: with no relay serve running, relay forget stores
// the request, and the next relay serve carries it out.
func TestForgetWithoutServer(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ks, cfg, data, addr := adminRelaySetup(t)
	r := startRelay(t, cfg, data, addr)
	status, msg, err := r.post(context.Background(), "/v1/track", `{"messageId":"off-1","userId":"u-off","event":"Viewed"}`)
	if err != nil || status != 200 {
		t.Fatalf("ingest: %d %s %v", status, msg, err)
	}
	testutil.EventuallyWhy(t, 30*time.Second, "event delivered", func() (bool, string) {
		return countPrefix(ks.State().Events, "off-") == 1, ""
	})
	r.stop()
	out, err := exec.Command(relayBin, "forget", "--config", cfg, "--data", data, "--user", "u-off").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "stored; the next relay serve processes it") {
		t.Fatalf("relay forget: %v\n%s", err, out)
	}
	startRelay(t, cfg, data, addr)
	testutil.EventuallyWhy(t, 30*time.Second, "profile deleted", func() (bool, string) {
		st := ks.State()
		return len(st.Profiles) == 0 && len(st.Events) == 0, fmt.Sprintf("%d profiles", len(st.Profiles))
	})
}

// adminRelaySetup starts a simulator and writes a relay config for it
// whose admin token and deletion key are adminToken and deletionKey, on a
// free address: the simulator, the config's path, a data dir and the
// address.
func adminRelaySetup(t *testing.T) (ks *klaviyoSim, cfg, data, addr string) {
	t.Helper()
	ks = startSim(t, sim.Faults{})
	dir := t.TempDir()
	addr = freeAddr(t)
	cfg = relayConfig(t, dir, ks.URL, "")
	appendFile(t, cfg, fmt.Sprintf("addr: %s\nadmin: {token: %s, deletionKey: %s}\n", addr, adminToken, deletionKey))
	return ks, cfg, filepath.Join(dir, "data"), addr
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func adminCall(t *testing.T, r *relayProc, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, r.url(path), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

// suppressedEvents reads relay_suppressed_events_total for klaviyo.
func suppressedEvents(t *testing.T, r *relayProc) int {
	t.Helper()
	resp, err := http.Get(r.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, `relay_suppressed_events_total{destination="klaviyo"} `); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(n)
		}
	}
	return 0
}
