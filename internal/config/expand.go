package config

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// envMarks stands in for ${VAR} references while the YAML is parsed. The
// variables are expanded inside the parsed values (expandEnv), never in
// the text: a value like "abc #x" then stays whole instead of being cut at
// the '#' by the parser. A reference is first replaced in the text by a
// mark of letters, digits and underscores that no YAML context treats
// specially, so `{ token: ${T} }` still parses as a flow mapping.
type envMarks struct {
	nonce string
	mark  *regexp.Regexp
}

// newEnvMarks picks a nonce that does not occur in raw, so no text of the
// file can pass for a mark.
func newEnvMarks(raw []byte) envMarks {
	nonce := "relayenv"
	for i := 0; bytes.Contains(raw, []byte(nonce)); i++ {
		nonce = "relayenv" + strconv.Itoa(i)
	}
	return envMarks{nonce: nonce, mark: regexp.MustCompile(nonce + `_([A-Za-z_][A-Za-z0-9_]*?)_` + nonce)}
}

// hide replaces every ${VAR} in raw by its mark.
func (m envMarks) hide(raw []byte) []byte {
	return envRef.ReplaceAllFunc(raw, func(ref []byte) []byte {
		return []byte(m.nonce + "_" + string(ref[2:len(ref)-1]) + "_" + m.nonce)
	})
}

// restore turns marks back into the ${VAR} text (in keys, which are not
// expanded).
func (m envMarks) restore(s string) string {
	return m.mark.ReplaceAllString(s, "$${$1}")
}

// expandEnv expands the marked references inside the scalar values of n.
// An unset variable is an error naming it and the field that references it.
func (m envMarks) expandEnv(n *yaml.Node, path string, env func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			p := path
			if n.Kind == yaml.SequenceNode {
				p = fmt.Sprintf("%s[%d]", path, i)
			}
			if err := m.expandEnv(c, p, env); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i]
			key.Value = m.restore(key.Value)
			if err := m.expandEnv(n.Content[i+1], joinPath(path, key.Value), env); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		return m.expandScalar(n, path, env)
	}
	// Aliases point at a node already expanded where it is anchored.
	return nil
}

func (m envMarks) expandScalar(n *yaml.Node, path string, env func(string) (string, bool)) error {
	if !strings.Contains(n.Value, m.nonce) {
		return nil
	}
	var missing error
	v := m.mark.ReplaceAllStringFunc(n.Value, func(ref string) string {
		name := m.mark.FindStringSubmatch(ref)[1]
		val, ok := env(name)
		if !ok && missing == nil {
			missing = fmt.Errorf("%s (line %d): %w: %s", fieldName(path), n.Line, ErrMissingEnv, name)
		}
		return val
	})
	if missing != nil {
		return missing
	}
	n.Value = v
	if n.Style == 0 || n.Style == yaml.FlowStyle {
		// A plain ${N} takes the type of what it expands to (workers:
		// ${WORKERS} is a number), except null: an empty or "null" secret
		// stays the string it is.
		n.Tag = ""
		switch v {
		case "", "~", "null", "Null", "NULL":
			n.Tag = "!!str"
		}
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldName(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}

// checkKnownFields reports the first mapping key in n that names no field
// of t (by yaml tag), as yaml.Decoder.KnownFields does for text; a node
// decoded with yaml.Node.Decode has no such check of its own.
func checkKnownFields(n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := checkKnownFields(c, t); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return nil // the decoder reports the type mismatch
		}
		for _, c := range n.Content {
			if err := checkKnownFields(c, t.Elem()); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			return nil // maps (destination settings) take any key
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Value == "<<" {
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("line %d: field %s not found in type %s", k.Line, k.Value, t)
			}
			if err := checkKnownFields(n.Content[i+1], ft); err != nil {
				return err
			}
		}
	}
	return nil
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}
