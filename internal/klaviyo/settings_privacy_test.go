package klaviyo

import (
	"errors"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/privacy"
)

func TestPrivacySettings(t *testing.T) {
	s, err := ParseSettings([]byte(`{"privacyMode": "hipaa", "propertyAllowlist": ["plan"], "dropIp": false,
		"identifiers": ["email"], "transformation": "function transformEvent(e) { return e }",
		"filter": {"drop": "event == \"Debug\"", "remove": ["x"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Mode != privacy.ModeHIPAA || s.PropertyAllowlist[0] != "plan" || s.DropIP == nil || *s.DropIP || s.Filter.Drop == "" || s.Transformation == "" {
		t.Errorf("settings = %+v", s)
	}
	// YAML works the same way.
	y, err := ParseSettings([]byte("privacyMode: hipaa\ndropUserAgent: true\n"))
	if err != nil || y.DropUserAgent == nil || !*y.DropUserAgent {
		t.Errorf("yaml: %+v, %v", y, err)
	}
}

func TestPrivacySettingsErrors(t *testing.T) {
	for _, c := range []struct{ in, setting, reason string }{
		{`{"privacyMode": "strict"}`, "privacyMode", "unknown mode"},
		{`{"dropIp": "yes"}`, "dropIp", "want"},
		{`{"propertyAllowlist": "plan"}`, "propertyAllowlist", "want"},
		{`{"identifiers": ["ssn"]}`, "identifiers", "unknown identifier"},
		{`{"transformation": "function transformEvent(e) {\n return e +;\n}"}`, "transformation", "line 2"},
		{`{"transformation": "var x = 1"}`, "transformation", "transformEvent"},
		{`{"filter": {"drop": "type =="}}`, "filter", "filter.drop"},
		{`{"filter": {"dorp": "x"}}`, "filter", "unknown field"},
	} {
		s, err := ParseSettings([]byte(c.in))
		if err == nil {
			err = s.Validate()
		}
		var se *SettingsError
		if !errors.As(err, &se) || se.Setting != c.setting || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%s: error %v, want one on %s saying %q", c.in, err, c.setting, c.reason)
		}
	}
}
