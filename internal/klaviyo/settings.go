package klaviyo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"
	"go.yaml.in/yaml/v3"

	"github.com/relaycdp/relay/internal/jsonx"
	"github.com/relaycdp/relay/internal/klaviyo/openapi"
	"github.com/relaycdp/relay/internal/privacy"
)

// Settings are the Klaviyo destination settings of DESIGN.md §5. The JSON
// names are Relay's; ParseSettings also accepts Segment's and RudderStack's
// names so existing settings can be pasted unchanged.
type Settings struct {
	// PrivateAPIKey authenticates server-side calls
	// (Authorization: Klaviyo-API-Key …). A secret: never printed.
	PrivateAPIKey string `json:"privateApiKey,omitempty"`
	// PublicAPIKey is the site id (company_id) for /client/* calls.
	PublicAPIKey string `json:"publicApiKey,omitempty"`
	// ListID is the default list of identify calls.
	ListID string `json:"listId,omitempty"`
	// ConfirmOptin true subscribes through the list's opt-in process; false
	// means consent was already given: a historical import with consented_at.
	ConfirmOptin bool `json:"confirmOptin"`
	// ListMode is what an identify with a list and no explicit subscribe
	// flag does: ListModeSubscribe or ListModeAdd (membership only).
	ListMode string `json:"listMode"`
	// Consent are the channels subscribed: "email", "sms" (legacy "web",
	// "directmail", "mobile" are accepted with a warning and ignored).
	Consent []string `json:"consent"`
	// SMSConsent also subscribes SMS when a phone number is present.
	SMSConsent bool `json:"smsConsent"`
	// EnforceEmailAsPrimary never sends external_id (userId goes to
	// properties.id) and requires an email or phone number.
	EnforceEmailAsPrimary bool `json:"enforceEmailAsPrimary"`
	// FallbackOnAnonymousID identifies a profile without userId by
	// anonymous_id.
	FallbackOnAnonymousID bool `json:"fallbackOnAnonymousId"`
	// SendPlacedOrderAsOrderCompleted keeps "Order Completed" as the metric.
	SendPlacedOrderAsOrderCompleted bool `json:"sendPlacedOrderAsOrderCompleted"`
	// EcommerceNames is EcommerceKlaviyo (rename spec e-commerce events and
	// keys, §6.3) or EcommercePassthrough.
	EcommerceNames string `json:"ecommerceNames"`
	// EventNameMap renames metrics: keys are incoming event names or the
	// Klaviyo metric names the mapping produces.
	EventNameMap map[string]string `json:"eventNameMap,omitempty"`
	// SendPageAsTrack sends page calls as "Viewed <name> Page" events;
	// AdditionalPageInfo adds context.page fields to their properties.
	SendPageAsTrack    bool `json:"sendPageAsTrack"`
	AdditionalPageInfo bool `json:"additionalPageInfo"`
	// FlattenProperties turns nested custom properties into dotted keys.
	FlattenProperties bool `json:"flattenProperties"`
	// DefaultPhoneCountry (ISO 3166 region, e.g. "US") turns national
	// numbers into E.164.
	DefaultPhoneCountry string `json:"defaultPhoneCountry,omitempty"`
	// StrictPhone rejects an event with an unparseable phone number instead
	// of dropping the number with a warning.
	StrictPhone bool `json:"strictPhone"`
	// EventAllowlist / EventDenylist keep / drop track events by name.
	EventAllowlist []string `json:"eventAllowlist,omitempty"`
	EventDenylist  []string `json:"eventDenylist,omitempty"`
	// Revision is the Klaviyo API revision header.
	Revision string `json:"revision"`
	// Compat is the compatibility preset (compat.go): the system whose
	// documented defaults the other settings start from. Settings given
	// explicitly beside it win.
	Compat string `json:"compat"`
	// UserIDProperty is the custom property that holds the userId under
	// enforceEmailAsPrimary: "id" (Segment) or "_id" (RudderStack).
	UserIDProperty string `json:"userIdProperty"`
	// CustomSource is the custom_source of subscription jobs: what
	// Klaviyo's consent records name as where consent came from.
	CustomSource string `json:"customSource"`
	// Privacy and transformation settings (settings_privacy.go).
	privacy.Config
	PreSinkSettings
	// DeviceSettings are the browser-side (device mode) settings.
	DeviceSettings

	// ignored are pasted settings that Relay accepts and ignores (reported
	// by Warnings).
	ignored []string
	// looksLike is the system whose settings export the document looked
	// like when it named no compat preset (reported by Warnings).
	looksLike string
}

// Values of Settings.ListMode and Settings.EcommerceNames.
const (
	ListModeSubscribe    = "subscribe"
	ListModeAdd          = "add"
	EcommerceKlaviyo     = "klaviyo"
	EcommercePassthrough = "passthrough"
	// EcommerceSegment renames only Order Completed (Placed Order and one
	// Ordered Product per product, seed 001); other names pass through.
	EcommerceSegment = "segment"
	// EcommerceRudderStack renames Product Viewed/Clicked, Product Added
	// and Checkout Started with seed 004's property tables; Order
	// Completed and the rest pass through.
	EcommerceRudderStack = "rudderstack"
)

// DefaultCustomSource is the custom_source of subscription jobs unless
// the customSource setting says otherwise.
const DefaultCustomSource = "Relay"

// Consent channels: the current API's and the legacy ones of the retired
// v2 List API, which are accepted (so pasted RudderStack settings load)
// but subscribe nothing.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

var legacyChannels = []string{"web", "directmail", "mobile"}

// DefaultSettings returns the defaults of DESIGN.md §5.
func DefaultSettings() Settings {
	return Settings{
		ConfirmOptin:   true,
		ListMode:       ListModeSubscribe,
		Consent:        []string{ChannelEmail},
		EcommerceNames: EcommerceKlaviyo,
		Revision:       openapi.Revision(),
		Compat:         CompatRelay,
		UserIDProperty: "id",
		CustomSource:   DefaultCustomSource,
	}
}

// settingKind is the JSON type a setting takes.
type settingKind int

const (
	kindString settingKind = iota
	kindBool
	kindStrings     // list of strings (a single string is accepted for consent)
	kindStringMap   // object of string → string
	kindEventList   // list of strings or RudderStack's [{"eventName": …}]
	kindIgnored     // accepted and ignored, with a warning
	kindFilterMode  // RudderStack eventFilteringOption
	kindConsentList // list of strings or one string
	kindPrivacy     // settings_privacy.go
	kindDevice      // device-mode settings (devicesettings.go)
)

type settingDef struct {
	name string // canonical name
	kind settingKind
}

// settingNames maps every accepted name (lower-cased) to its setting.
// Aliases: Segment Classic (apiKey, privateKey, enforceEmail…), RudderStack
// (publicApiKey, privateApiKey, whitelistedEvents…).
var settingNames = map[string]settingDef{
	"privateapikey":                   {"privateApiKey", kindString},
	"privatekey":                      {"privateApiKey", kindString},
	"apisecret":                       {"privateApiKey", kindString},
	"publicapikey":                    {"publicApiKey", kindString},
	"apikey":                          {"publicApiKey", kindString},
	"publickey":                       {"publicApiKey", kindString},
	"listid":                          {"listId", kindString},
	"confirmoptin":                    {"confirmOptin", kindBool},
	"listmode":                        {"listMode", kindString},
	"consent":                         {"consent", kindConsentList},
	"smsconsent":                      {"smsConsent", kindBool},
	"enforceemailasprimary":           {"enforceEmailAsPrimary", kindBool},
	"enforceemail":                    {"enforceEmailAsPrimary", kindBool},
	"fallbackonanonymousid":           {"fallbackOnAnonymousId", kindBool},
	"sendplacedorderasordercompleted": {"sendPlacedOrderAsOrderCompleted", kindBool},
	"ecommercenames":                  {"ecommerceNames", kindString},
	"eventnamemap":                    {"eventNameMap", kindStringMap},
	"sendpageastrack":                 {"sendPageAsTrack", kindBool},
	"additionalpageinfo":              {"additionalPageInfo", kindBool},
	"flattenproperties":               {"flattenProperties", kindBool},
	"defaultphonecountry":             {"defaultPhoneCountry", kindString},
	"strictphone":                     {"strictPhone", kindBool},
	"eventallowlist":                  {"eventAllowlist", kindEventList},
	"whitelistedevents":               {"eventAllowlist", kindEventList},
	"eventdenylist":                   {"eventDenylist", kindEventList},
	"blacklistedevents":               {"eventDenylist", kindEventList},
	"eventfilteringoption":            {"eventFilteringOption", kindFilterMode},
	"revision":                        {"revision", kindString},
	"compat":                          {"compat", kindString},
	"useridproperty":                  {"userIdProperty", kindString},
	"customsource":                    {"customSource", kindString},
	"privacymode":                     {"privacyMode", kindPrivacy},
	"propertyallowlist":               {"propertyAllowlist", kindPrivacy},
	"traitallowlist":                  {"traitAllowlist", kindPrivacy},
	"dropip":                          {"dropIp", kindPrivacy},
	"dropuseragent":                   {"dropUserAgent", kindPrivacy},
	"droppageurls":                    {"stripPageUrls", kindPrivacy},
	"strippageurls":                   {"stripPageUrls", kindPrivacy},
	"dropfreetext":                    {"dropFreeText", kindPrivacy},
	"identifiers":                     {"identifiers", kindPrivacy},
	"transformation":                  {"transformation", kindPrivacy},
	"filter":                          {"filter", kindPrivacy},
	"devicemode":                      {"deviceMode", kindDevice},
	"onsitescripturl":                 {"onsiteScriptUrl", kindDevice},
	// RudderStack settings with no meaning for a server-side destination
	// that always speaks the current revision.
	"apiversion":         {"apiVersion", kindIgnored},
	"usenativesdk":       {"useNativeSDK", kindIgnored},
	"usenativesdktosend": {"useNativeSDKToSend", kindIgnored},
	"consentmanagement":  {"consentManagement", kindIgnored},
	// Present in every RudderStack destination config (consent
	// management, per-platform connection mode).
	"onetrustcookiecategories": {"oneTrustCookieCategories", kindIgnored},
	"ketchconsentpurposes":     {"ketchConsentPurposes", kindIgnored},
	"connectionmode":           {"connectionMode", kindIgnored},
}

// SettingsError is a settings problem: which setting, and why. It never
// contains a setting's value (keys are secrets).
type SettingsError struct {
	Setting string
	Reason  string
}

func (e *SettingsError) Error() string {
	if e.Setting == "" {
		return "klaviyo settings: " + e.Reason
	}
	return fmt.Sprintf("klaviyo setting %s: %s", e.Setting, e.Reason)
}

// ParseSettings reads settings as JSON or YAML (an object of §5 settings,
// Segment or RudderStack names accepted) over DefaultSettings. Unknown
// settings and wrong types are errors naming the setting. It does not call
// Validate.
func ParseSettings(data []byte) (Settings, error) {
	s := DefaultSettings()
	raw, err := decodeSettingsDoc(data)
	if err != nil {
		return s, err
	}
	filterMode := ""
	if err := s.applyCompat(raw, &filterMode); err != nil {
		return s, err
	}
	seen := map[string]string{}
	// Sorted keys make the first reported error deterministic.
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		v := raw[key]
		def, ok := settingNames[strings.ToLower(key)]
		if !ok {
			return s, &SettingsError{Setting: key, Reason: "unknown setting"}
		}
		if prev, dup := seen[def.name]; dup {
			return s, &SettingsError{Setting: key, Reason: fmt.Sprintf("given twice (also as %s)", prev)}
		}
		seen[def.name] = key
		if v == nil {
			continue // null keeps the default
		}
		if err := s.set(def, key, v, &filterMode); err != nil {
			return s, err
		}
	}
	if _, given := getCI(raw, "compat"); !given {
		s.looksLike = detectCompat(raw)
	}
	switch filterMode {
	case "", "disable":
		if filterMode == "disable" {
			s.EventAllowlist, s.EventDenylist = nil, nil
		}
	case "whitelistedEvents":
		s.EventDenylist = nil
	case "blacklistedEvents":
		s.EventAllowlist = nil
	}
	return s, nil
}

// decodeSettingsDoc decodes a JSON or YAML object into a generic map.
func decodeSettingsDoc(data []byte) (map[string]any, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	var raw map[string]any
	if trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		if err := dec.Decode(&raw); err != nil {
			return nil, &SettingsError{Reason: "not a JSON object: " + err.Error()}
		}
		if dec.More() {
			return nil, &SettingsError{Reason: "trailing data after the JSON object"}
		}
		return raw, nil
	}
	var doc any
	if err := yaml.Unmarshal(trimmed, &doc); err != nil {
		return nil, &SettingsError{Reason: "not YAML: " + err.Error()}
	}
	switch d := doc.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return d, nil
	default:
		return nil, &SettingsError{Reason: "want an object of settings"}
	}
}

func (s *Settings) set(def settingDef, key string, v any, filterMode *string) error {
	bad := func(want string) error {
		return &SettingsError{Setting: key, Reason: fmt.Sprintf("want %s, got %s", want, jsonx.Kind(v))}
	}
	switch def.kind {
	case kindString:
		str, ok := v.(string)
		if !ok {
			return bad("a string")
		}
		str = strings.TrimSpace(str)
		switch def.name {
		case "privateApiKey":
			s.PrivateAPIKey = str
		case "publicApiKey":
			s.PublicAPIKey = str
		case "listId":
			s.ListID = str
		case "listMode":
			s.ListMode = str
		case "ecommerceNames":
			s.EcommerceNames = str
		case "defaultPhoneCountry":
			s.DefaultPhoneCountry = strings.ToUpper(str)
		case "revision":
			s.Revision = str
		case "compat":
			s.Compat = strings.ToLower(str)
		case "userIdProperty":
			s.UserIDProperty = str
		case "customSource":
			s.CustomSource = str
		}
	case kindBool:
		b, ok := v.(bool)
		if !ok {
			return bad("true or false")
		}
		switch def.name {
		case "confirmOptin":
			s.ConfirmOptin = b
		case "smsConsent":
			s.SMSConsent = b
		case "enforceEmailAsPrimary":
			s.EnforceEmailAsPrimary = b
		case "fallbackOnAnonymousId":
			s.FallbackOnAnonymousID = b
		case "sendPlacedOrderAsOrderCompleted":
			s.SendPlacedOrderAsOrderCompleted = b
		case "sendPageAsTrack":
			s.SendPageAsTrack = b
		case "additionalPageInfo":
			s.AdditionalPageInfo = b
		case "flattenProperties":
			s.FlattenProperties = b
		case "strictPhone":
			s.StrictPhone = b
		}
	case kindConsentList:
		list, ok := stringList(v, true)
		if !ok {
			return bad("a channel or a list of channels")
		}
		s.Consent = list
	case kindStringMap:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("an object of names")
		}
		out := make(map[string]string, len(m))
		for k, val := range m {
			str, ok := val.(string)
			if !ok || strings.TrimSpace(str) == "" {
				return &SettingsError{Setting: key + "." + k, Reason: fmt.Sprintf("want a metric name, got %s", jsonx.Kind(val))}
			}
			out[k] = str
		}
		s.EventNameMap = out
	case kindEventList:
		list, ok := eventList(v)
		if !ok {
			return bad(`a list of event names (or of {"eventName": …})`)
		}
		if def.name == "eventAllowlist" {
			s.EventAllowlist = list
		} else {
			s.EventDenylist = list
		}
	case kindFilterMode:
		str, ok := v.(string)
		if !ok {
			return bad("a string")
		}
		switch str {
		case "disable", "whitelistedEvents", "blacklistedEvents":
			*filterMode = str
		default:
			return &SettingsError{Setting: key, Reason: `want "disable", "whitelistedEvents" or "blacklistedEvents"`}
		}
	case kindIgnored:
		s.ignored = append(s.ignored, key)
	case kindPrivacy:
		return s.setPrivacy(def.name, key, v)
	case kindDevice:
		return s.DeviceSettings.set(def.name, key, v)
	}
	return nil
}

// stringList accepts a list of strings, or one string when single is true.
func stringList(v any, single bool) ([]string, bool) {
	switch t := v.(type) {
	case string:
		if !single {
			return nil, false
		}
		if strings.TrimSpace(t) == "" {
			return []string{}, true
		}
		return []string{strings.TrimSpace(t)}, true
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			str, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, strings.TrimSpace(str))
		}
		return out, true
	case []string:
		return t, true
	}
	return nil, false
}

// eventList accepts ["A", "B"] or RudderStack's [{"eventName": "A"}];
// empty names (RudderStack's UI leaves one empty row) are dropped.
func eventList(v any) ([]string, bool) {
	items, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for _, e := range items {
		var name string
		switch t := e.(type) {
		case string:
			name = t
		case map[string]any:
			n, ok := t["eventName"].(string)
			if !ok && t["eventName"] != nil {
				return nil, false
			}
			name = n
		default:
			return nil, false
		}
		if name = strings.TrimSpace(name); name != "" {
			out = append(out, name)
		}
	}
	return out, true
}

var revisionRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$`)

// Validate checks values that ParseSettings cannot check by type alone.
func (s Settings) Validate() error {
	var errs []error
	switch s.ListMode {
	case ListModeSubscribe, ListModeAdd:
	default:
		errs = append(errs, &SettingsError{Setting: "listMode", Reason: `want "subscribe" or "add"`})
	}
	switch s.EcommerceNames {
	case EcommerceKlaviyo, EcommercePassthrough, EcommerceSegment, EcommerceRudderStack:
	default:
		errs = append(errs, &SettingsError{Setting: "ecommerceNames", Reason: `want "klaviyo", "passthrough", "segment" or "rudderstack"`})
	}
	if _, ok := presetByName(s.Compat); !ok {
		errs = append(errs, &SettingsError{Setting: "compat", Reason: `want "relay", "segment", "rudderstack" or "freshpaint"`})
	}
	if s.UserIDProperty == "" || strings.ContainsAny(s.UserIDProperty, " \t\r\n") {
		errs = append(errs, &SettingsError{Setting: "userIdProperty", Reason: `want a property name such as "id" or "_id"`})
	}
	if len(s.CustomSource) > 255 {
		errs = append(errs, &SettingsError{Setting: "customSource", Reason: "longer than 255 characters"})
	}
	for _, c := range s.Consent {
		if c != ChannelEmail && c != ChannelSMS && !slices.Contains(legacyChannels, c) {
			errs = append(errs, &SettingsError{Setting: "consent", Reason: fmt.Sprintf("unknown channel %q (want email or sms)", c)})
		}
	}
	if s.DefaultPhoneCountry != "" && phonenumbers.GetCountryCodeForRegion(s.DefaultPhoneCountry) == 0 {
		errs = append(errs, &SettingsError{Setting: "defaultPhoneCountry", Reason: fmt.Sprintf("unknown region %q (want an ISO 3166 code such as US)", s.DefaultPhoneCountry)})
	}
	if len(s.EventAllowlist) > 0 && len(s.EventDenylist) > 0 {
		errs = append(errs, &SettingsError{Setting: "eventAllowlist", Reason: "cannot be combined with eventDenylist"})
	}
	for k, v := range s.EventNameMap {
		if strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
			errs = append(errs, &SettingsError{Setting: "eventNameMap", Reason: "empty event or metric name"})
			break
		}
	}
	errs = append(errs, s.validatePrivacy())
	if !revisionRE.MatchString(s.Revision) {
		errs = append(errs, &SettingsError{Setting: "revision", Reason: "want a revision date such as " + openapi.Revision()})
	}
	for _, k := range []struct{ name, v string }{{"privateApiKey", s.PrivateAPIKey}, {"publicApiKey", s.PublicAPIKey}, {"listId", s.ListID}} {
		if strings.ContainsAny(k.v, " \t\r\n") {
			errs = append(errs, &SettingsError{Setting: k.name, Reason: "contains white space"})
		}
	}
	errs = append(errs, s.DeviceSettings.validate(s.PublicAPIKey)...)
	errs = append(errs, s.deviceModeConflicts())
	return errors.Join(errs...)
}

// Warnings reports accepted settings that have no effect: legacy consent
// channels and ignored RudderStack settings.
func (s Settings) Warnings() []string {
	var w []string
	for _, c := range s.Consent {
		if slices.Contains(legacyChannels, c) {
			w = append(w, fmt.Sprintf("consent channel %q belongs to Klaviyo's retired v2 List API; only email and sms are subscribed", c))
		}
	}
	for _, k := range s.ignored {
		w = append(w, ignoredWarning(k))
	}
	w = append(w, s.deviceModeWarnings()...)
	if s.looksLike != "" && s.Compat == CompatRelay {
		title := compatTitle[s.looksLike]
		w = append(w, fmt.Sprintf("these settings look like a %s export but name no compat preset: Relay's own defaults apply; add compat: %s to keep %s's defaults", title, s.looksLike, title))
	}
	return w
}

// Redacted returns a copy that is safe to log or display: the private
// API key is masked.
func (s Settings) Redacted() Settings {
	if s.PrivateAPIKey != "" {
		s.PrivateAPIKey = "[redacted]"
	}
	return s
}

// LogValue makes slog print the settings with the private key masked.
func (s Settings) LogValue() slog.Value {
	type plain Settings // no LogValue method: no recursion
	return slog.AnyValue(plain(s.Redacted()))
}
