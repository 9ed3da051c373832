package kdest

import (
	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/klaviyo"
)

// Fields describe Klaviyo's settings (DESIGN.md §5) for the console's
// form, in form order. Every setting of klaviyo.Settings must be here with
// a description: TestEverySettingDescribed fails otherwise. Aliases are
// the names ParseSettings accepts besides Relay's (Segment's, RudderStack's).
func Fields() []destination.Field {
	fields := []destination.Field{
		{Section: "Compatibility", Name: "compat", Label: "Compatibility preset", Kind: destination.KindSelect,
			Options: []string{klaviyo.CompatRelay, klaviyo.CompatSegment, klaviyo.CompatRudderStack, klaviyo.CompatFreshpaint},
			Help:    "Start every setting from the defaults of the system you are leaving (docs/KLAVIYO.md). The fields below show the result and are saved as shown."},
		{Section: "Compatibility", Name: "userIdProperty", Label: "userId property", Kind: destination.KindText, Hint: "id",
			Help: "With email as primary identifier, the custom property that holds the userId: id (Segment) or _id (RudderStack)."},
		{Section: "Compatibility", Name: "customSource", Label: "Consent source", Kind: destination.KindText, Hint: klaviyo.DefaultCustomSource,
			Help: "custom_source of subscriptions: what Klaviyo's consent records name as where consent came from."},
		{Section: "Credentials", Name: "privateApiKey", Aliases: []string{"privateKey", "apiSecret"}, Label: "Private API key", Kind: destination.KindSecret, Hint: "pk_…",
			Help: "Server-side key, sent as Authorization: Klaviyo-API-Key. Never shown again once saved; leave empty to keep the current key."},
		{Section: "Credentials", Name: "publicApiKey", Aliases: []string{"apiKey", "publicKey"}, Label: "Public API key (site id)", Kind: destination.KindSecret, Hint: "six characters",
			Help: "Site id (company_id) for client-side calls, e.g. an identify with only an anonymousId. Leave empty to keep the current key."},
		{Section: "Credentials", Name: "revision", Label: "API revision", Kind: destination.KindText,
			Help: "Klaviyo API revision header. Default: the revision of the API spec Relay was built against."},
		{Section: "Lists and consent", Name: "listId", Label: "Default list id", Kind: destination.KindText, Hint: "Xy12Ab",
			Help: "Default list for identify calls (per-event integrations.Klaviyo.listId and traits.properties.listId override it)."},
		{Section: "Lists and consent", Name: "listMode", Label: "List mode", Kind: destination.KindSelect, Options: []string{klaviyo.ListModeSubscribe, klaviyo.ListModeAdd},
			Help: "What an identify with a list and no explicit subscribe flag does: subscribe (Segment) or add = list membership only, no consent change (RudderStack)."},
		{Section: "Lists and consent", Name: "confirmOptin", Label: "Confirm opt-in", Kind: destination.KindBool,
			Help: "On: subscribing goes through the list's opt-in process (double opt-in lists send a confirmation). Off: consent was already given; subscribe as a historical import with consented_at."},
		{Section: "Lists and consent", Name: "consent", Label: "Consent channels", Kind: destination.KindList, Hint: "email, sms",
			Help: "Channels to subscribe, comma-separated: email, sms. (Legacy web, directmail and mobile are accepted with a warning; the current API has no such channels.)"},
		{Section: "Lists and consent", Name: "smsConsent", Label: "SMS consent", Kind: destination.KindBool,
			Help: "Also subscribe SMS when a phone number is present."},
		{Section: "Identity", Name: "enforceEmailAsPrimary", Aliases: []string{"enforceEmail"}, Label: "Use email as primary identifier", Kind: destination.KindBool,
			Help: "Never send external_id; userId goes to properties.id; an event needs an email or phone number."},
		{Section: "Identity", Name: "fallbackOnAnonymousId", Label: "Fall back on anonymousId", Kind: destination.KindBool,
			Help: "Without a userId, identify the profile by anonymous_id. Off: an event with neither userId, email nor phone is rejected with a clear error."},
		{Section: "Identity", Name: "defaultPhoneCountry", Label: "Default phone country", Kind: destination.KindText, Hint: "US",
			Help: "Region (ISO 3166, e.g. US) used to turn national phone numbers into E.164."},
		{Section: "Identity", Name: "strictPhone", Label: "Strict phone numbers", Kind: destination.KindBool,
			Help: "An unparseable phone number rejects the event. Off: the number is dropped with a warning on that event."},
		{Section: "Events", Name: "ecommerceNames", Label: "E-commerce names", Kind: destination.KindSelect, Options: []string{klaviyo.EcommerceKlaviyo, klaviyo.EcommercePassthrough, klaviyo.EcommerceSegment, klaviyo.EcommerceRudderStack},
			Help: "klaviyo: rename spec e-commerce events to Klaviyo's standard metrics and keys (Placed Order, Ordered Product, Viewed Product, …). passthrough: keep names and properties. segment: only Order Completed is renamed (Segment classic). rudderstack: Viewed, Added and Checkout renamed, Order Completed kept (RudderStack)."},
		{Section: "Events", Name: "sendPlacedOrderAsOrderCompleted", Label: "Keep \"Order Completed\"", Kind: destination.KindBool,
			Help: "Keep \"Order Completed\" as the metric name instead of \"Placed Order\"."},
		{Section: "Events", Name: "eventNameMap", Label: "Event name map", Kind: destination.KindMap, Hint: "Spec Event Name => Klaviyo Metric",
			Help: "Extra renames, one per line: Event Name => Klaviyo Metric (or paste a JSON object)."},
		{Section: "Events", Name: "sendPageAsTrack", Label: "Send page calls as events", Kind: destination.KindBool,
			Help: "Page calls become the event \"Viewed <name> Page\". Off: page calls are skipped server-side."},
		{Section: "Events", Name: "additionalPageInfo", Label: "Additional page info", Kind: destination.KindBool,
			Help: "Add context.page fields (url, path, referrer, …) to \"Viewed … Page\" events."},
		{Section: "Events", Name: "flattenProperties", Label: "Flatten properties", Kind: destination.KindBool,
			Help: "Nested custom properties become dotted keys (address.city)."},
		{Section: "Events", Name: "eventAllowlist", Aliases: []string{"whitelistedEvents"}, Label: "Event allowlist", Kind: destination.KindLines, Hint: "one event name per line",
			Help: "Only these track events are sent (one name per line). Cannot be combined with the denylist."},
		{Section: "Events", Name: "eventDenylist", Aliases: []string{"blacklistedEvents"}, Label: "Event denylist", Kind: destination.KindLines, Hint: "one event name per line",
			Help: "These track events are dropped (one name per line)."},
		{Section: "Device mode (browser)", Name: "deviceMode", Label: "Device mode", Kind: destination.KindSelect, Options: []string{klaviyo.DeviceModeOff, klaviyo.DeviceModeOn, klaviyo.DeviceModeBoth},
			Help: "on: browsers using analytics-next or RudderStack JS v3 pointed at Relay load Klaviyo's onsite script and send identify, track and page to Klaviyo themselves; Relay skips those events. both: as on, but Relay still delivers the browser's identify calls (lists, consent). Needs the public API key. See docs/DEVICE-MODE.md."},
		{Section: "Device mode (browser)", Name: "onsiteScriptUrl", Label: "Onsite script URL", Kind: destination.KindText, Hint: klaviyo.DefaultOnsiteScriptURL,
			Help: "Where browsers load Klaviyo's onsite script; {publicKey} is replaced by the public API key. Empty: Klaviyo's own."},
	}
	return append(fields, destination.PrivacyFields()...)
}
