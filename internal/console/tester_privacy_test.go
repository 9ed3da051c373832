package console

import (
	"strings"
	"testing"
)

// The tester runs the destination's transformation and privacy policy as
// delivery does, and says which keys the policy dropped, never their values.
func TestTesterShowsPolicyDrops(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	event := `{"type":"track","userId":"u-1","event":"Visit","messageId":"m-p","properties":{"diagnosis":"influenza","visits":2},
		"context":{"ip":"203.0.113.9","traits":{"email":"jane@example.com"}}}`
	settings := `{"privacyMode": "hipaa", "transformation": "function transformEvent(e) { console.log('seen', e.event); return e }"}`
	_, body := s.post("/admin/tester/transform", s.form("dest", "klaviyo", "event", event, "settings", settings), nil)
	for _, want := range []string{"hipaa privacy policy dropped 2 keys", "context.ip", "properties.diagnosis", "log: seen Visit", "/api/events"} {
		if !strings.Contains(body, want) {
			t.Errorf("tester answer lacks %q:\n%s", want, body)
		}
	}
	for _, secret := range []string{"influenza", "203.0.113.9"} {
		if strings.Contains(body, secret) {
			t.Errorf("tester answer shows the dropped value %q", secret)
		}
	}
	_, body = s.post("/admin/tester/transform", s.form("dest", "klaviyo", "event", event,
		"settings", `{"transformation": "function transformEvent(e) {\n  throw new Error('nope');\n}"}`), nil)
	if !strings.Contains(body, "transformation_js_error") || !strings.Contains(body, "line 2") {
		t.Errorf("a throwing transformation: %s", body)
	}
}
