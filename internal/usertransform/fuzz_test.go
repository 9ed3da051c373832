package usertransform

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/spec"
)

// FuzzJSBridge feeds arbitrary events through the JS bridge (Go → JSON →
// JS → JSON → Go) with transformations that return what they were given,
// a piece of it, or an arbitrary JSON value parsed in JS: the bridge never
// panics, and every failure is an *Error.
func FuzzJSBridge(f *testing.F) {
	seed, _ := json.Marshal(event())
	f.Add(seed, `{"type":"identify","traits":{"a":[1,{"b":null}]}}`)
	f.Add([]byte(`{"type":"page","properties":{"\u0000":"\ud800"}}`), `[{"type":"track"},null,3]`)
	f.Add([]byte(`{"type":"track","messageId":"x"}`), `{"timestamp":"not a time"}`)
	lim := Limits{Timeout: 2 * time.Second, VMs: 1}
	echo, err := CompileJS(`function transformEvent(e) { return e }`, lim)
	if err != nil {
		f.Fatal(err)
	}
	other, err := CompileJS(`function transformEvent(e, m) { m(e); return JSON.parse(e.properties.__out) }`, lim)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte, out string) {
		var ev spec.Event
		if json.Unmarshal(raw, &ev) != nil {
			return
		}
		if ev.Type == "" {
			ev.Type = spec.TypeTrack
		}
		r, err := echo.Transform(context.Background(), &ev, Metadata{})
		var te *Error
		if err != nil && !errors.As(err, &te) {
			t.Fatalf("echo: %v is not *Error", err)
		}
		if err == nil && len(r.Events) != 1 {
			t.Fatalf("echo returned %d events", len(r.Events))
		}
		props := map[string]any{"__out": out}
		for k, v := range ev.Properties {
			props[k] = v
		}
		ev.Properties = props
		if _, err := other.Transform(context.Background(), &ev, Metadata{}); err != nil && !errors.As(err, &te) {
			t.Fatalf("other: %v is not *Error", err)
		}
	})
}
