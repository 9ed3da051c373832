package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rudder "github.com/rudderlabs/analytics-go/v4"
	segment "github.com/segmentio/analytics-go/v3"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// TestSDKs sends identify, track, Order Completed and group through each
// real SDK, unchanged, to a running relay, and checks what the simulated
// Klaviyo ends up holding.
func TestSDKs(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs real SDKs against a relay process")
	}
	ks := startSim(t, sim.Faults{})
	dir := t.TempDir()
	r := startRelay(t, relayConfig(t, dir, ks.URL, ""), filepath.Join(dir, "data"), freeAddr(t))
	host := "http://" + r.addr

	// Each run's user has a phone of its own: one phone on two people's
	// profiles is a conflict in Klaviyo (and the simulator), and whether
	// it shows depends on which of a run's jobs Klaviyo applies first.
	sdks := []struct {
		name  string
		phone string // "" for the browser, which sends no phone
		send  func(t *testing.T, prefix, phone string)
	}{
		{"analytics-node", "+14155550121", func(t *testing.T, p, ph string) { runNode(t, "sdk-node.js", "segment", host, writeKey, p, ph) }},
		{"rudder-sdk-node", "+14155550122", func(t *testing.T, p, ph string) { runNode(t, "sdk-node.js", "rudder", host, writeKey, p, ph) }},
		{"analytics-go", "+14155550123", func(t *testing.T, p, ph string) { sendSegmentGo(t, host, p, ph) }},
		{"rudder-analytics-go", "+14155550124", func(t *testing.T, p, ph string) { sendRudderGo(t, host, p, ph) }},
		{"analytics-next-browser", "", func(t *testing.T, p, _ string) { runNode(t, "browser.js", r.addr, writeKey, p) }},
	}
	for _, sdk := range sdks {
		t.Run(sdk.name, func(t *testing.T) {
			prefix := strings.ReplaceAll(sdk.name, "-", "") + fmt.Sprint(time.Now().UnixNano()%1e6)
			sdk.send(t, prefix, sdk.phone)
			checkDelivered(t, ks, prefix, sdk.phone)
		})
	}
	if t.Failed() {
		t.Logf("relay logs:\n%s", r.Logs())
	}
}

// runNode runs one of the Node drivers, installing the npm packages first
// when a fresh checkout has none.
func runNode(t *testing.T, script string, args ...string) {
	t.Helper()
	if _, err := os.Stat("node_modules/@segment/analytics-node"); err != nil {
		install := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		if out, err := install.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", append([]string{script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, out)
	}
	t.Logf("node %s: %s", script, strings.TrimSpace(string(out)))
}

func sendSegmentGo(t *testing.T, host, p, phone string) {
	t.Helper()
	var failed []error
	c, err := segment.NewWithConfig(writeKey, segment.Config{Endpoint: host, BatchSize: 3, Interval: 100 * time.Millisecond,
		Callback: callback{func(err error) { failed = append(failed, err) }}})
	if err != nil {
		t.Fatal(err)
	}
	user, email := p+"-user", p+"@example.com"
	ctx := &segment.Context{Traits: segment.NewTraits().SetEmail(email)}
	must(t, c.Enqueue(segment.Identify{UserId: user, Traits: segment.NewTraits().SetEmail(email).SetFirstName("Jane").SetLastName("Doe").Set("phone", phone)}))
	must(t, c.Enqueue(segment.Track{UserId: user, Event: "Product Viewed", Context: ctx, Properties: segment.NewProperties().Set("product_id", p+"-p1").SetName("Mug").SetPrice(12.5)}))
	must(t, c.Enqueue(segment.Track{UserId: user, Event: "Order Completed", Context: ctx, Properties: segment.NewProperties().
		Set("order_id", p+"-o1").SetRevenue(25).SetCurrency("USD").
		Set("products", []map[string]any{{"product_id": p + "-p1", "sku": "SKU-1", "name": "Mug", "price": 12.5, "quantity": 2}})}))
	must(t, c.Enqueue(segment.Group{UserId: user, GroupId: "LIST_E2E", Traits: segment.NewTraits().Set("subscribe", true), Context: ctx}))
	must(t, c.Close())
	if len(failed) > 0 {
		t.Fatalf("analytics-go reported failures: %v", failed)
	}
}

func sendRudderGo(t *testing.T, host, p, phone string) {
	t.Helper()
	var failed []error
	c, err := rudder.NewWithConfig(writeKey, rudder.Config{DataPlaneUrl: host, BatchSize: 3, Interval: 100 * time.Millisecond,
		Callback: rudderCallback{func(err error) { failed = append(failed, err) }}})
	if err != nil {
		t.Fatal(err)
	}
	user, email := p+"-user", p+"@example.com"
	ctx := &rudder.Context{Traits: rudder.NewTraits().SetEmail(email)}
	must(t, c.Enqueue(rudder.Identify{UserId: user, Traits: rudder.NewTraits().SetEmail(email).SetFirstName("Jane").SetLastName("Doe").Set("phone", phone)}))
	must(t, c.Enqueue(rudder.Track{UserId: user, Event: "Product Viewed", Context: ctx, Properties: rudder.NewProperties().Set("product_id", p+"-p1").SetName("Mug").SetPrice(12.5)}))
	must(t, c.Enqueue(rudder.Track{UserId: user, Event: "Order Completed", Context: ctx, Properties: rudder.NewProperties().
		Set("order_id", p+"-o1").SetRevenue(25).SetCurrency("USD").
		Set("products", []map[string]any{{"product_id": p + "-p1", "sku": "SKU-1", "name": "Mug", "price": 12.5, "quantity": 2}})}))
	must(t, c.Enqueue(rudder.Group{UserId: user, GroupId: "LIST_E2E", Traits: rudder.NewTraits().Set("subscribe", true), Context: ctx}))
	must(t, c.Close())
	if len(failed) > 0 {
		t.Fatalf("rudder analytics-go reported failures: %v", failed)
	}
}

type callback struct{ fail func(error) }

func (c callback) Success(segment.Message)              {}
func (c callback) Failure(_ segment.Message, err error) { c.fail(err) }

type rudderCallback struct{ fail func(error) }

func (c rudderCallback) Success(rudder.Message)              {}
func (c rudderCallback) Failure(_ rudder.Message, err error) { c.fail(err) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkDelivered waits until the simulator holds what the SDK's calls mean:
// the profile with its identifiers and name, the Viewed Product event, the
// Placed Order with the order id as unique id and one Ordered Product per
// product, and (for full runs) list membership with email consent from the
// group call.
func checkDelivered(t *testing.T, ks *klaviyoSim, p, phone string) {
	full := phone != ""
	t.Helper()
	email := p + "@example.com"
	testutil.EventuallyWhy(t, 30*time.Second, "delivery of "+p, func() (bool, string) {
		st := ks.State()
		var prof *sim.ProfileState
		for i := range st.Profiles {
			if st.Profiles[i].Email == email {
				prof = &st.Profiles[i]
			}
		}
		if prof == nil {
			return false, "no profile " + email
		}
		if prof.ExternalID != p+"-user" {
			return false, "external_id = " + prof.ExternalID
		}
		if full && prof.PhoneNumber != phone {
			return false, "phone_number = " + prof.PhoneNumber
		}
		metrics := map[string]string{}
		for _, e := range st.Events {
			if e.ProfileID == prof.ID {
				metrics[e.UniqueID] = e.Metric
			}
		}
		if !hasMetric(metrics, "Viewed Product") {
			return false, fmt.Sprintf("no Viewed Product event; have %v", metrics)
		}
		if !full {
			return true, ""
		}
		if metrics[p+"-o1"] != "Placed Order" || metrics[p+"-o1_"+p+"-p1"] != "Ordered Product" {
			return false, fmt.Sprintf("order events missing: %v", metrics)
		}
		inList := false
		for _, id := range st.Lists["LIST_E2E"] {
			inList = inList || id == prof.ID
		}
		if !inList {
			return false, "not in list LIST_E2E"
		}
		if s := prof.Subscriptions.Email; s == nil || s.Marketing == nil || s.Marketing.Consent != "SUBSCRIBED" {
			return false, "email marketing not SUBSCRIBED"
		}
		return true, ""
	})
}

func hasMetric(m map[string]string, name string) bool {
	for _, v := range m {
		if v == name {
			return true
		}
	}
	return false
}
