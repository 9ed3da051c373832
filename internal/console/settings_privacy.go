package console

import (
	"encoding/json"
	"fmt"

	"github.com/relaycdp/relay/internal/destination"
)

// privacyFieldValue shows a stored value in a tristate or JSON field.
func privacyFieldValue(kind destination.Kind, v any) string {
	if kind == destination.KindTristate {
		switch v {
		case true:
			return "on"
		case false:
			return "off"
		}
		return "default"
	}
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// privacyFormValue reads a tristate or JSON field; nil means unset.
func privacyFormValue(kind destination.Kind, text string) (any, error) {
	if kind == destination.KindTristate {
		switch text {
		case "on":
			return true, nil
		case "off":
			return false, nil
		}
		return nil, nil
	}
	if text == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	return m, nil
}
