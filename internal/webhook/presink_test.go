package webhook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/spec"
)

// The privacy and transformation settings are the Webhook's too: on its
// form, parsed (aliases, any case), kept through the JSON document, and
// refused by name when they cannot run.
func TestPreSinkSettings(t *testing.T) {
	s := settings(t, `{"url":"https://x.example","PrivacyMode":"hipaa","dropPageUrls":true,"propertyAllowlist":["plan"],
		"transformation":"export function transformEvent(e) { return e }","filter":{"drop":"event == \"Debug\""}}`)
	if s.Mode != ModeEvent || s.PreSink().Config.Mode != "hipaa" || s.StripPageURLs == nil || !*s.StripPageURLs ||
		s.Transformation == "" || s.Filter == nil || len(s.PropertyAllowlist) != 1 {
		t.Fatalf("parsed %+v", s)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSettings(raw)
	if err != nil || back.PreSink().Config.Mode != "hipaa" || back.Transformation != s.Transformation || back.Filter == nil {
		t.Errorf("round trip: %s → %+v, %v", raw, back, err)
	}
	names := map[string]bool{}
	for _, f := range Fields() {
		names[f.Name] = true
	}
	for _, want := range []string{"url", "privacyMode", "transformation", "filter", "dropIp"} {
		if !names[want] {
			t.Errorf("the form has no %s", want)
		}
	}
	for _, tc := range []struct{ doc, setting string }{
		{`{"url":"https://x","privacyMode":"strict"}`, "privacyMode"},
		{`{"url":"https://x","dropIp":"yes"}`, "dropIp"},
		{`{"url":"https://x","transformation":"function ("}`, "transformation"},
	} {
		_, err := ParseSettings([]byte(tc.doc))
		ses := destination.SettingsErrors(err)
		if len(ses) == 0 || ses[0].Setting != tc.setting {
			t.Errorf("%s: %v; want an error naming %s", tc.doc, err, tc.setting)
		}
	}
}

// A transformation that fans an event out sends each event with its own
// idempotency key; one that drops everything settles the job skipped.
func TestTransformedEventsSent(t *testing.T) {
	rc, url := newReceiver(t, nil)
	s := settings(t, `{"url":"`+url+`"}`)
	jobs := jobsOf("m1", "m2", "m3")
	jobs[0].Events = []spec.Event{*jobs[0].Event, *jobs[0].Event}
	jobs[0].Events[1].Event = "Clicked Twice"
	jobs[1].Events = []spec.Event{}
	res := sinkFor(s).Deliver(context.Background(), destination.Batch{Jobs: jobs})
	if res[0].Outcome != destination.Delivered || res[1].Outcome != destination.Skipped || res[2].Outcome != destination.Delivered {
		t.Fatalf("results %+v", res)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var keys, names []string
	for i, b := range rc.bodies {
		keys = append(keys, rc.heads[i].Get("Idempotency-Key"))
		var ev spec.Event
		_ = json.Unmarshal(b, &ev)
		names = append(names, ev.Event)
	}
	got := strings.Join(keys, ",") + " " + strings.Join(names, ",")
	for _, want := range []string{"m1-0", "m1-1", "m3", "Clicked Twice"} {
		if !strings.Contains(got, want) {
			t.Errorf("sent %s; want %s among them", got, want)
		}
	}
	if len(rc.bodies) != 3 {
		t.Errorf("%d requests, want 3", len(rc.bodies))
	}
}

// The event tester runs the policy and the transformation: what it shows
// is what would be sent.
func TestEventTesterRunsPreSink(t *testing.T) {
	s := settings(t, `{"url":"https://x.example/hook","privacyMode":"hipaa",
		"transformation":"export function transformEvent(e) { if (e.event === 'Drop') return null; console.log('ok'); return e }"}`)
	in := `[{"type":"track","event":"E","userId":"u","messageId":"t-1","context":{"ip":"203.0.113.50"}},
		{"type":"track","event":"Drop","userId":"u","messageId":"t-2"}]`
	res, err := Type().Test([]byte(in), spec.Options{MaxEventBytes: 32 << 10}, s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.Output), "203.0.113.50") {
		t.Errorf("the dropped IP is in the request: %s", res.Output)
	}
	e := res.Events
	if len(e) != 2 || len(e[0].Requests) != 1 || !strings.Contains(strings.Join(e[0].Dropped, ","), "context.ip") ||
		len(e[0].Logs) != 1 || e[0].PrivacyMode != "hipaa" || e[1].Skipped == "" || len(e[1].Requests) != 0 {
		t.Errorf("outcomes %+v", e)
	}
}
