package presink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/jsonx"
	"github.com/relaycdp/relay/internal/privacy"
	"github.com/relaycdp/relay/internal/usertransform"
)

// SettingError is a pre-sink setting that cannot be used; it names the
// setting and never holds its value.
type SettingError struct {
	Setting, Reason string
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Reason }

// Problems compiles the policy, the transformation and the filter, so a
// bad one is refused when saved rather than failing every event. Each
// problem is a *SettingError naming its setting (a policy error without
// a name stays as it is).
func (st Settings) Problems() []error {
	var errs []error
	if _, err := privacy.Compile(st.Config); err != nil {
		var pe *privacy.Error
		if errors.As(err, &pe) {
			err = &SettingError{Setting: pe.Setting, Reason: pe.Reason}
		}
		errs = append(errs, err)
	}
	if st.Transformation != "" {
		if _, err := usertransform.CompileJS(st.Transformation, usertransform.Limits{VMs: 1}); err != nil {
			errs = append(errs, &SettingError{Setting: "transformation", Reason: err.Error()})
		}
	}
	if st.Filter != nil {
		if _, err := usertransform.CompileFilter(*st.Filter); err != nil {
			errs = append(errs, &SettingError{Setting: "filter", Reason: err.Error()})
		}
	}
	return errs
}

// TakeSettings moves the pre-sink settings out of a settings document
// (the names and aliases of destination.PrivacyFields, in any case) and
// reads them; the rest of the document is the destination's own. A value
// of the wrong type is a *SettingError naming the key as written.
func TakeSettings(doc map[string]any) (Settings, map[string]any, error) {
	names := map[string]string{}
	for _, f := range destination.PrivacyFields() {
		for _, n := range append([]string{f.Name}, f.Aliases...) {
			names[strings.ToLower(n)] = f.Name
		}
	}
	var st Settings
	rest := map[string]any{}
	for key, v := range doc {
		name, ok := names[strings.ToLower(key)]
		if !ok {
			rest[key] = v
			continue
		}
		if v == nil {
			continue // null keeps the default, as for every setting
		}
		if err := st.Set(name, v); err != nil {
			return st, rest, &SettingError{Setting: key, Reason: err.Error()}
		}
	}
	return st, rest, nil
}

// Set sets the setting named name (its canonical name, as
// destination.PrivacyFields gives it) to a decoded settings value, going
// through JSON so its type is checked the way the struct declares it.
// The error says what is wrong with the value, without naming the key.
func (st *Settings) Set(name string, v any) error {
	raw, err := json.Marshal(map[string]any{name: v})
	if err != nil {
		return fmt.Errorf("cannot be read: %s", jsonx.Kind(v))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(st); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("want %s, got %s", te.Type, jsonx.Kind(v))
		}
		return err
	}
	return nil
}
