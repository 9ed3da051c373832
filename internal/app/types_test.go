package app

import (
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/config"
)

// Config accepts every registered type and names the known ones when a
// destination's type is not among them.
func TestDestinationTypesChecked(t *testing.T) {
	types, err := Types()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range types.Names() {
		cfg := config.Config{Destinations: []config.Destination{{Name: "d", Type: name}}}
		if err := checkStart(cfg, types); err != nil {
			t.Errorf("registered type %s refused: %v", name, err)
		}
	}
	cfg := config.Config{Destinations: []config.Destination{{Name: "k", Type: "klaviyo"}, {Name: "m", Type: "mailchimp"}}}
	err = checkStart(cfg, types)
	if err == nil || !strings.Contains(err.Error(), `destinations[1].type: "mailchimp" is not a known destination type (klaviyo`) {
		t.Errorf("unknown type: %v", err)
	}
}
