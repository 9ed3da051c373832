package kdest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/devicemode"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
)

// Type is the Klaviyo destination type for the registry.
func Type() *destination.Type {
	return &destination.Type{
		Name:   "klaviyo",
		Title:  "Klaviyo",
		Fields: Fields(),
		Parse:  parse,
		Open:   open,
		Test:   test,

		Summary:    summary,
		Import:     importSettings,
		AdjustForm: dropPresetDefaults,
	}
}

// summary names the compat preset and what it implies, and a missing key.
func summary(ds destination.Settings) []string {
	s, _ := ds.(klaviyo.Settings)
	var out []string
	if title := klaviyo.CompatTitle(s.Compat); title != "" {
		out = append(out, "Compatibility preset: "+title)
		out = append(out, klaviyo.PresetImplies(s.Compat)...)
	}
	if why := s.MissingKey(); why != "" {
		out = append(out, why)
	}
	return out
}

// importSettings reads a pasted RudderStack or Segment settings export;
// the note names the preset it selected.
func importSettings(text []byte, cur destination.Settings) ([]byte, string, error) {
	s, _ := cur.(klaviyo.Settings)
	doc, preset, err := klaviyo.ImportSettings(text, s)
	if err != nil {
		return nil, "", err
	}
	note := ""
	if title := klaviyo.CompatTitle(preset); title != "" {
		note = fmt.Sprintf("The pasted settings look like a %s export: preset compat: %s was selected.", title, preset)
	}
	return doc, note, nil
}

// dropPresetDefaults: when the form picks another compat preset, the
// preset's settings still showing the old preset's values were not
// chosen by the user, so they are left out and the new preset's apply.
func dropPresetDefaults(doc map[string]any, ds destination.Settings) {
	cur, _ := ds.(klaviyo.Settings)
	next, _ := doc["compat"].(string)
	if next == "" || next == cur.Compat {
		return
	}
	old, err := klaviyo.PresetSettings(cur.Compat)
	if err != nil {
		return
	}
	oldRaw, _ := json.Marshal(old)
	var oldVals map[string]any
	_ = json.Unmarshal(oldRaw, &oldVals)
	for _, name := range klaviyo.PresetSettingNames() {
		a, _ := json.Marshal(doc[name])
		b, _ := json.Marshal(oldVals[name])
		if bytes.Equal(a, b) {
			delete(doc, name)
		}
	}
}

// parse reads and validates Klaviyo settings, with Klaviyo's own parser
// (it knows RudderStack's event-list shapes and filtering option).
func parse(raw []byte) (destination.Settings, error) {
	s, err := klaviyo.ParseSettings(raw)
	if err == nil {
		err = s.Validate()
	}
	if err != nil {
		return nil, neutralErrors(err)
	}
	return s, nil
}

// neutralErrors turns klaviyo.SettingsErrors into destination ones (same
// words), so the console can put each next to its field.
func neutralErrors(err error) error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if se, ok := e.(*klaviyo.SettingsError); ok {
			out = append(out, &destination.SettingsError{Type: "klaviyo", Setting: se.Setting, Reason: se.Reason})
			return
		}
		if u, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range u.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, e)
	}
	walk(err)
	return errors.Join(out...)
}

// instance is one configured Klaviyo destination.
type instance struct {
	*Sink
	client   *kapi.Client
	settings func() klaviyo.Settings
}

// Stages are Klaviyo's own pre-sink stages: device mode's skip of the
// events a browser already sent to Klaviyo itself (internal/devicemode).
func (in *instance) Stages() []destination.Stage {
	return []destination.Stage{destination.StageFunc(in.skipSentFromBrowser)}
}

func (in *instance) skipSentFromBrowser(_ context.Context, job *destination.Job) *destination.Result {
	if reason := devicemode.SentFromBrowser(job.Event, in.settings()); reason != "" {
		return &destination.Result{Outcome: destination.Skipped, Detail: reason}
	}
	return nil
}

// Client is the destination's Klaviyo API client (user deletion uses it).
func (in *instance) Client() *kapi.Client { return in.client }

// Account is the live private API key and the region national phone
// numbers are read in (user deletion's Klaviyo requests).
func (in *instance) Account() (apiKey, phoneRegion string) {
	s := in.settings()
	return s.PrivateAPIKey, s.DefaultPhoneCountry
}

// Waiting says why nothing can be sent yet: with no key at all the jobs
// wait in the queue for one (the app and console say what is missing)
// instead of failing attempts until maxRetryAge.
func (in *instance) Waiting() string {
	if s := in.settings(); s.PrivateAPIKey == "" && s.PublicAPIKey == "" {
		return "no Klaviyo API key is set"
	}
	return ""
}

func open(env destination.Env) (destination.Instance, error) {
	s, ok := env.Settings().(klaviyo.Settings)
	if !ok {
		return nil, fmt.Errorf("klaviyo destination %s: settings of type %T", env.Name, env.Settings())
	}
	c, err := kapi.New(kapi.Config{BaseURL: env.Endpoint, Revision: s.Revision, Limiter: env.Limiter}, env.Log, env.Metrics)
	if err != nil {
		return nil, fmt.Errorf("klaviyo client: %w", err)
	}
	settings := func() klaviyo.Settings { s, _ := env.Settings().(klaviyo.Settings); return s }
	return &instance{Sink: NewSink(Config{Settings: settings, CPU: env.CPU, Late: env.Late}, c, env.Log, env.Metrics), client: c, settings: settings}, nil
}

// Ping reads one profile with the private key: harmless, and it needs the
// key's read scope like delivery needs its write scopes.
func (in *instance) Ping(ctx context.Context, ds destination.Settings) (bool, string) {
	s, _ := ds.(klaviyo.Settings)
	if s.PrivateAPIKey == "" {
		return false, "No private API key is set: enter one above."
	}
	err := in.client.Ping(ctx, s.PrivateAPIKey)
	ok, msg := describePing(err)
	return ok, strings.ReplaceAll(msg, s.PrivateAPIKey, "[key]")
}

func describePing(err error) (bool, string) {
	if err == nil {
		return true, "Connected: Klaviyo accepted the private key (GET /api/profiles answered 200)."
	}
	var ke *kapi.Error
	if !errors.As(err, &ke) {
		return false, fmt.Sprintf("Failed: %v", err)
	}
	var detail []string
	for _, e := range ke.Errors {
		s := e.Code
		if e.Detail != "" {
			s = strings.TrimSpace(s + ": " + e.Detail)
		} else if e.Title != "" {
			s = strings.TrimSpace(s + ": " + e.Title)
		}
		if s != "" {
			detail = append(detail, s)
		}
	}
	var msg string
	switch {
	case ke.Status == 401 || ke.Status == 403:
		msg = fmt.Sprintf("Klaviyo refused the private key with %d", ke.Status)
	case ke.Status == 429:
		msg = "Klaviyo is rate limiting this key (429); the key itself was accepted"
	case ke.Status != 0:
		msg = fmt.Sprintf("Klaviyo answered %d", ke.Status)
	default:
		msg = fmt.Sprintf("Klaviyo could not be reached: %v", err)
	}
	if len(detail) > 0 {
		msg += " (" + strings.Join(detail, "; ") + ")"
	}
	return false, msg + "."
}
