package devicemode

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestIntegrationScript runs js/klaviyo.js under Node with a fake DOM:
// calls made before the onsite script loaded are queued, then sent in
// order; the settings that apply in the browser change the mapping; a
// page with only the legacy _learnq queue gets _learnq.push calls.
func TestIntegrationScript(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("RELAY_REQUIRE_SERVICES") != "" {
			t.Fatal("node is not installed")
		}
		t.Skip("node is not installed")
	}
	identify := map[string]any{"type": "identify", "userId": "u1", "traits": map[string]any{"email": "a@example.com", "firstName": "Ann", "plan": "pro"}}
	order := map[string]any{"type": "track", "event": "Order Completed", "messageId": "m2", "properties": map[string]any{"order_id": "o1", "revenue": 30}}
	page := map[string]any{"type": "page", "name": "Home", "messageId": "m3", "properties": map[string]any{"url": "http://shop.test/"}}
	base := map[string]any{"publicKey": "PK", "onsiteScriptUrl": "http://k.test/klaviyo.js?company_id=PK"}
	with := func(extra map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name     string
		api      string
		settings map[string]any
		events   []map[string]any
		want     [][]any // klaviyo.* calls, or _learnq entries for api "learnq"
	}{
		{"defaults, queued until loaded", "klaviyo", base, []map[string]any{identify, order, page}, [][]any{
			{"identify", map[string]any{"$id": "u1", "$email": "a@example.com", "$first_name": "Ann", "plan": "pro"}},
			{"track", "Placed Order", map[string]any{"order_id": "o1", "revenue": 30.0, "$value": 30.0, "$event_id": "o1"}},
		}},
		{"enforceEmailAsPrimary, sendPlacedOrderAsOrderCompleted, sendPageAsTrack", "klaviyo",
			with(map[string]any{"enforceEmailAsPrimary": true, "sendPlacedOrderAsOrderCompleted": true, "sendPageAsTrack": true}),
			[]map[string]any{identify, {"type": "identify", "userId": "u2"}, order, page}, [][]any{
				{"identify", map[string]any{"id": "u1", "$email": "a@example.com", "$first_name": "Ann", "plan": "pro"}},
				{"track", "Order Completed", map[string]any{"order_id": "o1", "revenue": 30.0, "$value": 30.0, "$event_id": "o1"}},
				{"track", "Viewed Home Page", map[string]any{"url": "http://shop.test/", "$event_id": "m3"}},
			}},
		// As server-side (docs/KLAVIYO.md userIdProperty): the rudderstack
		// preset's _id holds the userId, and a trait of that name is kept.
		{"enforceEmailAsPrimary with userIdProperty _id", "klaviyo",
			with(map[string]any{"enforceEmailAsPrimary": true, "userIdProperty": "_id"}),
			[]map[string]any{identify, {"type": "identify", "userId": "u3", "traits": map[string]any{"email": "c@example.com", "id": "t-id", "_id": "t-_id"}}}, [][]any{
				{"identify", map[string]any{"_id": "u1", "$email": "a@example.com", "$first_name": "Ann", "plan": "pro"}},
				{"identify", map[string]any{"_id": "t-_id", "id": "t-id", "$email": "c@example.com"}},
			}},
		{"legacy _learnq", "learnq", base, []map[string]any{identify, order}, [][]any{
			{"identify", map[string]any{"$id": "u1", "$email": "a@example.com", "$first_name": "Ann", "plan": "pro"}},
			{"track", "Placed Order", map[string]any{"order_id": "o1", "revenue": 30.0, "$value": 30.0, "$event_id": "o1"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arg, _ := json.Marshal(map[string]any{"api": tc.api, "settings": tc.settings, "events": tc.events})
			out, err := exec.Command("node", "testdata/script_test.js", string(arg)).CombinedOutput()
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			var got struct {
				ScriptSrc       []string `json:"scriptSrc"`
				CallsBeforeLoad int      `json:"callsBeforeLoad"`
				Calls           [][]any  `json:"calls"`
				Learnq          [][]any  `json:"learnq"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if !cmp.Equal(got.ScriptSrc, []string{"http://k.test/klaviyo.js?company_id=PK"}) || got.CallsBeforeLoad != 0 {
				t.Errorf("scripts %q, %d calls before the onsite script loaded", got.ScriptSrc, got.CallsBeforeLoad)
			}
			calls := got.Calls
			if tc.api == "learnq" {
				if len(got.Calls) != 0 {
					t.Errorf("klaviyo.* called without klaviyo: %v", got.Calls)
				}
				calls = got.Learnq
			}
			if diff := cmp.Diff(tc.want, calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}
