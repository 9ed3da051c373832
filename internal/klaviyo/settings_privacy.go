package klaviyo

import (
	"errors"

	"github.com/relaycdp/relay/internal/presink"
)

// PreSinkSettings are the transformation and filter, embedded beside the
// privacy policy (privacy.Config) in Settings (internal/presink).
type PreSinkSettings = presink.Steps

// PreSink implements presink.Carrier.
func (s Settings) PreSink() presink.Settings {
	return presink.Settings{Config: s.Config, Steps: s.PreSinkSettings}
}

// setPrivacy sets one privacy or transformation setting (presink's
// setter; key is the name as written, for the error).
func (s *Settings) setPrivacy(name, key string, v any) error {
	ps := s.PreSink()
	if err := ps.Set(name, v); err != nil {
		return &SettingsError{Setting: key, Reason: err.Error()}
	}
	s.Config, s.PreSinkSettings = ps.Config, ps.Steps
	return nil
}

// validatePrivacy compiles the policy, the transformation and the filter,
// so a bad one is refused when saved rather than failing every event.
func (s Settings) validatePrivacy() error {
	var out []error
	for _, e := range s.PreSink().Problems() {
		var se *presink.SettingError
		if errors.As(e, &se) {
			e = &SettingsError{Setting: se.Setting, Reason: se.Reason}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}
