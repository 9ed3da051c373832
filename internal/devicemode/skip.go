package devicemode

import (
	"strings"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/spec"
)

// rudderBrowserLibrary is context.library.name of RudderStack's JS SDK.
// Its events carry no per-event device-mode mark (RudderStack's own server
// decides from the destination's config), so the library stands in for it.
const rudderBrowserLibrary = "RudderLabs JavaScript SDK"

// SentFromBrowser says why delivery must not send ev to Klaviyo because
// the browser's device-mode integration already did, or "" when it must.
// The integration handles identify, track and page. A Segment event is
// marked by analytics-next naming Klaviyo in _metadata.bundled; a
// RudderStack event comes from the JS SDK. In DeviceModeBoth identifies
// are still delivered: they upsert the profile (no event, nothing counted
// twice) and do what Klaviyo's onsite API cannot (lists, consent).
func SentFromBrowser(ev *spec.Event, s klaviyo.Settings) string {
	mode := s.EffectiveDeviceMode()
	if mode == klaviyo.DeviceModeOff || s.PublicAPIKey == "" {
		return ""
	}
	switch ev.Type {
	case spec.TypeTrack, spec.TypePage:
	case spec.TypeIdentify:
		if mode == klaviyo.DeviceModeBoth {
			return ""
		}
	default:
		return ""
	}
	for _, b := range ev.Bundled {
		if strings.EqualFold(b, IntegrationName) {
			return "sent to Klaviyo by the browser (device mode; _metadata.bundled names Klaviyo)"
		}
	}
	if lib, ok := ev.Context["library"].(map[string]any); ok {
		name, _ := lib["name"].(string)
		version, _ := lib["version"].(string)
		// Only v3 loads Relay's integration (v1.1 names and loads its
		// device-mode bundles differently), so older SDKs stay cloud mode.
		if name == rudderBrowserLibrary && strings.HasPrefix(version, "3.") {
			return "sent to Klaviyo by the browser (device mode; RudderStack JS SDK v3)"
		}
	}
	return ""
}
