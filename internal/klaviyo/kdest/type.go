package kdest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
	"github.com/relaycdp/relay/internal/spec"
)

// Type is the Klaviyo destination type for the registry.
func Type() *destination.Type {
	return &destination.Type{
		Name:   "klaviyo",
		Title:  "Klaviyo",
		Fields: Fields(),
		Parse:  parse,
		Open:   open,
		Test:   test,
	}
}

// parse reads and validates Klaviyo settings, with Klaviyo's own parser
// (it knows RudderStack's event-list shapes and filtering option).
func parse(raw []byte) (destination.Settings, error) {
	s, err := klaviyo.ParseSettings(raw)
	if err == nil {
		err = s.Validate()
	}
	if err != nil {
		return nil, neutralErrors(err)
	}
	return s, nil
}

// neutralErrors turns klaviyo.SettingsErrors into destination ones (same
// words), so the console can put each next to its field.
func neutralErrors(err error) error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if se, ok := e.(*klaviyo.SettingsError); ok {
			out = append(out, &destination.SettingsError{Type: "klaviyo", Setting: se.Setting, Reason: se.Reason})
			return
		}
		if u, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range u.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, e)
	}
	walk(err)
	return errors.Join(out...)
}

// instance is one configured Klaviyo destination.
type instance struct {
	*Sink
	client *kapi.Client
}

func open(env destination.Env) (destination.Instance, error) {
	s, ok := env.Settings().(klaviyo.Settings)
	if !ok {
		return nil, fmt.Errorf("klaviyo destination %s: settings of type %T", env.Name, env.Settings())
	}
	c, err := kapi.New(kapi.Config{BaseURL: env.Endpoint, Revision: s.Revision, Limiter: env.Limiter}, env.Log, env.Metrics)
	if err != nil {
		return nil, fmt.Errorf("klaviyo client: %w", err)
	}
	settings := func() klaviyo.Settings { s, _ := env.Settings().(klaviyo.Settings); return s }
	return &instance{Sink: NewSink(Config{Settings: settings, CPU: env.CPU}, c, env.Log, env.Metrics), client: c}, nil
}

// Ping reads one profile with the private key: harmless, and it needs the
// key's read scope like delivery needs its write scopes.
func (in *instance) Ping(ctx context.Context, ds destination.Settings) (bool, string) {
	s, _ := ds.(klaviyo.Settings)
	if s.PrivateAPIKey == "" {
		return false, "No private API key is set: enter one above."
	}
	err := in.client.Ping(ctx, s.PrivateAPIKey)
	ok, msg := describePing(err)
	return ok, strings.ReplaceAll(msg, s.PrivateAPIKey, "[key]")
}

func describePing(err error) (bool, string) {
	if err == nil {
		return true, "Connected: Klaviyo accepted the private key (GET /api/profiles answered 200)."
	}
	var ke *kapi.Error
	if !errors.As(err, &ke) {
		return false, fmt.Sprintf("Failed: %v", err)
	}
	var detail []string
	for _, e := range ke.Errors {
		s := e.Code
		if e.Detail != "" {
			s = strings.TrimSpace(s + ": " + e.Detail)
		} else if e.Title != "" {
			s = strings.TrimSpace(s + ": " + e.Title)
		}
		if s != "" {
			detail = append(detail, s)
		}
	}
	var msg string
	switch {
	case ke.Status == 401 || ke.Status == 403:
		msg = fmt.Sprintf("Klaviyo refused the private key with %d", ke.Status)
	case ke.Status == 429:
		msg = "Klaviyo is rate limiting this key (429); the key itself was accepted"
	case ke.Status != 0:
		msg = fmt.Sprintf("Klaviyo answered %d", ke.Status)
	default:
		msg = fmt.Sprintf("Klaviyo could not be reached: %v", err)
	}
	if len(detail) > 0 {
		msg += " (" + strings.Join(detail, "; ") + ")"
	}
	return false, msg + "."
}

// test is the event tester's mapping: `relay transform`'s code path.
func test(input []byte, opts spec.Options, ds destination.Settings) (destination.TestResult, error) {
	s, _ := ds.(klaviyo.Settings)
	outs, err := klaviyo.Transform(input, opts, s)
	if err != nil {
		return destination.TestResult{}, err
	}
	out, err := klaviyo.MarshalOutcomes(outs)
	if err != nil {
		return destination.TestResult{}, err
	}
	res := destination.TestResult{Output: out}
	for _, o := range outs {
		ov := destination.TestOutcome{MessageID: o.MessageID, Skipped: o.Skipped, Warnings: o.Warnings}
		for _, rq := range o.Requests {
			ov.Requests = append(ov.Requests, rq.Method+" "+rq.Path)
		}
		if o.Error != nil {
			ov.Error = o.Error.Code + ": " + o.Error.Message
		}
		res.Events = append(res.Events, ov)
	}
	return res, nil
}
