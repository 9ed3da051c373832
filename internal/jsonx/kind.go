package jsonx

import (
	"encoding/json"
	"fmt"
)

// Kind names a decoded JSON or YAML value's type for an error message
// ("a string", "a number", "a list", ...), never quoting the value: it
// may be a secret.
func Kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64, float32, int, int64, uint64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
