// Package presink owns what a destination does to an event between the
// queue and the mapping: the user transformation, then the declarative
// filter, then the privacy policy, with the destination's current
// settings. Delivery and the console's event tester both run it, so the
// tester shows exactly what a policy or transformation will do.
package presink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/relaycdp/relay/internal/privacy"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/usertransform"
)

// Steps are what runs on an event before it is mapped, besides the
// privacy policy: an optional JavaScript user transformation and a
// declarative filter (internal/usertransform, docs/PRIVACY.md).
type Steps struct {
	// Transformation is JavaScript source defining transformEvent(event,
	// metadata); empty: none.
	Transformation string `json:"transformation,omitempty"`
	// Filter drops events matching a condition and renames or removes
	// properties; nil: none.
	Filter *usertransform.FilterConfig `json:"filter,omitempty"`
}

// Settings are a destination's pre-sink settings. A destination type whose
// settings embed both parts (their JSON names are the settings' names,
// described by destination.PrivacyFields) and implement Carrier gets the
// stage in delivery, the event tester and relay transform.
type Settings struct {
	privacy.Config
	Steps
}

// Carrier is destination settings that carry pre-sink settings.
type Carrier interface {
	PreSink() Settings
}

// Result is what the stage made of one event.
type Result struct {
	// Events are what goes on to the mapping: none (Skipped says why),
	// the event as the policy left it, or several (a transformation may
	// fan out).
	Events  []spec.Event
	Skipped string
	// Sent and Dropped are the keys the privacy policy let through and
	// removed, over all Events (sorted, no values); Mode is its mode.
	Sent, Dropped []string
	Mode          string
	// Active is false when the destination has no transformation, filter
	// or policy that can change anything (then Sent and Dropped are empty
	// and nothing is audited).
	Active bool
	// Logs are the transformation's console.log lines.
	Logs []string
}

// Stage runs one destination's pre-sink steps. It compiles the settings'
// transformation, filter and policy once and again only when they change.
// Safe for concurrent use.
type Stage struct {
	dest, destType string
	limits         usertransform.Limits
	mu             sync.Mutex
	key            string
	c              *compiled
}

type compiled struct {
	js     *usertransform.JS
	filter *usertransform.Filter
	policy *privacy.Policy
}

// New makes the stage of destination dest of type destType (as the
// transformation's metadata names them); limits bound the transformation
// (zero: defaults; VMs should be the worker count).
func New(dest, destType string, limits usertransform.Limits) *Stage {
	return &Stage{dest: dest, destType: destType, limits: limits}
}

// Error is a failure of the stage on one event; Code is "transformation_"
// plus usertransform's code. The event goes to dead letters with it.
type Error struct {
	Code string
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode is the dead letter's code (delivery reads it).
func (e *Error) ErrorCode() string { return e.Code }

// CodeOf is the code an outcome or dead letter gives a Run error: the
// *Error's, else transformation_error.
func CodeOf(err error) string {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return "transformation_error"
}

// Run applies the stage to ev (which it does not change).
func (s *Stage) Run(ctx context.Context, st Settings, source string, ev *spec.Event) (Result, error) {
	if unset(&st) {
		return Result{Events: []spec.Event{*ev}, Mode: privacy.ModeStandard}, nil
	}
	c, err := s.compile(st)
	if err != nil {
		return Result{}, &Error{Code: "transformation_compile", Err: err}
	}
	res := Result{Mode: c.policy.Mode(), Active: c.js != nil || c.filter != nil || c.policy.Active()}
	events := []spec.Event{*ev}
	if !res.Active {
		res.Events = events
		return res, nil
	}
	if c.js != nil {
		out, err := c.js.Transform(ctx, ev, usertransform.Metadata{SourceName: source, DestinationName: s.dest, DestinationType: s.destType, MessageID: ev.MessageID})
		res.Logs = out.Logs
		if err != nil {
			code := "transformation_error"
			if te, ok := err.(*usertransform.Error); ok {
				code = "transformation_" + te.Code
			}
			return res, &Error{Code: code, Err: err}
		}
		if len(out.Events) == 0 {
			res.Skipped = "the transformation dropped the event (returned null)"
			return res, nil
		}
		events = out.Events
	}
	for i := range events {
		if c.filter != nil {
			out, drop, err := c.filter.Apply(&events[i])
			if err != nil {
				return res, &Error{Code: "transformation_filter", Err: err}
			}
			if drop {
				continue
			}
			events[i] = out
		}
		out, rep := c.policy.Apply(&events[i])
		res.Events = append(res.Events, out)
		res.Sent = append(res.Sent, rep.Sent...)
		res.Dropped = append(res.Dropped, rep.Dropped...)
	}
	if len(res.Events) == 0 {
		res.Skipped = "the filter dropped the event"
	}
	slices.Sort(res.Sent)
	slices.Sort(res.Dropped)
	res.Sent = slices.Compact(res.Sent)
	res.Dropped = slices.Compact(res.Dropped)
	return res, nil
}

// Applies reports whether st has any of the stage's settings; without
// them Run passes every event through unchanged.
func Applies(st Settings) bool { return !unset(&st) }

// unset reports whether st has none of the stage's settings: the common
// case skips compiling and the policy altogether.
func unset(st *Settings) bool {
	p := &st.Config
	return p.Mode == "" && p.PropertyAllowlist == nil && p.TraitAllowlist == nil && p.DropIP == nil &&
		p.DropUserAgent == nil && p.StripPageURLs == nil && p.DropFreeText == nil && p.Identifiers == nil &&
		st.Transformation == "" && st.Filter == nil
}

// compile returns the compiled steps of st, reusing the last ones while
// the settings that shape them stay the same.
func (s *Stage) compile(st Settings) (*compiled, error) {
	keyJSON, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	key := string(keyJSON)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil && s.key == key {
		return s.c, nil
	}
	c := &compiled{}
	if c.policy, err = privacy.Compile(st.Config); err != nil {
		return nil, err
	}
	if st.Transformation != "" {
		if c.js, err = usertransform.CompileJS(st.Transformation, s.limits); err != nil {
			return nil, fmt.Errorf("transformation: %w", err)
		}
	}
	if st.Filter != nil {
		if c.filter, err = usertransform.CompileFilter(*st.Filter); err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
	}
	s.key, s.c = key, c
	return c, nil
}
