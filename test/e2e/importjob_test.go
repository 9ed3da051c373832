package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// TestImportJobItemDeadLettered: an identify that Klaviyo's profile import
// job refuses after accepting the job (its email and userId belong to two
// existing profiles) is dead-lettered through relay serve once the job
// finishes, while the job's other profile is imported and stays
// delivered.
func TestImportJobItemDeadLettered(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Setenv("RELAY_ADMIN_TOKEN", "adm_e2e_importjob_0123456789")
	s := startSim(t, sim.Faults{})
	dir := t.TempDir()
	r := startRelay(t, relayConfig(t, dir, s.URL, ""), filepath.Join(dir, "data"), freeAddr(t))
	post := func(body string) {
		t.Helper()
		if status, msg, err := r.post(context.Background(), "/v1/batch", body); err != nil || status != 200 {
			t.Fatalf("ingest: %d %s %v", status, msg, err)
		}
	}
	post(`{"batch":[{"type":"identify","messageId":"ij-a","userId":"ij-u-a","traits":{"email":"ij-a@example.com"}},
		{"type":"identify","messageId":"ij-b","userId":"ij-u-b","traits":{"email":"ij-b@example.com"}}]}`)
	testutil.EventuallyWhy(t, 30*time.Second, "two profiles", func() (bool, string) {
		n := len(s.State().Profiles)
		return n == 2, "profiles"
	})
	post(`{"batch":[{"type":"identify","messageId":"ij-clash","userId":"ij-u-a","traits":{"email":"ij-b@example.com"}},
		{"type":"identify","messageId":"ij-fine","userId":"ij-u-c","traits":{"email":"ij-c@example.com"}}]}`)
	testutil.EventuallyWhy(t, 30*time.Second, "the refused identify dead-lettered", func() (bool, string) {
		page, err := adminGet(r, "/admin/deadletters?dest=klaviyo")
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(page, "ij-clash") && strings.Contains(page, "duplicate_profile"), "not yet"
	})
	page, err := adminGet(r, "/admin/deadletters?dest=klaviyo")
	if err != nil || strings.Contains(page, "ij-fine") {
		t.Errorf("ij-fine dead-lettered too (%v)", err)
	}
	if n := s.State().Requests["POST /api/profile-bulk-import-jobs"]; n < 2 {
		t.Errorf("%d profile import jobs: the clash must go through one", n)
	}
}
