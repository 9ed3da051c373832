package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/presink"
)

// Settings are a webhook destination's settings. Each setting is declared
// here once: its tags are its name, aliases, form section, label, kind and
// description, from which the console's form and the parser derive
// (destination.FieldsOf, ParseInto).
type Settings struct {
	URL string `json:"url" alias:"webhookUrl,endpoint" section:"Endpoint" label:"URL" hint:"https://example.com/hooks/relay" help:"Where events are POSTed (http or https). Required."`
	// Mode is ModeEvent (one request per event) or ModeBatch.
	Mode         string            `json:"mode" options:"event,batch" label:"Mode" help:"event: one POST per event, its body the Segment-spec event. batch: up to maxBatchSize events per POST as {\"batch\": [...]}. Default event."`
	MaxBatchSize int               `json:"maxBatchSize" label:"Events per batch" help:"In batch mode, the most events one request carries (1–1000, default 100)."`
	Headers      map[string]string `json:"headers,omitempty" alias:"customHeaders" label:"Custom headers" hint:"Authorization => Bearer …" help:"Extra request headers, one per line: Name => value (shown on this form: put a token in Authorization header below). Content-Type, Content-Length, Idempotency-Key, Authorization and the signature header are Relay's."`
	// Authorization, when set, is sent as the Authorization header (kept
	// secret, unlike custom headers).
	Authorization string `json:"authorization,omitempty" kind:"secret" section:"Security and limits" label:"Authorization header" hint:"Bearer …" help:"When set, sent as the Authorization header of every request. Kept secret (custom headers are shown on the form); leave empty to keep it."`
	// SigningSecret, when set, signs each body with HMAC-SHA256.
	SigningSecret   string        `json:"signingSecret,omitempty" alias:"sharedSecret" kind:"secret" label:"Signing secret" hint:"any long random string" help:"When set, every request carries the signature header: sha256= and the hex HMAC-SHA256 of the exact body with this secret. Never shown again once saved; leave empty to keep it."`
	SignatureHeader string        `json:"signatureHeader" label:"Signature header" help:"The header carrying the signature (default X-Relay-Signature)."`
	Timeout         time.Duration `json:"timeout" label:"Timeout" hint:"10s" help:"How long one request may take before it counts as failed and is retried (1s–5m, default 10s)."`
	Concurrency     int           `json:"concurrency" label:"Concurrent requests" help:"How many requests one batch of jobs sends at once (1–64, default 4)."`
	// The privacy policy, transformation and filter run before an event is
	// sent, as for every destination that carries them (internal/presink);
	// described by destination.PrivacyFields, read by presink.TakeSettings.
	presink.Settings
}

// PreSink implements presink.Carrier.
func (s Settings) PreSink() presink.Settings { return s.Settings }

// Values of Settings.Mode.
const (
	ModeEvent = "event"
	ModeBatch = "batch"
)

// DefaultSettings are the settings a document leaves out.
func DefaultSettings() Settings {
	return Settings{Mode: ModeEvent, MaxBatchSize: 100, SignatureHeader: "X-Relay-Signature", Timeout: 10 * time.Second, Concurrency: 4}
}

// Fields describe the settings for the console and the registry.
func Fields() []destination.Field {
	f, err := destination.FieldsOf(Settings{})
	if err != nil {
		// The tags are constants: TestFieldsDescribed keeps them valid.
		panic(err)
	}
	return append(f, destination.PrivacyFields()...)
}

// ParseSettings reads a settings document over the defaults and validates
// it; errors name the setting and never hold a value.
func ParseSettings(raw []byte) (Settings, error) {
	s := DefaultSettings()
	doc, err := destination.DecodeDocument("webhook", raw)
	if err != nil {
		return s, err
	}
	pre, rest, err := presink.TakeSettings(doc)
	if err != nil {
		return s, settingsError(err)
	}
	s.Settings = pre
	own, err := json.Marshal(rest)
	if err != nil {
		return s, &destination.SettingsError{Type: "webhook", Reason: err.Error()}
	}
	if err := destination.ParseInto("webhook", own, &s); err != nil {
		return s, err
	}
	return s, s.Validate()
}

// settingsError names a pre-sink setting's problem as the registry does.
func settingsError(err error) error {
	var se *presink.SettingError
	if errors.As(err, &se) {
		return &destination.SettingsError{Type: "webhook", Setting: se.Setting, Reason: se.Reason}
	}
	return err
}

// reservedHeaders are set by Relay and may not be overridden.
var reservedHeaders = []string{"Content-Type", "Content-Length", "Host", "Idempotency-Key", "Authorization"}

// Validate checks what the types alone do not.
func (s Settings) Validate() error {
	var errs []error
	bad := func(setting, reason string) {
		errs = append(errs, &destination.SettingsError{Type: "webhook", Setting: setting, Reason: reason})
	}
	if u, err := url.Parse(s.URL); s.URL == "" {
		bad("url", "required")
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url", "want an http or https URL")
	}
	if s.Mode != ModeEvent && s.Mode != ModeBatch {
		bad("mode", `want "event" or "batch"`)
	}
	if s.MaxBatchSize < 1 || s.MaxBatchSize > 1000 {
		bad("maxBatchSize", "want 1 to 1000")
	}
	if s.Timeout < time.Second || s.Timeout > 5*time.Minute {
		bad("timeout", "want 1s to 5m")
	}
	if s.Concurrency < 1 || s.Concurrency > 64 {
		bad("concurrency", "want 1 to 64")
	}
	if !validHeaderName(s.SignatureHeader) {
		bad("signatureHeader", "want a header name (letters, digits, -)")
	}
	for name, v := range s.Headers {
		switch {
		case !validHeaderName(name):
			bad("headers."+name, "not a valid header name")
		case strings.ContainsAny(v, "\r\n"):
			bad("headers."+name, "a header value cannot span lines")
		case isReserved(name, s.SignatureHeader):
			bad("headers."+name, "set by Relay")
		}
	}
	for _, e := range s.Settings.Problems() {
		errs = append(errs, settingsError(e))
	}
	return errors.Join(errs...)
}

func isReserved(name, sigHeader string) bool {
	for _, r := range append(reservedHeaders, sigHeader) {
		if http.CanonicalHeaderKey(name) == http.CanonicalHeaderKey(r) {
			return true
		}
	}
	return false
}

func validHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for _, c := range n {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Warnings: an unsigned plain-http endpoint can be read and forged on the way.
func (s Settings) Warnings() []string {
	if strings.HasPrefix(s.URL, "http://") && s.SigningSecret == "" {
		return []string{"The URL is plain http and requests are not signed: anyone on the path can read them, and the receiver cannot tell them from forgeries."}
	}
	return nil
}

// MarshalJSON writes the timeout as "10s" (what the form and ParseInto read).
func (s Settings) MarshalJSON() ([]byte, error) {
	type plain Settings
	return jsonMarshal(struct {
		plain
		Timeout string `json:"timeout"`
	}{plain(s), s.Timeout.String()})
}

// String never shows the secret (fmt, slog).
func (s Settings) String() string {
	secret := ""
	if s.SigningSecret != "" {
		secret = " signed"
	}
	return fmt.Sprintf("webhook %s %s%s", s.Mode, s.URL, secret)
}
