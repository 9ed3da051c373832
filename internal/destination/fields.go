package destination

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/jsonx"
	"go.yaml.in/yaml/v3"
)

// Field describes one setting: the console renders its form from the
// fields, config and the console name them in errors, and a settings
// struct described with tags (FieldsOf) is parsed from them (ParseInto).
type Field struct {
	Name    string   // the setting's JSON name
	Aliases []string // other accepted names (Segment's, RudderStack's)
	Section string   // form section
	Label   string
	Help    string // required: what the setting does, its default
	Kind    Kind
	Options []string // Kind select: the allowed values
	Hint    string   // placeholder
}

// Kind is how a setting is typed and shown.
type Kind string

// Kinds of settings.
const (
	KindText     Kind = "text"
	KindSecret   Kind = "secret"   // a string never shown again once saved
	KindBool     Kind = "bool"     // a checkbox
	KindSelect   Kind = "select"   // one of Options
	KindList     Kind = "list"     // strings, comma-separated on the form
	KindLines    Kind = "lines"    // strings, one per line on the form
	KindMap      Kind = "map"      // string → string, "key => value" lines on the form
	KindNumber   Kind = "number"   // an integer
	KindDuration Kind = "duration" // "10s", "1m30s"
	KindTristate Kind = "tristate" // a boolean left unset ("default"), or forced on or off
	KindJSON     Kind = "json"     // a JSON object, in a textarea
	KindCode     Kind = "code"     // source code (JavaScript), in a large textarea
)

// CheckFields reports fields without a name, label or description, an
// unknown kind, a select without options, and names given twice.
func CheckFields(fields []Field) error {
	var errs []error
	seen := map[string]bool{}
	for _, f := range fields {
		switch {
		case f.Name == "":
			errs = append(errs, fmt.Errorf("a setting has no name (label %q)", f.Label))
		case strings.TrimSpace(f.Help) == "":
			errs = append(errs, fmt.Errorf("setting %s has no description (help)", f.Name))
		case f.Label == "":
			errs = append(errs, fmt.Errorf("setting %s has no label", f.Name))
		case !slices.Contains([]Kind{KindText, KindSecret, KindBool, KindSelect, KindList, KindLines, KindMap, KindNumber, KindDuration, KindTristate, KindJSON, KindCode}, f.Kind):
			errs = append(errs, fmt.Errorf("setting %s: unknown kind %q", f.Name, f.Kind))
		case f.Kind == KindSelect && len(f.Options) == 0:
			errs = append(errs, fmt.Errorf("setting %s: a select without options", f.Name))
		}
		for _, n := range append([]string{f.Name}, f.Aliases...) {
			if n != "" && seen[strings.ToLower(n)] {
				errs = append(errs, fmt.Errorf("setting name %s given twice", n))
			}
			seen[strings.ToLower(n)] = true
		}
	}
	return errors.Join(errs...)
}

// FieldsOf describes a settings struct from its tags, the one place a
// setting is declared:
//
//	URL string `json:"url" label:"URL" section:"Endpoint" kind:"text" alias:"webhookUrl,endpoint" hint:"https://…" help:"Where events are POSTed."`
//
// json names the setting; help is required; kind defaults from the Go
// type (string → text, bool, int → number, time.Duration → duration,
// []string → list, map[string]string → map); options (comma-separated)
// make a select. Fields without a json name (or "-") are not settings.
func FieldsOf(v any) ([]Field, error) {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("FieldsOf: %s is not a struct", t)
	}
	var out []Field
	section := ""
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		if s := sf.Tag.Get("section"); s != "" {
			section = s
		}
		f := Field{Name: name, Section: section, Label: sf.Tag.Get("label"), Help: sf.Tag.Get("help"),
			Kind: Kind(sf.Tag.Get("kind")), Hint: sf.Tag.Get("hint")}
		if a := sf.Tag.Get("alias"); a != "" {
			f.Aliases = strings.Split(a, ",")
		}
		if o := sf.Tag.Get("options"); o != "" {
			f.Options = strings.Split(o, ",")
			if f.Kind == "" {
				f.Kind = KindSelect
			}
		}
		if f.Kind == "" {
			f.Kind = kindOf(sf.Type)
		}
		out = append(out, f)
	}
	return out, CheckFields(out)
}

var durationType = reflect.TypeOf(time.Duration(0))

func kindOf(t reflect.Type) Kind {
	switch {
	case t == durationType:
		return KindDuration
	case t.Kind() == reflect.Bool:
		return KindBool
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return KindNumber
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return KindList
	case t.Kind() == reflect.Map:
		return KindMap
	}
	return KindText
}

// DecodeDocument reads a settings document: a JSON object, or YAML (the
// config file's settings arrive as JSON). Empty is an empty document.
func DecodeDocument(typeName string, data []byte) (map[string]any, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return map[string]any{}, nil
	}
	var raw map[string]any
	if trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		if err := dec.Decode(&raw); err != nil {
			return nil, &SettingsError{Type: typeName, Reason: "not a JSON object: " + err.Error()}
		}
		if dec.More() {
			return nil, &SettingsError{Type: typeName, Reason: "trailing data after the JSON object"}
		}
		return raw, nil
	}
	var doc any
	if err := yaml.Unmarshal(trimmed, &doc); err != nil {
		return nil, &SettingsError{Type: typeName, Reason: "not YAML: " + err.Error()}
	}
	switch d := doc.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return d, nil
	}
	return nil, &SettingsError{Type: typeName, Reason: "want an object of settings"}
}

// ParseInto reads a settings document into dst (a pointer to a struct
// described by FieldsOf, holding the defaults): names and aliases match
// case-insensitively, null keeps the default, and an unknown setting, a
// setting given twice or a value of the wrong type is a *SettingsError.
func ParseInto(typeName string, data []byte, dst any) error {
	fields, err := FieldsOf(dst)
	if err != nil {
		return err
	}
	doc, err := DecodeDocument(typeName, data)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, f := range fields {
		for _, n := range append([]string{f.Name}, f.Aliases...) {
			names[strings.ToLower(n)] = f.Name
		}
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first error reported is deterministic
	v := reflect.ValueOf(dst).Elem()
	seen := map[string]string{}
	for _, key := range keys {
		name, ok := names[strings.ToLower(key)]
		if !ok {
			return &SettingsError{Type: typeName, Setting: key, Reason: "unknown setting"}
		}
		if prev, dup := seen[name]; dup {
			return &SettingsError{Type: typeName, Setting: key, Reason: fmt.Sprintf("given twice (also as %s)", prev)}
		}
		seen[name] = key
		if doc[key] == nil {
			continue
		}
		if err := assign(fieldByJSON(v, name), doc[key]); err != nil {
			var se *SettingsError
			if errors.As(err, &se) {
				se.Type, se.Setting = typeName, key+se.Setting
				return se
			}
			return &SettingsError{Type: typeName, Setting: key, Reason: err.Error()}
		}
	}
	return nil
}

func fieldByJSON(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		if n, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); n == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

func assign(dst reflect.Value, val any) error {
	switch {
	case dst.Type() == durationType:
		var d time.Duration
		switch x := val.(type) {
		case string:
			p, err := time.ParseDuration(strings.TrimSpace(x))
			if err != nil {
				return fmt.Errorf(`want a duration such as "10s", got %q`, x)
			}
			d = p
		default:
			return fmt.Errorf(`want a duration such as "10s", got %s`, jsonx.Kind(val))
		}
		dst.SetInt(int64(d))
	case dst.Kind() == reflect.String:
		s, ok := val.(string)
		if !ok {
			return fmt.Errorf("want a string, got %s", jsonx.Kind(val))
		}
		dst.SetString(strings.TrimSpace(s))
	case dst.Kind() == reflect.Bool:
		b, ok := val.(bool)
		if !ok {
			return fmt.Errorf("want true or false, got %s", jsonx.Kind(val))
		}
		dst.SetBool(b)
	case dst.Kind() == reflect.Int || dst.Kind() == reflect.Int64:
		n, err := intOf(val)
		if err != nil {
			return err
		}
		dst.SetInt(n)
	case dst.Kind() == reflect.Slice && dst.Type().Elem().Kind() == reflect.String:
		list, ok := val.([]any)
		if !ok {
			return fmt.Errorf("want a list of strings, got %s", jsonx.Kind(val))
		}
		out := make([]string, 0, len(list))
		for i, e := range list {
			s, ok := e.(string)
			if !ok {
				return &SettingsError{Setting: fmt.Sprintf("[%d]", i), Reason: "want a string, got " + jsonx.Kind(e)}
			}
			out = append(out, s)
		}
		dst.Set(reflect.ValueOf(out))
	case dst.Kind() == reflect.Map && dst.Type().Elem().Kind() == reflect.String:
		m, ok := val.(map[string]any)
		if !ok {
			return fmt.Errorf("want an object of strings, got %s", jsonx.Kind(val))
		}
		out := make(map[string]string, len(m))
		for k, e := range m {
			s, ok := e.(string)
			if !ok {
				return &SettingsError{Setting: "." + k, Reason: "want a string, got " + jsonx.Kind(e)}
			}
			out[k] = s
		}
		dst.Set(reflect.ValueOf(out))
	default:
		return fmt.Errorf("cannot hold %s", jsonx.Kind(val))
	}
	return nil
}

func intOf(val any) (int64, error) {
	switch x := val.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, nil
		}
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case float64:
		if x == float64(int64(x)) {
			return int64(x), nil
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("want a whole number, got %s", jsonx.Kind(val))
}
