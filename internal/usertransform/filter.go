package usertransform

import (
	"fmt"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/relaycdp/relay/internal/spec"
)

// FilterConfig is the declarative filter of a destination: Drop is an expr
// condition (https://expr-lang.org) over the event; a matching event is
// dropped. Rename and Remove change top-level properties of the events that
// stay. The condition sees type, event, name, userId, anonymousId,
// messageId, properties, traits and context; a missing key reads as nil.
//
//	drop: type == "track" && event startsWith "Debug"
//	rename: {plan_name: plan}
//	remove: [internal_note]
type FilterConfig struct {
	Drop   string            `json:"drop,omitempty"`
	Rename map[string]string `json:"rename,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// Filter is a compiled FilterConfig; safe for concurrent use.
type Filter struct {
	drop        *vm.Program
	src         string
	rename      map[string]string
	renameOrder []string
	remove      []string
}

// CompileFilter checks c and compiles its condition.
func CompileFilter(c FilterConfig) (*Filter, error) {
	f := &Filter{rename: c.Rename, remove: c.Remove, src: c.Drop}
	if strings.TrimSpace(c.Drop) != "" {
		prog, err := expr.Compile(c.Drop, expr.AsBool(), expr.Env(filterEnv(&spec.Event{})),
			expr.AllowUndefinedVariables(), expr.DisableBuiltin("type"))
		if err != nil {
			return nil, &Error{Code: "compile", Message: "filter.drop: " + err.Error()}
		}
		f.drop = prog
	}
	for from, to := range c.Rename {
		if strings.TrimSpace(from) == "" || strings.TrimSpace(to) == "" {
			return nil, &Error{Code: "compile", Message: "filter.rename: empty property name"}
		}
		f.renameOrder = append(f.renameOrder, from)
	}
	slices.Sort(f.renameOrder)
	for _, k := range c.Remove {
		if strings.TrimSpace(k) == "" {
			return nil, &Error{Code: "compile", Message: "filter.remove: empty property name"}
		}
	}
	return f, nil
}

// Apply returns the event as the filter leaves it, or drop=true when the
// condition matches. ev is not changed.
func (f *Filter) Apply(ev *spec.Event) (out spec.Event, drop bool, err error) {
	out = *ev
	if f == nil {
		return out, false, nil
	}
	if f.drop != nil {
		res, err := expr.Run(f.drop, filterEnv(ev))
		if err != nil {
			return out, false, &Error{Code: "js_error", Message: fmt.Sprintf("filter.drop %q: %v", f.src, err)}
		}
		if b, _ := res.(bool); b {
			return out, true, nil
		}
	}
	if len(f.rename) == 0 && len(f.remove) == 0 || len(ev.Properties) == 0 {
		return out, false, nil
	}
	props := make(map[string]any, len(ev.Properties))
	for k, v := range ev.Properties {
		props[k] = v
	}
	// Renames read the original properties and go in sorted order, so
	// chains (a→b, b→c) and clashes resolve the same way every time.
	for _, from := range f.renameOrder {
		if _, ok := ev.Properties[from]; ok {
			delete(props, from)
		}
	}
	for _, from := range f.renameOrder {
		if v, ok := ev.Properties[from]; ok {
			props[f.rename[from]] = v
		}
	}
	for _, k := range f.remove {
		delete(props, k)
	}
	out.Properties = props
	return out, false, nil
}

// filterEnv is what a filter condition sees (the builtin type() gives way
// to the event's type).
func filterEnv(ev *spec.Event) map[string]any {
	return map[string]any{
		"type": ev.Type, "event": ev.Event, "name": ev.Name, "userId": ev.UserID,
		"anonymousId": ev.AnonymousID, "messageId": ev.MessageID,
		"properties": ev.Properties, "traits": ev.Traits, "context": ev.Context,
	}
}
