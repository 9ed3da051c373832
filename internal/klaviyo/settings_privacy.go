package klaviyo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/relaycdp/relay/internal/privacy"
	"github.com/relaycdp/relay/internal/usertransform"
)

// PreSinkSettings are what runs on an event before it is mapped, besides
// the privacy policy (privacy.Config, embedded beside it in Settings):
// an optional JavaScript user transformation and a declarative filter
// (internal/usertransform, docs/PRIVACY.md).
type PreSinkSettings struct {
	// Transformation is JavaScript source defining transformEvent(event,
	// metadata); empty: none.
	Transformation string `json:"transformation,omitempty"`
	// Filter drops events matching a condition and renames or removes
	// properties; nil: none.
	Filter *usertransform.FilterConfig `json:"filter,omitempty"`
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
	var errs []error
	if _, err := privacy.Compile(s.Config); err != nil {
		var pe *privacy.Error
		if errors.As(err, &pe) {
			err = &SettingsError{Setting: pe.Setting, Reason: pe.Reason}
		}
		errs = append(errs, err)
	}
	if s.Transformation != "" {
		if _, err := usertransform.CompileJS(s.Transformation, usertransform.Limits{VMs: 1}); err != nil {
			errs = append(errs, &SettingsError{Setting: "transformation", Reason: err.Error()})
		}
	}
	if s.Filter != nil {
		if _, err := usertransform.CompileFilter(*s.Filter); err != nil {
			errs = append(errs, &SettingsError{Setting: "filter", Reason: err.Error()})
		}
	}
	return errors.Join(errs...)
}
