package klaviyo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/relaycdp/relay/internal/presink"
)

// PreSinkSettings are the transformation and filter, embedded beside the
// privacy policy (privacy.Config) in Settings (internal/presink).
type PreSinkSettings = presink.Steps

// PreSink implements presink.Carrier.
func (s Settings) PreSink() presink.Settings {
	return presink.Settings{Config: s.Config, Steps: s.PreSinkSettings}
}

// setPrivacy sets one privacy or transformation setting, going through
// JSON so the types are checked the way the embedded structs declare them.
func (s *Settings) setPrivacy(name, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return &SettingsError{Setting: key, Reason: "cannot be read: " + typeName(v)}
	}
	var target any
	switch name {
	case "privacyMode":
		target = &s.Config.Mode
	case "propertyAllowlist":
		target = &s.PropertyAllowlist
	case "traitAllowlist":
		target = &s.TraitAllowlist
	case "dropIp":
		target = &s.DropIP
	case "dropUserAgent":
		target = &s.DropUserAgent
	case "stripPageUrls":
		target = &s.StripPageURLs
	case "dropFreeText":
		target = &s.DropFreeText
	case "identifiers":
		target = &s.Identifiers
	case "transformation":
		target = &s.Transformation
	case "filter":
		target = &s.Filter
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &SettingsError{Setting: key, Reason: fmt.Sprintf("want %s, got %s", te.Type, typeName(v))}
		}
		return &SettingsError{Setting: key, Reason: err.Error()}
	}
	return nil
}

// validatePrivacy compiles the policy, the transformation and the filter,
// so a bad one is refused when saved rather than failing every event.
func (s Settings) validatePrivacy() error {
	err := s.PreSink().Validate()
	var out []error
	for _, e := range joinedErrors(err) {
		var se *presink.SettingError
		if errors.As(e, &se) {
			e = &SettingsError{Setting: se.Setting, Reason: se.Reason}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// joinedErrors lists the errors an errors.Join holds (none for nil).
func joinedErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
