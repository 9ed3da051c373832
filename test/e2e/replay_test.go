package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// TestDeadLetterAndReplay: an event the settings cannot map, and an event
// Klaviyo rejects inside a bulk request, are dead-lettered while their
// batch-mates are delivered; after fixing the settings, `relay replay`
// delivers the first.
func TestDeadLetterAndReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ks := startSim(t, sim.Faults{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	cfg := relayConfig(t, dir, ks.URL, "{enforceEmailAsPrimary: true}")
	r := startRelay(t, cfg, data, addr)

	var events []string
	for i := range 10 {
		events = append(events, fmt.Sprintf(`{"type":"track","messageId":"good-%d","userId":"u%d","event":"Fine","context":{"traits":{"email":"u%d@example.com"}}}`, i, i, i))
	}
	// No email: enforceEmailAsPrimary cannot identify the profile.
	events = append(events, `{"type":"track","messageId":"noemail-1","userId":"only-an-id","event":"Needs Email"}`)
	// Klaviyo rejects this email; only this item of the bulk job may fail.
	events = append(events, `{"type":"track","messageId":"bademail-1","userId":"u99","event":"Fine","context":{"traits":{"email":"not an email@"}}}`)
	status, msg, err := r.post(context.Background(), "/v1/batch", `{"batch":[`+strings.Join(events, ",")+`]}`)
	if err != nil || status != 200 {
		t.Fatalf("ingest: %d %s %v", status, msg, err)
	}
	testutil.EventuallyWhy(t, 30*time.Second, "good events delivered", func() (bool, string) {
		n := countPrefix(ks.State().Events, "good-")
		return n == 10, fmt.Sprintf("%d of 10", n)
	})
	if n := countPrefix(ks.State().Events, "bademail-") + countPrefix(ks.State().Events, "noemail-"); n != 0 {
		t.Fatalf("%d undeliverable events reached Klaviyo", n)
	}
	r.stop()

	// Fix the settings, replay the dead letters with the CLI, restart.
	cfg = relayConfig(t, dir, ks.URL, "{enforceEmailAsPrimary: false}")
	out, err := exec.Command(relayBin, "replay", "--config", cfg, "--data", data, "--dest", "klaviyo").CombinedOutput()
	if err != nil {
		t.Fatalf("relay replay: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "re-enqueued 2 dead letter") {
		t.Fatalf("relay replay said: %s", out)
	}
	startRelay(t, cfg, data, addr)
	testutil.EventuallyWhy(t, 30*time.Second, "replayed event delivered", func() (bool, string) {
		for _, e := range ks.State().Events {
			if e.UniqueID == "noemail-1" {
				return true, ""
			}
		}
		return false, "noemail-1 not in Klaviyo"
	})
}
