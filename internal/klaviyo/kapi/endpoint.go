package kapi

import (
	"fmt"
	"strings"
)

// template is one "METHOD /path/{param}/..." endpoint of Config.Limits.
type template struct {
	key      string   // the Limits key, e.g. "POST /api/lists/{id}/relationships/profiles"
	method   string   // "POST"
	segs     []string // path segments; "" marks a {param}
	literals int      // segments that are not params; more literals = more specific
}

func parseTemplate(key string) (template, error) {
	method, path, ok := strings.Cut(key, " ")
	if !ok || method == "" || strings.ToUpper(method) != method || !strings.HasPrefix(path, "/") {
		return template{}, fmt.Errorf("endpoint %q: want \"METHOD /path\"", key)
	}
	t := template{key: key, method: method}
	for _, s := range splitPath(path) {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			t.segs = append(t.segs, "")
			continue
		}
		t.segs = append(t.segs, s)
		t.literals++
	}
	return t, nil
}

// splitPath splits "/api/lists/x/" into [api lists x]: a trailing slash
// (Segment's style) does not change the endpoint.
func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// endpoints resolves concrete requests to their template.
type endpoints struct {
	byMethod map[string][]template
}

func newEndpoints(keys []string) (*endpoints, error) {
	e := &endpoints{byMethod: map[string][]template{}}
	for _, k := range keys {
		t, err := parseTemplate(k)
		if err != nil {
			return nil, err
		}
		e.byMethod[t.method] = append(e.byMethod[t.method], t)
	}
	return e, nil
}

// match returns the Limits key of the most specific template matching
// method and path (e.g. "DELETE /api/lists/{id}/relationships/profiles" for
// DELETE /api/lists/Y6nRLr/relationships/profiles), or false. A parameter
// matches exactly one non-empty segment.
func (e *endpoints) match(method, path string) (string, bool) {
	segs := splitPath(path)
	best, bestLit := "", -1
	for _, t := range e.byMethod[method] {
		if len(t.segs) != len(segs) || t.literals <= bestLit {
			continue
		}
		ok := true
		for i, s := range t.segs {
			if segs[i] == "" || (s != "" && s != segs[i]) {
				ok = false
				break
			}
		}
		if ok {
			best, bestLit = t.key, t.literals
		}
	}
	return best, bestLit >= 0
}
