package klaviyo

import (
	"strings"
	"testing"
)

func TestDeviceSettings(t *testing.T) {
	tests := []struct {
		name, doc  string
		wantMode   string
		wantScript string
		wantErr    string // substring of Validate's or ParseSettings' error
	}{
		{"default is off", `{}`, DeviceModeOff, "https://static.klaviyo.com/onsite/js/klaviyo.js?company_id=PK1", ""},
		{"on", `{"deviceMode":"on","publicApiKey":"PK1"}`, DeviceModeOn, "https://static.klaviyo.com/onsite/js/klaviyo.js?company_id=PK1", ""},
		{"both, any case", `{"DeviceMode":"Both","publicApiKey":"PK1"}`, DeviceModeBoth, "https://static.klaviyo.com/onsite/js/klaviyo.js?company_id=PK1", ""},
		{"script URL", `{"deviceMode":"on","publicApiKey":"PK1","onsiteScriptUrl":"http://127.0.0.1:9/k.js?id={publicKey}"}`, DeviceModeOn, "http://127.0.0.1:9/k.js?id=PK1", ""},
		{"unknown mode", `{"deviceMode":"maybe"}`, "", "", `deviceMode: want "off", "on" or "both"`},
		{"on needs the public key", `{"deviceMode":"on"}`, "", "", "deviceMode: device mode needs publicApiKey"},
		{"mode not a string", `{"deviceMode":true}`, "", "", "deviceMode: want a string, got a boolean"},
		{"relative script URL", `{"onsiteScriptUrl":"/k.js"}`, "", "", "onsiteScriptUrl: want an absolute http(s) URL"},
		// Browsers send to Klaviyo directly: a privacy policy could not
		// touch those events (docs/PRIVACY.md, docs/DEVICE-MODE.md).
		{"hipaa refuses device mode", `{"deviceMode":"on","publicApiKey":"PK1","privacyMode":"hipaa"}`, "", "", "deviceMode: browsers send identify, track and page to Klaviyo directly"},
		{"a policy alone refuses device mode", `{"deviceMode":"both","publicApiKey":"PK1","dropIp":true}`, "", "", "deviceMode: browsers send identify, track and page to Klaviyo directly"},
		{"hipaa with device mode off", `{"deviceMode":"off","publicApiKey":"PK1","privacyMode":"hipaa"}`, DeviceModeOff, "https://static.klaviyo.com/onsite/js/klaviyo.js?company_id=PK1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSettings([]byte(tc.doc))
			if err == nil {
				err = s.Validate()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.EffectiveDeviceMode(); got != tc.wantMode {
				t.Errorf("EffectiveDeviceMode() = %q, want %q", got, tc.wantMode)
			}
			if got := s.OnsiteScript("PK1"); got != tc.wantScript {
				t.Errorf("OnsiteScript = %q, want %q", got, tc.wantScript)
			}
		})
	}
}

func TestUseNativeSDKWarningPointsToDeviceMode(t *testing.T) {
	// compat names the preset, so the only warning left is useNativeSDK's.
	s, err := ParseSettings([]byte(`{"compat":"rudderstack","useNativeSDK":{"web":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	w := s.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "useNativeSDK is ignored") || !strings.Contains(w[0], "deviceMode") {
		t.Errorf("warnings = %q", w)
	}
}

func TestDeviceModeWarnsTransformationSkipsBrowserEvents(t *testing.T) {
	s, err := ParseSettings([]byte(`{"deviceMode":"on","publicApiKey":"PK1","filter":{"remove":["secret"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	w := strings.Join(s.Warnings(), "\n")
	if !strings.Contains(w, "filter") || !strings.Contains(w, "do not apply to the events browsers send to Klaviyo") {
		t.Errorf("warnings = %q", w)
	}
}
