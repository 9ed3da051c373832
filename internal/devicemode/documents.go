package devicemode

import (
	"github.com/relaycdp/relay/internal/klaviyo"
)

// Names the browser side knows the integration by.
const (
	// IntegrationName is the integrations key of Klaviyo in both SDKs
	// (Segment's catalog name, RudderStack's display name).
	IntegrationName = "Klaviyo"
	// segmentLibraryName is the window global js/klaviyo.js defines as
	// analytics-next's remote plugin factory.
	segmentLibraryName = "relayKlaviyoDevice"
)

// clientSettings are the settings the browser integration reads. Only
// these leave Relay: never the private API key, list ids or consent.
type clientSettings struct {
	PublicKey                       string `json:"publicKey"`
	OnsiteScriptURL                 string `json:"onsiteScriptUrl"`
	DeviceMode                      string `json:"deviceMode"`
	EnforceEmailAsPrimary           bool   `json:"enforceEmailAsPrimary"`
	UserIDProperty                  string `json:"userIdProperty"`
	SendPlacedOrderAsOrderCompleted bool   `json:"sendPlacedOrderAsOrderCompleted"`
	SendPageAsTrack                 bool   `json:"sendPageAsTrack"`
}

func clientOf(s *klaviyo.Settings) clientSettings {
	return clientSettings{
		PublicKey:                       s.PublicAPIKey,
		OnsiteScriptURL:                 s.OnsiteScript(s.PublicAPIKey),
		DeviceMode:                      s.EffectiveDeviceMode(),
		EnforceEmailAsPrimary:           s.EnforceEmailAsPrimary,
		UserIDProperty:                  s.UserIDProperty,
		SendPlacedOrderAsOrderCompleted: s.SendPlacedOrderAsOrderCompleted,
		SendPageAsTrack:                 s.SendPageAsTrack,
	}
}

// segmentSettings is the project settings document analytics-next reads
// (src/browser/settings.ts CDNSettings, src/plugins/remote-loader,
// src/plugins/segmentio/normalize.ts of @segment/analytics-next):
//
//   - integrations["Segment.io"] sends events back to Relay's ingest;
//   - with device mode, integrations.Klaviyo has bundlingStatus "bundled",
//     which makes analytics-next name it in every event's
//     _metadata.bundled (how delivery knows the browser sent it), and no
//     type "browser", so the classic-destination loader leaves it alone;
//   - remotePlugins loads js/klaviyo.js as the Klaviyo destination plugin.
//
// metrics.sampleRate 0 keeps analytics-next from posting its telemetry to
// Segment.
func segmentSettings(writeKey string, o origin, dev *klaviyo.Settings) map[string]any {
	integrations := map[string]any{
		"Segment.io": map[string]any{
			"apiKey":                writeKey,
			"apiHost":               o.host + "/v1",
			"protocol":              o.scheme,
			"unbundledIntegrations": []string{},
			"addBundledMetadata":    true,
			"maybeBundledConfigIds": map[string]any{},
		},
	}
	remote := []any{}
	if dev != nil {
		cs := clientOf(dev)
		integrations[IntegrationName] = map[string]any{"bundlingStatus": "bundled"}
		remote = append(remote, map[string]any{
			"name":         IntegrationName,
			"creationName": IntegrationName,
			"libraryName":  segmentLibraryName,
			"url":          o.url(ScriptPath),
			"settings":     cs,
		})
	}
	plan := map[string]any{"__default": map[string]any{"enabled": true, "integrations": map[string]any{}}}
	return map[string]any{
		"integrations":              integrations,
		"plan":                      map[string]any{"track": plan, "identify": plan, "group": plan},
		"edgeFunction":              map[string]any{},
		"analyticsNextEnabled":      true,
		"middlewareSettings":        map[string]any{},
		"enabledMiddleware":         map[string]any{},
		"metrics":                   map[string]any{"sampleRate": 0},
		"legacyVideoPluginsEnabled": false,
		"remotePlugins":             remote,
	}
}

// rudderSourceConfig is the source config RudderStack's JS SDK v3 reads
// (isValidSourceConfig and getDestinationsFromConfig in
// @rudderstack/analytics-js): source.id and source.config must exist and
// source.destinations be a list. A destination in it counts as device mode
// unless its config says connectionMode "cloud", so in cloud mode the list
// is empty; in device mode the SDK loads <destSDKBaseURL>/Klaviyo.min.js
// (its file name for the display name "Klaviyo") and constructs
// window.Klaviyo_RS.Klaviyo with the destination's config.
func rudderSourceConfig(writeKey string, o origin, dev *klaviyo.Settings) map[string]any {
	dests := []any{}
	if dev != nil {
		cs := clientOf(dev)
		dests = append(dests, map[string]any{
			"id":                                  "relay-klaviyo",
			"name":                                IntegrationName,
			"enabled":                             true,
			"deleted":                             false,
			"config":                              rudderConfig(cs),
			"destinationDefinitionId":             "relay-klaviyo",
			"destinationDefinition":               map[string]any{"name": "KLAVIYO", "displayName": IntegrationName},
			"shouldApplyDeviceModeTransformation": false,
			"propagateEventsUntransformedOnError": false,
		})
	}
	return map[string]any{
		"isHosted": true,
		"source": map[string]any{
			"id":          "relay-source",
			"name":        "relay",
			"writeKey":    writeKey,
			"enabled":     true,
			"workspaceId": "relay",
			"config": map[string]any{
				"statsCollection": map[string]any{
					"errorReports": map[string]any{"enabled": false},
					"metrics":      map[string]any{"enabled": false},
				},
			},
			"destinations": dests,
		},
	}
}

func rudderConfig(cs clientSettings) map[string]any {
	return map[string]any{
		"publicKey":                       cs.PublicKey,
		"onsiteScriptUrl":                 cs.OnsiteScriptURL,
		"deviceMode":                      cs.DeviceMode,
		"enforceEmailAsPrimary":           cs.EnforceEmailAsPrimary,
		"userIdProperty":                  cs.UserIDProperty,
		"sendPlacedOrderAsOrderCompleted": cs.SendPlacedOrderAsOrderCompleted,
		"sendPageAsTrack":                 cs.SendPageAsTrack,
		"connectionMode":                  "device",
		"useNativeSDK":                    map[string]any{"web": true},
	}
}
