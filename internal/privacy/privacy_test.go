package privacy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/relaycdp/relay/internal/spec"
)

func ptr(b bool) *bool { return &b }

// sample is an event with a value of every kind the policy decides on.
func sample() spec.Event {
	return spec.Event{
		Type:        spec.TypeTrack,
		MessageID:   "m1",
		UserID:      "u1",
		AnonymousID: "a1",
		Event:       "Viewed Result",
		Properties: map[string]any{
			"diagnosis": "flu",
			"count":     float64(3),
			"paid":      true,
			"email":     "p@example.com",
			"url":       "https://clinic.example/r?patient=42#x",
			"referrer":  "https://search.example/?q=flu",
			"nested":    map[string]any{"a": "b"},
		},
		Context: map[string]any{
			"ip":        "203.0.113.9",
			"userAgent": "Mozilla/5.0",
			"traits":    map[string]any{"email": "p@example.com", "firstName": "Pat", "age": float64(40), "phone": "+15555550100"},
			"page":      map[string]any{"url": "https://clinic.example/p?ssn=1", "referrer": "https://r.example", "path": "/p"},
			"library":   map[string]any{"name": "analytics.js"},
		},
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		wantDropped []string
		check       func(t *testing.T, ev spec.Event)
	}{
		{
			name:        "standard drops nothing",
			cfg:         Config{},
			wantDropped: nil,
		},
		{
			name: "hipaa defaults",
			cfg:  Config{Mode: ModeHIPAA},
			wantDropped: []string{"anonymousId", "context.ip", "context.page.referrer", "context.page.url?query",
				"context.traits.firstName", "context.userAgent", "properties.diagnosis", "properties.nested",
				"properties.referrer", "properties.url", "properties.url?query"},
			check: func(t *testing.T, ev spec.Event) {
				if ev.AnonymousID != "" || ev.UserID != "u1" {
					t.Errorf("ids = %q %q", ev.UserID, ev.AnonymousID)
				}
				page := ev.Context["page"].(map[string]any)
				if page["url"] != "https://clinic.example/p" || page["path"] != "/p" {
					t.Errorf("page = %v", page)
				}
				if ev.Properties["count"] != float64(3) || ev.Properties["email"] != "p@example.com" {
					t.Errorf("properties = %v", ev.Properties)
				}
				if ev.Context["library"] == nil {
					t.Error("library dropped")
				}
			},
		},
		{
			name:        "hipaa with an allowlist keeps listed free text",
			cfg:         Config{Mode: ModeHIPAA, PropertyAllowlist: []string{"diagnosis", "url"}, TraitAllowlist: []string{"firstName"}},
			wantDropped: []string{"anonymousId", "context.ip", "context.page.referrer", "context.page.url?query", "context.traits.age", "context.userAgent", "properties.count", "properties.nested", "properties.paid", "properties.referrer", "properties.url?query"},
			check: func(t *testing.T, ev spec.Event) {
				if ev.Properties["url"] != "https://clinic.example/r" {
					t.Errorf("url = %v", ev.Properties["url"])
				}
			},
		},
		{
			name:        "dropIp alone",
			cfg:         Config{DropIP: ptr(true)},
			wantDropped: []string{"context.ip"},
		},
		{
			name:        "hipaa with the ip allowed back",
			cfg:         Config{Mode: ModeHIPAA, DropIP: ptr(false), DropFreeText: ptr(false), StripPageURLs: ptr(false), DropUserAgent: ptr(false)},
			wantDropped: []string{"anonymousId"},
		},
		{
			name:        "identifiers only email",
			cfg:         Config{Identifiers: []string{IDEmail}},
			wantDropped: []string{"anonymousId", "context.traits.phone", "userId"},
			check: func(t *testing.T, ev spec.Event) {
				if ev.UserID != "" || ev.Context["traits"].(map[string]any)["email"] == nil {
					t.Errorf("event = %+v", ev)
				}
			},
		},
		{
			name:        "empty property allowlist drops every property but identifiers",
			cfg:         Config{PropertyAllowlist: []string{}},
			wantDropped: []string{"properties.count", "properties.diagnosis", "properties.nested", "properties.paid", "properties.referrer", "properties.url"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			in := sample()
			before, _ := json.Marshal(in)
			out, rep := p.Apply(&in)
			if diff := cmp.Diff(tt.wantDropped, rep.Dropped); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
			after, _ := json.Marshal(in)
			if string(before) != string(after) {
				t.Error("Apply changed its input")
			}
			checkReport(t, out, rep)
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}
}

// checkReport: every dropped key is absent from the output, every sent key
// is present, and the report holds no value of the sample.
func checkReport(t *testing.T, out spec.Event, rep Report) {
	t.Helper()
	for _, k := range rep.Dropped {
		if strings.HasSuffix(k, "?query") {
			continue
		}
		if _, ok := lookup(out, k); ok {
			t.Errorf("dropped key %s still present", k)
		}
	}
	for _, k := range rep.Sent {
		if _, ok := lookup(out, k); !ok {
			t.Errorf("sent key %s absent", k)
		}
	}
	b, _ := json.Marshal(rep)
	for _, v := range []string{"flu", "Pat", "203.0.113", "Mozilla", "p@example.com", "patient"} {
		if strings.Contains(string(b), v) {
			t.Errorf("report holds a value (%q): %s", v, b)
		}
	}
}

func lookup(ev spec.Event, path string) (any, bool) {
	switch path {
	case "userId":
		return ev.UserID, ev.UserID != ""
	case "anonymousId":
		return ev.AnonymousID, ev.AnonymousID != ""
	}
	parts := strings.Split(path, ".")
	var m map[string]any
	switch parts[0] {
	case "properties":
		m = ev.Properties
	case "traits":
		m = ev.Traits
	case "context":
		m = ev.Context
	}
	for i, p := range parts[1:] {
		v, ok := m[p]
		if !ok {
			return nil, false
		}
		if i == len(parts)-2 {
			return v, true
		}
		m, _ = v.(map[string]any)
	}
	return nil, false
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		cfg     Config
		setting string
	}{
		{Config{Mode: "strict"}, "privacyMode"},
		{Config{Identifiers: []string{"ssn"}}, "identifiers"},
		{Config{PropertyAllowlist: []string{" "}}, "propertyAllowlist"},
		{Config{TraitAllowlist: []string{""}}, "traitAllowlist"},
	} {
		_, err := Compile(c.cfg)
		var pe *Error
		if !errors.As(err, &pe) || pe.Setting != c.setting {
			t.Errorf("Compile(%+v) = %v, want an error on %s", c.cfg, err, c.setting)
		}
	}
}

func TestActive(t *testing.T) {
	var nilPolicy *Policy
	std, _ := Compile(Config{})
	hipaa, _ := Compile(Config{Mode: ModeHIPAA})
	if nilPolicy.Active() || std.Active() || !hipaa.Active() {
		t.Errorf("Active: nil %v standard %v hipaa %v", nilPolicy.Active(), std.Active(), hipaa.Active())
	}
	in := sample()
	out, rep := nilPolicy.Apply(&in)
	if len(rep.Dropped) != 0 || !reflect.DeepEqual(out, in) {
		t.Errorf("nil policy changed the event: %v", rep.Dropped)
	}
}

func TestApplyDeterministic(t *testing.T) {
	p, _ := Compile(Config{Mode: ModeHIPAA})
	in := sample()
	_, first := p.Apply(&in)
	for range 20 {
		if _, r := p.Apply(&in); !reflect.DeepEqual(r, first) {
			t.Fatalf("report differs between runs: %v vs %v", r, first)
		}
	}
}

func BenchmarkApplyHIPAA(b *testing.B) {
	p, _ := Compile(Config{Mode: ModeHIPAA, PropertyAllowlist: []string{"count"}})
	in := sample()
	b.ReportAllocs()
	for b.Loop() {
		p.Apply(&in)
	}
}

func BenchmarkApplyStandard(b *testing.B) {
	p, _ := Compile(Config{})
	in := sample()
	b.ReportAllocs()
	for b.Loop() {
		p.Apply(&in)
	}
}
