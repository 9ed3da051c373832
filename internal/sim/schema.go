package sim

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// schemaIndex finds unknown attribute names. The spec sets no
// additionalProperties: false, so kin-openapi lets any key through, but
// Klaviyo rejects attributes a resource does not have ("'x' is not a valid
// field for the resource 'profile'."); that is how it refuses anonymous_id
// on /api/profile-import since revision 2025-10-15.
type schemaIndex struct {
	doc     map[string]any
	schemas map[string]any
}

func newSchemaIndex(spec []byte) (*schemaIndex, error) {
	var doc map[string]any
	if err := json.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	comps, _ := doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	if schemas == nil {
		return nil, fmt.Errorf("spec has no components.schemas")
	}
	return &schemaIndex{doc: doc, schemas: schemas}, nil
}

// body returns the request body schema of an operation, or nil.
func (x *schemaIndex) body(method, tmpl string) map[string]any {
	paths, _ := x.doc["paths"].(map[string]any)
	item, _ := paths[tmpl].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	rb, _ := op["requestBody"].(map[string]any)
	content, _ := rb["content"].(map[string]any)
	for _, mt := range content {
		m, _ := mt.(map[string]any)
		s, _ := m["schema"].(map[string]any)
		return x.resolve(s)
	}
	return nil
}

func (x *schemaIndex) resolve(s map[string]any) map[string]any {
	for i := 0; s != nil && i < 32; i++ {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		next, _ := x.schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
		s = next
	}
	return s
}

// unknownAttributes walks a decoded body beside its schema and reports every
// key of an "attributes" object that the schema does not declare, with its
// JSON pointer, sorted.
func (x *schemaIndex) unknownAttributes(schema map[string]any, v any, ptr string, resourceType string) []unknownAttr {
	var out []unknownAttr
	x.walk(schema, v, ptr, "", resourceType, &out)
	sort.Slice(out, func(i, j int) bool { return out[i].pointer < out[j].pointer })
	return out
}

type unknownAttr struct {
	pointer, name, resource string
}

func (x *schemaIndex) walk(schema map[string]any, v any, ptr, key, resType string, out *[]unknownAttr) {
	schema = x.resolve(schema)
	if schema == nil || v == nil {
		return
	}
	switch val := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		if props == nil {
			return // free-form object (custom properties): anything goes
		}
		if t, ok := val["type"].(string); ok {
			resType = t
		}
		for k, sub := range val {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if key == "attributes" {
					*out = append(*out, unknownAttr{pointer: ptr + "/" + k, name: k, resource: resType})
				}
				continue
			}
			x.walk(ps, sub, ptr+"/"+k, k, resType, out)
		}
	case []any:
		items, _ := schema["items"].(map[string]any)
		for i, e := range val {
			x.walk(items, e, ptr+"/"+strconv.Itoa(i), key, resType, out)
		}
	}
}
