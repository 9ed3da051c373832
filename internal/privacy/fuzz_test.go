package privacy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/spec"
)

// FuzzApply: for any event and policy, Apply never panics, never changes
// its input, drops every key its report says it dropped, and under an
// allowlist lets no unlisted, non-identifier key through.
func FuzzApply(f *testing.F) {
	seed, _ := json.Marshal(sample())
	f.Add(seed, "hipaa", "count,url", "firstName", uint8(0))
	f.Add([]byte(`{"type":"page","properties":{"url":"?#","search":"?a"},"context":{"page":{"url":7},"traits":[]}}`), "", "", "", uint8(15))
	f.Fuzz(func(t *testing.T, raw []byte, mode, props, traits string, flags uint8) {
		var ev spec.Event
		if json.Unmarshal(raw, &ev) != nil {
			return
		}
		cfg := Config{Mode: mode, DropIP: ptr(flags&1 != 0), DropUserAgent: ptr(flags&2 != 0),
			StripPageURLs: ptr(flags&4 != 0), DropFreeText: ptr(flags&8 != 0)}
		if flags&16 != 0 {
			cfg.PropertyAllowlist = strings.Split(props, ",")
			cfg.TraitAllowlist = strings.Split(traits, ",")
		}
		p, err := Compile(cfg)
		if err != nil {
			return
		}
		before, _ := json.Marshal(ev)
		out, rep := p.Apply(&ev)
		after, _ := json.Marshal(ev)
		if string(before) != string(after) {
			t.Fatal("Apply changed its input")
		}
		checkReport(t, out, rep)
		if cfg.PropertyAllowlist != nil {
			for k := range out.Properties {
				if _, ok := identifierTraits[k]; !ok && p.props != nil {
					if _, listed := p.props[k]; !listed {
						t.Errorf("unlisted property %q sent", k)
					}
				}
			}
		}
	})
}
