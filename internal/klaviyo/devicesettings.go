package klaviyo

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/relaycdp/relay/internal/jsonx"
	"github.com/relaycdp/relay/internal/privacy"
)

// DeviceSettings say whether browsers talk to Klaviyo themselves (device
// mode, docs/DEVICE-MODE.md): the settings documents Relay serves to
// analytics.js and RudderStack's JS SDK then enable Relay's device-mode
// integration, which loads Klaviyo's onsite script with PublicAPIKey.
type DeviceSettings struct {
	// DeviceMode is DeviceModeOff (cloud mode only; "" means off),
	// DeviceModeOn or DeviceModeBoth.
	DeviceMode string `json:"deviceMode,omitempty"`
	// OnsiteScriptURL replaces Klaviyo's onsite script URL
	// (DefaultOnsiteScriptURL); "{publicKey}" in it is replaced by the
	// public API key.
	OnsiteScriptURL string `json:"onsiteScriptUrl,omitempty"`
}

// Values of DeviceSettings.DeviceMode.
const (
	// DeviceModeOff: browsers send to Relay only, as before device mode.
	DeviceModeOff = "off"
	// DeviceModeOn: browsers send identify, track and page to Klaviyo
	// themselves; Relay does not deliver those browser events again.
	DeviceModeOn = "on"
	// DeviceModeBoth: as on, but Relay also delivers the browser's
	// identify calls (list membership and consent, which Klaviyo's onsite
	// API cannot do); an identify creates no event, so nothing counts twice.
	DeviceModeBoth = "both"
)

// DefaultOnsiteScriptURL is Klaviyo's onsite JavaScript.
const DefaultOnsiteScriptURL = "https://static.klaviyo.com/onsite/js/klaviyo.js?company_id={publicKey}"

// EffectiveDeviceMode returns DeviceMode with "" read as DeviceModeOff.
func (d DeviceSettings) EffectiveDeviceMode() string {
	if d.DeviceMode == "" {
		return DeviceModeOff
	}
	return d.DeviceMode
}

// OnsiteScript returns the onsite script URL for publicKey.
func (d DeviceSettings) OnsiteScript(publicKey string) string {
	u := d.OnsiteScriptURL
	if u == "" {
		u = DefaultOnsiteScriptURL
	}
	return strings.ReplaceAll(u, "{publicKey}", url.QueryEscape(publicKey))
}

func (d *DeviceSettings) set(name, key string, v any) error {
	str, ok := v.(string)
	if !ok {
		return &SettingsError{Setting: key, Reason: fmt.Sprintf("want a string, got %s", jsonx.Kind(v))}
	}
	str = strings.TrimSpace(str)
	switch name {
	case "deviceMode":
		d.DeviceMode = strings.ToLower(str)
	case "onsiteScriptUrl":
		d.OnsiteScriptURL = str
	}
	return nil
}

func (d DeviceSettings) validate(publicKey string) []error {
	var errs []error
	switch d.DeviceMode {
	case "", DeviceModeOff:
	case DeviceModeOn, DeviceModeBoth:
		if publicKey == "" {
			errs = append(errs, &SettingsError{Setting: "deviceMode", Reason: "device mode needs publicApiKey (the site id Klaviyo's onsite script loads with)"})
		}
	default:
		errs = append(errs, &SettingsError{Setting: "deviceMode", Reason: `want "off", "on" or "both"`})
	}
	if d.OnsiteScriptURL != "" {
		u, err := url.Parse(d.OnsiteScriptURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, &SettingsError{Setting: "onsiteScriptUrl", Reason: "want an absolute http(s) URL"})
		}
	}
	return errs
}

// browserBypass is why a privacy policy and device mode exclude each
// other: the browser's identify, track and page go to Klaviyo without
// passing through Relay's pre-sink stage.
const browserBypass = "browsers send identify, track and page to Klaviyo directly, where Relay's "

// deviceModeConflicts refuses device mode beside a privacy policy that
// can drop anything: the policy would hold for server-side delivery only,
// and a hipaa user turning device mode on would send the browser's
// unfiltered traits, properties, IP and user agent to Klaviyo.
func (s Settings) deviceModeConflicts() error {
	if s.EffectiveDeviceMode() == DeviceModeOff {
		return nil
	}
	if p, err := privacy.Compile(s.Config); err == nil && p.Active() {
		return &SettingsError{Setting: "deviceMode", Reason: browserBypass +
			"privacy policy (privacyMode " + p.Mode() + ", allowlists, dropIp, ...) cannot apply: set deviceMode off, or remove the policy"}
	}
	return nil
}

// deviceModeWarnings say that a transformation or filter covers only the
// events Relay delivers, not those browsers send in device mode.
func (s Settings) deviceModeWarnings() []string {
	if s.EffectiveDeviceMode() == DeviceModeOff {
		return nil
	}
	var which []string
	if s.Transformation != "" {
		which = append(which, "transformation")
	}
	if s.Filter != nil {
		which = append(which, "filter")
	}
	if len(which) == 0 {
		return nil
	}
	return []string{"the " + strings.Join(which, " and ") + " do not apply to the events browsers send to Klaviyo in device mode (deviceMode " +
		s.EffectiveDeviceMode() + "); only to what Relay delivers"}
}

// ignoredWarning is the warning for an accepted setting without effect.
// RudderStack's useNativeSDK is its device-mode switch; Relay's is
// deviceMode, so the warning says where to go instead.
func ignoredWarning(key string) string {
	if strings.EqualFold(key, "useNativeSDK") || strings.EqualFold(key, "useNativeSDKToSend") || strings.EqualFold(key, "connectionMode") {
		return fmt.Sprintf("setting %s is ignored by Relay; device mode is set with deviceMode (off, on or both), see docs/DEVICE-MODE.md", key)
	}
	return fmt.Sprintf("setting %s is ignored by Relay", key)
}
