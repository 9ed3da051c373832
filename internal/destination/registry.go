package destination

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/ratelimit"
	"github.com/relaycdp/relay/internal/spec"
)

// Settings are one destination's parsed and validated settings. They
// marshal to JSON under their settings' names (Field.Name), secrets
// included: the console's form and the event tester work on that document.
type Settings interface {
	// Warnings are accepted settings worth a second look (ignored pasted
	// names, legacy values), for the console.
	Warnings() []string
}

// Type is one kind of destination, registered once: everything config,
// app, the console and `relay replay` need to know about it.
type Type struct {
	// Name is the config's `type` ("klaviyo", "webhook").
	Name string
	// Title is the name SDK users write in an event's integrations map
	// and the console shows ("Klaviyo", "Webhook").
	Title string
	// Fields describe the settings, in form order; the console renders
	// its form from them and Secret fields are never shown.
	Fields []Field
	// Parse reads a settings document (JSON or YAML; defaults for what it
	// leaves out) and validates it. Errors name the setting
	// (*SettingsError, joined when several).
	Parse func(raw []byte) (Settings, error)
	// Open builds one configured destination.
	Open func(env Env) (Instance, error)
	// Test maps events (one, an array or a batch envelope) with settings s
	// as the event tester shows them, without sending anything.
	Test func(input []byte, opts spec.Options, s Settings) (TestResult, error)

	// Optional console helpers (nil: none).
	// Summary is what the console shows above the form for s: what a
	// preset implies, a missing key.
	Summary func(s Settings) []string
	// Import turns a pasted settings export of another system into a
	// settings document, with a note on what it chose (e.g. a preset).
	Import func(text []byte, cur Settings) (doc []byte, note string, err error)
	// AdjustForm changes the settings document a saved form made before
	// it is parsed (e.g. a newly picked preset's defaults replace the old
	// preset's values the user left alone).
	AdjustForm func(doc map[string]any, cur Settings)
}

// Env is what relay serve gives a destination it opens.
type Env struct {
	// Name is the configured name (the queue's dest).
	Name string
	// Endpoint is the config's endpoint ("" for the type's default).
	Endpoint string
	// Settings returns the live settings, which the console may change
	// between batches; the value is the type's own (from Parse).
	Settings func() Settings
	Log      *slog.Logger
	// Metrics registers the destination's own metrics; everything
	// registered carries the label destination=<Name>.
	Metrics prometheus.Registerer
	// Limiter, when set, keeps rate-limit state shared between nodes.
	Limiter ratelimit.Limiter
	// CPU is the background share of the cores for heavy mapping.
	CPU CPU
	// Late records outcomes the sink learns after Deliver returned, when
	// the destination says only later what became of jobs it accepted
	// (Klaviyo validates a profile import job's items asynchronously): a
	// Dead result dead-letters the job's event and marks it dead in the
	// delivery log (delivery.NewLate). nil when nothing records them.
	Late func(ctx context.Context, jobs []Job, results []Result) error
}

// Instance is one configured destination: its sink and its connection
// test.
type Instance interface {
	Sink
	// Ping makes one harmless call with settings s (the console's "test
	// connection") and says, in a sentence without secrets, what happened.
	Ping(ctx context.Context, s Settings) (ok bool, message string)
}

// TestResult is the event tester's view of a mapping.
type TestResult struct {
	// Output is the full mapping as JSON (what `relay transform` prints
	// for Klaviyo).
	Output json.RawMessage
	// Events are one per input event, in order (more when a
	// transformation made several of one).
	Events []TestOutcome
	// Transformed are the events after the destination's user
	// transformation, as JSON; nil without one.
	Transformed json.RawMessage
}

// TestOutcome is what one event maps to.
type TestOutcome struct {
	MessageID string
	Requests  []string // "POST /api/events", one per request it would send
	Skipped   string
	Warnings  []string
	Error     string
	// What the pre-sink stage did: keys its privacy policy dropped (names
	// only), the transformation's console.log lines, the privacy mode.
	Dropped     []string
	Logs        []string
	PrivacyMode string
}

// SettingsError is a settings problem: which setting, and why. It never
// contains a setting's value (some are secrets).
type SettingsError struct {
	Type    string // the destination type ("klaviyo")
	Setting string // "" for the whole document; "a.b" for a nested key
	Reason  string
}

func (e *SettingsError) Error() string {
	if e.Setting == "" {
		return e.Type + " settings: " + e.Reason
	}
	return fmt.Sprintf("%s setting %s: %s", e.Type, e.Setting, e.Reason)
}

// SettingsErrors collects every *SettingsError in err (joined or wrapped).
func SettingsErrors(err error) []*SettingsError {
	var out []*SettingsError
	var walk func(error)
	walk = func(e error) {
		if se, ok := e.(*SettingsError); ok {
			out = append(out, se)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

// Registry is the destination types relay knows, looked up by config type.
type Registry struct {
	types []*Type
}

// NewRegistry registers types; a type without a name, parser, opener or
// described fields, or a name given twice, is a programming error.
func NewRegistry(types ...*Type) (*Registry, error) {
	r := &Registry{}
	var errs []error
	for _, t := range types {
		if err := t.check(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := r.Lookup(t.Name); dup {
			errs = append(errs, fmt.Errorf("destination type %q registered twice", t.Name))
			continue
		}
		r.types = append(r.types, t)
	}
	return r, errors.Join(errs...)
}

func (t *Type) check() error {
	var missing []string
	if t.Name == "" {
		missing = append(missing, "Name")
	}
	if t.Title == "" {
		missing = append(missing, "Title")
	}
	if t.Parse == nil {
		missing = append(missing, "Parse")
	}
	if t.Open == nil {
		missing = append(missing, "Open")
	}
	if t.Test == nil {
		missing = append(missing, "Test")
	}
	if len(missing) > 0 {
		return fmt.Errorf("destination type %q: missing %s", t.Name, strings.Join(missing, ", "))
	}
	return CheckFields(t.Fields)
}

// Lookup returns the type registered under name (case-insensitive).
func (r *Registry) Lookup(name string) (*Type, bool) {
	i := slices.IndexFunc(r.types, func(t *Type) bool { return strings.EqualFold(t.Name, name) })
	if i < 0 {
		return nil, false
	}
	return r.types[i], true
}

// Names are the registered type names, in registration order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.types))
	for i, t := range r.types {
		out[i] = t.Name
	}
	return out
}
