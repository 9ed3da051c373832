package console

import (
	"net/http"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/klaviyo"
)

// The settings form carries the privacy and transformation settings: a
// save writes them, the page shows them back, and saving again without
// touching them keeps them (the form rewrites the whole document).
func TestSettingsFormKeepsPrivacy(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	const js = "function transformEvent(e) {\n  return e;\n}"
	resp, _ := s.post("/admin/destinations/klaviyo", s.settingsForm("privacyMode", "hipaa", "dropIp", "off", "dropUserAgent", "default",
		"propertyAllowlist", "plan\ncoupon", "identifiers", "email", "transformation", js, "filter", `{"drop": "event == \"Debug\""}`), nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	saved := func() klaviyo.Settings {
		st, err := klaviyo.ParseSettings(tc.st.settings["klaviyo"].Settings)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	check := func(st klaviyo.Settings) {
		t.Helper()
		if st.Mode != "hipaa" || st.DropIP == nil || *st.DropIP || st.DropUserAgent != nil || len(st.PropertyAllowlist) != 2 ||
			len(st.Identifiers) != 1 || st.Transformation != js || st.Filter == nil || st.Filter.Drop != `event == "Debug"` {
			t.Errorf("saved settings = %+v (filter %+v)", st.Config, st.Filter)
		}
	}
	check(saved())
	_, body := s.get("/admin/destinations/klaviyo")
	for _, want := range []string{`<option value="hipaa" selected>`, "transformEvent", "coupon"} {
		if !strings.Contains(body, want) {
			t.Errorf("settings page lacks %q", want)
		}
	}
	// Save again from what the page shows (only the list id changes).
	resp, _ = s.post("/admin/destinations/klaviyo", s.settingsForm("version", "2", "listId", "L2", "privacyMode", "hipaa", "dropIp", "off",
		"dropUserAgent", "default", "propertyAllowlist", "plan\ncoupon", "identifiers", "email", "transformation", js, "filter", `{"drop":"event == \"Debug\""}`), nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second save: %d", resp.StatusCode)
	}
	check(saved())
	// A bad filter or transformation is refused next to its field.
	_, body = s.post("/admin/destinations/klaviyo", s.settingsForm("version", "3", "filter", "{nope"), nil)
	if !strings.Contains(body, `id="error-filter"`) {
		t.Errorf("bad filter not reported next to the field")
	}
	_, body = s.post("/admin/destinations/klaviyo", s.settingsForm("version", "3", "transformation", "function transformEvent(e) {\n return e +;\n}"), nil)
	if !strings.Contains(body, `id="error-transformation"`) || !strings.Contains(body, "line 2") {
		t.Errorf("bad transformation not reported next to the field")
	}
}
