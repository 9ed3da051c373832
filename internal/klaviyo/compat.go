package klaviyo

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/relaycdp/relay/internal/jsonx"
)

// Compatibility presets: the compat setting starts every other setting
// from the defaults the named system documents, so a team migrating from
// it sees the same Klaviyo data (list membership vs consent, anonymous
// events, metric names, the userId property). Settings given explicitly
// beside compat win. The table is the single source: docs/KLAVIYO.md
// shows PresetTableMarkdown, and a test keeps the two identical.

// Values of Settings.Compat.
const (
	CompatRelay       = "relay"
	CompatSegment     = "segment"
	CompatRudderStack = "rudderstack"
	CompatFreshpaint  = "freshpaint"
)

// compatNames are the presets in the order the docs list them.
var compatNames = []string{CompatRelay, CompatSegment, CompatRudderStack, CompatFreshpaint}

// presetRow is one setting's default under each preset, and where the
// peer's behaviour is documented.
type presetRow struct {
	setting string // canonical setting name (settingNames)
	values  map[string]any
	source  string
}

var emailOnly = []any{ChannelEmail}

// presetTable: relay is DefaultSettings (today's behaviour).
var presetTable = []presetRow{
	{"listMode", map[string]any{CompatRelay: ListModeSubscribe, CompatSegment: ListModeSubscribe, CompatRudderStack: ListModeAdd, CompatFreshpaint: ListModeAdd},
		"Segment subscribes identified users to the default list (seed 001 \"List ID\"); RudderStack adds them and subscribes only with subscribe: true (seed 004 \"Adding a user to a list\"); Freshpaint has no lists (peers.md §1)"},
	{"confirmOptin", map[string]any{CompatRelay: true, CompatSegment: true, CompatRudderStack: true, CompatFreshpaint: true},
		"seed 001 \"Confirm Optin\": defaults to true"},
	{"consent", map[string]any{CompatRelay: emailOnly, CompatSegment: emailOnly, CompatRudderStack: emailOnly, CompatFreshpaint: emailOnly},
		"RudderStack consent defaults to [\"email\"] (peers.md §1 settings)"},
	{"fallbackOnAnonymousId", map[string]any{CompatRelay: false, CompatSegment: false, CompatRudderStack: true, CompatFreshpaint: false},
		"seed 001 \"Fallback on Anonymous ID\" is off unless enabled; seed 004: \"In case userId is absent, RudderStack uses anonymousId\""},
	{"ecommerceNames", map[string]any{CompatRelay: EcommerceKlaviyo, CompatSegment: EcommerceSegment, CompatRudderStack: EcommerceRudderStack, CompatFreshpaint: EcommercePassthrough},
		"seed 001 renames only Order Completed (Placed Order + Ordered Product); seed 004 renames Product Viewed/Clicked, Product Added, Checkout Started; Freshpaint documents no renaming (seed 003)"},
	{"sendPlacedOrderAsOrderCompleted", map[string]any{CompatRelay: false, CompatSegment: false, CompatRudderStack: false, CompatFreshpaint: false},
		"seed 001 \"Send Placed Order Events as Order Completed\" is an opt-in"},
	{"enforceEmailAsPrimary", map[string]any{CompatRelay: false, CompatSegment: false, CompatRudderStack: false, CompatFreshpaint: true},
		"seeds 001 and 004: enable only against duplicate profiles; seed 003: \"By default, email is set as the preferred user identifier\""},
	{"userIdProperty", map[string]any{CompatRelay: "id", CompatSegment: "id", CompatRudderStack: "_id", CompatFreshpaint: "id"},
		"seed 001: \"a custom attribute id\"; seed 004: \"a custom attribute _id\""},
	{"sendPageAsTrack", map[string]any{CompatRelay: false, CompatSegment: false, CompatRudderStack: false, CompatFreshpaint: false},
		"seed 001: page calls are client-side only; seed 004: page calls only in device mode (sendPageAsTrack is opt-in)"},
}

// compatTitle is how messages name a preset's system.
var compatTitle = map[string]string{CompatRelay: "Relay", CompatSegment: "Segment", CompatRudderStack: "RudderStack", CompatFreshpaint: "Freshpaint"}

// presetByName reports whether name is a preset.
func presetByName(name string) (string, bool) {
	for _, n := range compatNames {
		if n == name {
			return n, true
		}
	}
	return "", false
}

// applyCompat applies the preset named by raw's compat key (any case)
// before the explicit settings are read, so they win.
func (s *Settings) applyCompat(raw map[string]any, filterMode *string) error {
	var key string
	var v any
	for k, val := range raw {
		if strings.EqualFold(k, "compat") {
			key, v = k, val
		}
	}
	if key == "" || v == nil {
		return nil
	}
	name, ok := v.(string)
	if !ok {
		return &SettingsError{Setting: key, Reason: "want a string, got " + jsonx.Kind(v)}
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if _, ok := presetByName(name); !ok {
		return &SettingsError{Setting: key, Reason: `want "relay", "segment", "rudderstack" or "freshpaint"`}
	}
	for _, row := range presetTable {
		def := settingNames[strings.ToLower(row.setting)]
		if err := s.set(def, row.setting, row.values[name], filterMode); err != nil {
			return fmt.Errorf("preset %s: %w", name, err)
		}
	}
	s.Compat = name
	return nil
}

// PresetSettings returns DefaultSettings with the named preset applied.
func PresetSettings(name string) (Settings, error) {
	return ParseSettings([]byte(`{"compat":` + fmt.Sprintf("%q", name) + `}`))
}

// PresetImplies lists, for the console, what the preset sets: one
// "setting: value" line per row of the table.
func PresetImplies(name string) []string {
	if _, ok := presetByName(name); !ok {
		return nil
	}
	out := make([]string, 0, len(presetTable))
	for _, row := range presetTable {
		out = append(out, row.setting+": "+presetValue(row.values[name]))
	}
	return out
}

// Marker settings that only one system's settings export uses.
var (
	rudderStackMarkers = []string{"eventfilteringoption", "whitelistedevents", "blacklistedevents",
		"apiversion", "usenativesdk", "usenativesdktosend", "consentmanagement"}
	segmentMarkers = []string{"apikey", "privatekey", "enforceemail"}
)

// DetectCompat names the system whose settings export data looks like
// ("rudderstack", "segment"), or "" when it cannot tell. The console's
// import uses it to select the preset; ParseSettings never applies it on
// its own (Settings.Warnings says so instead).
func DetectCompat(data []byte) string {
	raw, err := decodeSettingsDoc(data)
	if err != nil {
		return ""
	}
	return detectCompat(raw)
}

func detectCompat(raw map[string]any) string {
	for k := range raw {
		if containsFold(rudderStackMarkers, k) {
			return CompatRudderStack
		}
	}
	for k := range raw {
		if containsFold(segmentMarkers, k) {
			return CompatSegment
		}
	}
	return ""
}

func containsFold(list []string, k string) bool {
	for _, e := range list {
		if strings.EqualFold(e, k) {
			return true
		}
	}
	return false
}

func presetValue(v any) string {
	switch t := v.(type) {
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = fmt.Sprint(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case nil:
		return "—"
	}
	return fmt.Sprint(v)
}

// PresetTableMarkdown renders the preset table as docs/KLAVIYO.md shows it.
func PresetTableMarkdown() string {
	var b strings.Builder
	b.WriteString("| setting | " + strings.Join(compatNames, " | ") + " | source |\n")
	b.WriteString("|---|" + strings.Repeat("---|", len(compatNames)) + "---|\n")
	for _, row := range presetTable {
		b.WriteString("| " + row.setting + " |")
		for _, n := range compatNames {
			b.WriteString(" " + presetValue(row.values[n]) + " |")
		}
		b.WriteString(" " + row.source + " |\n")
	}
	return b.String()
}

// ImportSettings reads a pasted settings export (Relay's, Segment's or
// RudderStack's; JSON or YAML) for the console's import: when it names no
// compat preset and looks like a Segment or RudderStack export, the
// matching preset is added, and named in preset. Keys the export lacks
// are kept from cur. The result is a settings document ParseSettings and
// Validate accept.
func ImportSettings(data []byte, cur Settings) (doc json.RawMessage, preset string, err error) {
	raw, err := decodeSettingsDoc(data)
	if err != nil {
		return nil, "", err
	}
	if len(raw) == 0 {
		return nil, "", &SettingsError{Reason: "the pasted settings are empty"}
	}
	if _, given := getCI(raw, "compat"); !given {
		if preset = detectCompat(raw); preset != "" {
			raw["compat"] = preset
		}
	}
	for _, k := range []struct{ name, v string }{{"privateApiKey", cur.PrivateAPIKey}, {"publicApiKey", cur.PublicAPIKey}} {
		if k.v != "" && !hasSetting(raw, k.name) {
			raw[k.name] = k.v
		}
	}
	doc, err = json.Marshal(raw)
	if err != nil {
		return nil, "", &SettingsError{Reason: "cannot re-encode the pasted settings: " + err.Error()}
	}
	s, err := ParseSettings(doc)
	if err != nil {
		return nil, "", err
	}
	if err := s.Validate(); err != nil {
		return nil, "", err
	}
	return doc, preset, nil
}

// hasSetting reports whether raw sets the canonical setting under any of
// its accepted names.
func hasSetting(raw map[string]any, canonical string) bool {
	for k := range raw {
		if def, ok := settingNames[strings.ToLower(k)]; ok && def.name == canonical {
			return true
		}
	}
	return false
}

// CompatTitle names a preset's system for display ("RudderStack").
func CompatTitle(name string) string { return compatTitle[name] }

// PresetSettingNames are the settings a preset sets.
func PresetSettingNames() []string {
	out := make([]string, len(presetTable))
	for i, row := range presetTable {
		out[i] = row.setting
	}
	return out
}
