package klaviyo

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseSettings(t *testing.T) {
	def := DefaultSettings()
	with := func(f func(*Settings)) Settings {
		s := DefaultSettings()
		f(&s)
		return s
	}
	tests := []struct {
		name    string
		in      string
		want    Settings
		wantErr string // substring of the error; "" = no error
	}{
		{name: "empty is defaults", in: "", want: def},
		{name: "empty JSON object", in: "{}", want: def},
		{name: "null YAML document", in: "# nothing\n", want: def},
		{
			name: "JSON, our names",
			in: `{"privateApiKey":"pk_1","publicApiKey":"AbC123","listId":"L1","confirmOptin":false,"listMode":"add",
				"consent":["email","sms"],"smsConsent":true,"enforceEmailAsPrimary":true,"fallbackOnAnonymousId":true,
				"sendPlacedOrderAsOrderCompleted":true,"ecommerceNames":"passthrough","eventNameMap":{"a":"B"},
				"sendPageAsTrack":true,"additionalPageInfo":true,"flattenProperties":true,"defaultPhoneCountry":"us",
				"strictPhone":true,"eventDenylist":["X"],"revision":"2025-10-15"}`,
			want: with(func(s *Settings) {
				s.PrivateAPIKey, s.PublicAPIKey, s.ListID = "pk_1", "AbC123", "L1"
				s.ConfirmOptin, s.ListMode = false, ListModeAdd
				s.Consent, s.SMSConsent = []string{"email", "sms"}, true
				s.EnforceEmailAsPrimary, s.FallbackOnAnonymousID = true, true
				s.SendPlacedOrderAsOrderCompleted, s.EcommerceNames = true, EcommercePassthrough
				s.EventNameMap = map[string]string{"a": "B"}
				s.SendPageAsTrack, s.AdditionalPageInfo, s.FlattenProperties = true, true, true
				s.DefaultPhoneCountry, s.StrictPhone = "US", true
				s.EventDenylist = []string{"X"}
				s.Revision = "2025-10-15"
			}),
		},
		{
			name: "YAML, Segment aliases",
			in:   "apiKey: AbC123\nprivateKey: pk_2\nenforceEmail: true\nconfirmOptin: false\nlistId: baV129\n",
			want: with(func(s *Settings) {
				s.PublicAPIKey, s.PrivateAPIKey, s.EnforceEmailAsPrimary, s.ConfirmOptin, s.ListID = "AbC123", "pk_2", true, false, "baV129"
			}),
		},
		{
			name: "YAML, apiSecret and publicKey aliases",
			in:   "apiSecret: pk_3\npublicKey: XyZ\n",
			want: with(func(s *Settings) { s.PrivateAPIKey, s.PublicAPIKey = "pk_3", "XyZ" }),
		},
		{
			name: "RudderStack config with whitelist filtering",
			in: `{"publicApiKey":"AbC","privateApiKey":"pk_4","consent":"email","sendPageAsTrack":true,
				"eventFilteringOption":"whitelistedEvents","whitelistedEvents":[{"eventName":"Order Completed"},{"eventName":""}],
				"blacklistedEvents":[{"eventName":"Heartbeat"}],"apiVersion":"v2","useNativeSDK":{"web":false}}`,
			want: with(func(s *Settings) {
				s.PublicAPIKey, s.PrivateAPIKey = "AbC", "pk_4"
				s.Consent, s.SendPageAsTrack = []string{"email"}, true
				s.EventAllowlist = []string{"Order Completed"}
			}),
		},
		{
			name: "RudderStack blacklist filtering",
			in:   `{"eventFilteringOption":"blacklistedEvents","whitelistedEvents":[{"eventName":"A"}],"blacklistedEvents":[{"eventName":"B"}]}`,
			want: with(func(s *Settings) { s.EventDenylist = []string{"B"} }),
		},
		{
			name: "RudderStack filtering disabled",
			in:   `{"eventFilteringOption":"disable","blacklistedEvents":[{"eventName":"B"}]}`,
			want: def,
		},
		{name: "legacy consent channels accepted", in: `{"consent":["email","web","directmail","mobile"]}`,
			want: with(func(s *Settings) { s.Consent = []string{"email", "web", "directmail", "mobile"} })},
		{name: "null keeps the default", in: `{"confirmOptin":null}`, want: def},
		{name: "case-insensitive names", in: `{"PrivateApiKey":"pk_5"}`, want: with(func(s *Settings) { s.PrivateAPIKey = "pk_5" })},
		{name: "unknown setting", in: `{"listID2":"x"}`, wantErr: "klaviyo setting listID2: unknown setting"},
		{name: "unknown YAML setting", in: "foo: 1\n", wantErr: "setting foo: unknown setting"},
		{name: "wrong type bool", in: `{"confirmOptin":"yes"}`, wantErr: "setting confirmOptin: want true or false, got a string"},
		{name: "wrong type string", in: `{"privateApiKey":12345}`, wantErr: "setting privateApiKey: want a string, got a number"},
		{name: "wrong type YAML list", in: "listId: [a, b]\n", wantErr: "setting listId: want a string, got a list"},
		{name: "wrong consent type", in: `{"consent":[1]}`, wantErr: "setting consent: want a channel or a list of channels"},
		{name: "wrong event list", in: `{"eventAllowlist":"A"}`, wantErr: "setting eventAllowlist: want a list of event names"},
		{name: "wrong name map value", in: `{"eventNameMap":{"a":1}}`, wantErr: "setting eventNameMap.a: want a metric name"},
		{name: "bad filtering option", in: `{"eventFilteringOption":"some"}`, wantErr: "setting eventFilteringOption"},
		{name: "alias given twice", in: `{"privateKey":"a","privateApiKey":"b"}`, wantErr: "given twice"},
		{name: "not an object", in: `[1,2]`, wantErr: "want an object"},
		{name: "bad JSON", in: `{"listId":`, wantErr: "not a JSON object"},
		{name: "bad YAML", in: "listId: [\n", wantErr: "not YAML"},
		{name: "trailing JSON", in: `{} {}`, wantErr: "trailing data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSettings([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				var se *SettingsError
				if !errors.As(err, &se) {
					t.Errorf("error %T is not a *SettingsError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreUnexported(Settings{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("settings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Setting values are secrets: no error may quote one.
func TestParseSettingsErrorsHideValues(t *testing.T) {
	for _, in := range []string{`{"privateApiKey":["pk_SECRET"]}`, `{"privateKey":{"k":"pk_SECRET"}}`, `{"pk_SECRET":1}`} {
		_, err := ParseSettings([]byte(in))
		if err == nil {
			t.Fatalf("%s: no error", in)
		}
		if strings.Contains(err.Error(), "pk_SECRET") && !strings.HasPrefix(in, `{"pk_SECRET"`) {
			t.Errorf("%s: error quotes the value: %v", in, err)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Settings)
		wantErr string
	}{
		{"defaults", func(*Settings) {}, ""},
		{"listMode", func(s *Settings) { s.ListMode = "merge" }, "listMode"},
		{"ecommerceNames", func(s *Settings) { s.EcommerceNames = "shopify" }, "ecommerceNames"},
		{"consent", func(s *Settings) { s.Consent = []string{"push"} }, `unknown channel "push"`},
		{"legacy consent ok", func(s *Settings) { s.Consent = []string{"web"} }, ""},
		{"region", func(s *Settings) { s.DefaultPhoneCountry = "XX" }, "defaultPhoneCountry"},
		{"region ok", func(s *Settings) { s.DefaultPhoneCountry = "GB" }, ""},
		{"both lists", func(s *Settings) { s.EventAllowlist, s.EventDenylist = []string{"a"}, []string{"b"} }, "eventDenylist"},
		{"revision", func(s *Settings) { s.Revision = "latest" }, "revision"},
		{"key with space", func(s *Settings) { s.PrivateAPIKey = "pk 1" }, "privateApiKey: contains white space"},
		{"empty metric", func(s *Settings) { s.EventNameMap = map[string]string{"a": " "} }, "eventNameMap"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := DefaultSettings()
			tc.mod(&s)
			err := s.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestSettingsWarnings(t *testing.T) {
	s, err := ParseSettings([]byte("consent: [email, directmail]\napiVersion: v2\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := s.Warnings()
	if len(w) != 3 || !strings.Contains(w[0], `"directmail"`) || !strings.Contains(w[1], "apiVersion is ignored") ||
		!strings.Contains(w[2], "add compat: rudderstack") {
		t.Errorf("warnings = %q", w)
	}
	if got := DefaultSettings().Warnings(); len(got) != 0 {
		t.Errorf("default settings warn: %q", got)
	}
}

func TestDefaultSettings(t *testing.T) {
	s := DefaultSettings()
	if !s.ConfirmOptin || s.ListMode != "subscribe" || s.EcommerceNames != "klaviyo" ||
		!cmp.Equal(s.Consent, []string{"email"}) || s.Revision == "" {
		t.Errorf("defaults = %+v", s)
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
}

func TestSettingsRedacted(t *testing.T) {
	s := DefaultSettings()
	s.PrivateAPIKey = "pk_SECRET"
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("settings", "s", s)
	if strings.Contains(buf.String(), "pk_SECRET") || !strings.Contains(buf.String(), "[redacted]") {
		t.Errorf("log line = %s", buf.String())
	}
	if s.PrivateAPIKey != "pk_SECRET" {
		t.Error("Redacted changed the original")
	}
}

func TestCompatPresets(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(Settings) bool
	}{
		{"relay is the defaults", `{"compat":"relay"}`, func(s Settings) bool {
			d := DefaultSettings()
			return cmp.Equal(s, d, cmpopts.IgnoreUnexported(Settings{}))
		}},
		{"rudderstack adds to lists and falls back on anonymousId", `{"compat":"rudderstack"}`, func(s Settings) bool {
			return s.ListMode == ListModeAdd && s.FallbackOnAnonymousID && s.EcommerceNames == EcommerceRudderStack && s.UserIDProperty == "_id"
		}},
		{"segment keeps spec names but Order Completed", `{"compat":"Segment"}`, func(s Settings) bool {
			return s.Compat == CompatSegment && s.ListMode == ListModeSubscribe && !s.FallbackOnAnonymousID && s.EcommerceNames == EcommerceSegment
		}},
		{"freshpaint enforces email", `{"compat":"freshpaint"}`, func(s Settings) bool {
			return s.EnforceEmailAsPrimary && s.EcommerceNames == EcommercePassthrough
		}},
		{"explicit settings win over the preset, in any key order", `{"listMode":"subscribe","compat":"rudderstack","fallbackOnAnonymousId":false}`, func(s Settings) bool {
			return s.ListMode == ListModeSubscribe && !s.FallbackOnAnonymousID && s.EcommerceNames == EcommerceRudderStack
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSettings([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			if !tc.check(s) {
				t.Errorf("settings = %+v", s)
			}
		})
	}
	if _, err := ParseSettings([]byte(`{"compat":"mparticle"}`)); err == nil || !strings.Contains(err.Error(), "compat") {
		t.Errorf("unknown preset: err = %v", err)
	}
	if _, err := ParseSettings([]byte(`{"compat":true}`)); err == nil {
		t.Error("compat true accepted")
	}
	for _, name := range compatNames {
		if got := PresetImplies(name); len(got) != len(presetTable) {
			t.Errorf("PresetImplies(%s) = %q", name, got)
		}
	}
}

func TestDetectCompat(t *testing.T) {
	for in, want := range map[string]string{
		`{"publicApiKey":"x","privateApiKey":"y","eventFilteringOption":"disable"}`: CompatRudderStack,
		`{"apiKey":"x","privateKey":"y","confirmOptin":true}`:                       CompatSegment,
		`{"privateApiKey":"y","listId":"L"}`:                                        "",
		`not json`:                                                                  "",
	} {
		if got := DetectCompat([]byte(in)); got != want {
			t.Errorf("DetectCompat(%s) = %q, want %q", in, got, want)
		}
	}
	s, err := ParseSettings([]byte(`{"compat":"rudderstack","apiVersion":"v2"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range s.Warnings() {
		if strings.Contains(w, "compat preset") {
			t.Errorf("warns although compat is given: %q", w)
		}
	}
}

// TestPresetDoc keeps docs/KLAVIYO.md's preset table identical to
// presetTable.
func TestPresetDoc(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "KLAVIYO.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), PresetTableMarkdown()) {
		t.Errorf("docs/KLAVIYO.md does not hold the preset table; paste this:\n%s", PresetTableMarkdown())
	}
}

func TestImportSettings(t *testing.T) {
	cur := DefaultSettings()
	cur.PrivateAPIKey = "pk_saved"
	doc, preset, err := ImportSettings([]byte(`{"publicApiKey":"AbC","listId":"L1","eventFilteringOption":"disable","apiVersion":"v2"}`), cur)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSettings(doc)
	if err != nil {
		t.Fatal(err)
	}
	if preset != CompatRudderStack || s.Compat != CompatRudderStack || s.ListMode != ListModeAdd || s.PrivateAPIKey != "pk_saved" || s.PublicAPIKey != "AbC" {
		t.Errorf("preset %q, settings %+v", preset, s.Redacted())
	}
	doc, preset, err = ImportSettings([]byte("apiKey: XyZ\nprivateKey: pk_seg\nlistId: baV129\n"), cur)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ = ParseSettings(doc); preset != CompatSegment || s.PrivateAPIKey != "pk_seg" || s.EcommerceNames != EcommerceSegment {
		t.Errorf("segment import: preset %q, settings %+v", preset, s.Redacted())
	}
	if _, preset, _ = ImportSettings([]byte(`{"compat":"relay","apiKey":"X"}`), cur); preset != "" {
		t.Errorf("an explicit compat was overridden by %q", preset)
	}
	if _, _, err := ImportSettings([]byte(`{"listMode":"sometimes"}`), cur); err == nil {
		t.Error("invalid import accepted")
	}
}

// Every RudderStack destination config carries the consent-management and
// connection-mode keys (rudder-integrations-config checks their presence),
// so a pasted RudderStack export has them: accepted and ignored, with a
// warning, never "unknown setting".
func TestRudderStackExportCommonKeys(t *testing.T) {
	doc := `{"compat":"rudderstack","publicApiKey":"PUB1","privateApiKey":"pk_x","listId":"L1",
	  "connectionMode":{"web":"cloud"},
	  "oneTrustCookieCategories":{"web":[{"oneTrustCookieCategory":""}]},
	  "ketchConsentPurposes":{"web":[{"purpose":""}]},
	  "consentManagement":{"web":[{"provider":"oneTrust","consents":[{"consent":""}],"resolutionStrategy":""}]}}`
	s, err := ParseSettings([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	w := strings.Join(s.Warnings(), "\n")
	for _, k := range []string{"connectionMode", "oneTrustCookieCategories", "ketchConsentPurposes", "consentManagement"} {
		if !strings.Contains(w, k) {
			t.Errorf("no warning names %s: %q", k, w)
		}
	}
	if !strings.Contains(w, "connectionMode is ignored by Relay; device mode is set with deviceMode") {
		t.Errorf("connectionMode's warning does not point at deviceMode: %q", w)
	}
}
