package klaviyo

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/relaycdp/relay/internal/spec"
)

// Outcome is one element of `relay transform` output (DESIGN.md §3): the
// requests an event maps to, or why it was skipped, or its error.
type Outcome struct {
	MessageID string `json:"messageId"`
	// Requests is [] (not absent) for a skipped event, absent for an error.
	Requests []Request     `json:"requests,omitzero"`
	Skipped  string        `json:"skipped,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
	Error    *OutcomeError `json:"error,omitempty"`
	// Failures are parts of the event that failed while its requests went
	// (an order's product without an id).
	Failures []OutcomeError `json:"failures,omitempty"`
}

// OutcomeError is an event's error: a spec.Error code (invalid input) or
// a MapError code (input the mapping cannot send).
type OutcomeError struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Transform parses a request body (one event, an array, or a batch
// envelope) and maps every event with s: the real path of `relay
// transform`. The error (wrapping spec.ErrMalformed) is only for a body
// that cannot be read at all; per-event problems are in the outcomes.
func Transform(body []byte, opts spec.Options, s Settings) ([]Outcome, error) {
	batch, err := spec.Parse(body, opts)
	if err != nil {
		return nil, err
	}
	out := make([]Outcome, len(batch.Items))
	for i := range batch.Items {
		out[i] = TransformEvent(&batch.Items[i], s)
	}
	return out, nil
}

// Exit codes of `relay transform` (DESIGN.md §3).
const (
	ExitOK       = 0 // every event mapped or was skipped
	ExitEventErr = 1 // some event has an error; the output is complete
	ExitBadInput = 2 // unreadable input or invalid settings
)

// TransformOutput is `relay transform` without the I/O: the JSON array to
// print and the exit code. With ExitBadInput, out is nil and err says why.
func TransformOutput(body []byte, opts spec.Options, s Settings) (out []byte, code int, err error) {
	outs, err := Transform(body, opts, s)
	if err != nil {
		return nil, ExitBadInput, err
	}
	if out, err = MarshalOutcomes(outs); err != nil {
		return nil, ExitBadInput, err
	}
	if Failed(outs) {
		return out, ExitEventErr, nil
	}
	return out, ExitOK, nil
}

// TransformEvent maps one parsed item.
func TransformEvent(it *spec.Item, s Settings) Outcome {
	return transformEvent(it, s, nil)
}

// transformEvent is TransformEvent with a stream's phone cache.
func transformEvent(it *spec.Item, s Settings, sh *shared) Outcome {
	o := Outcome{MessageID: it.Event.MessageID}
	if it.Err != nil {
		o.Error = &OutcomeError{Code: it.Err.Code, Message: it.Err.Message}
		return o
	}
	res, err := mapEvent(&it.Event, s, sh)
	if err != nil {
		o.Error = &OutcomeError{Code: "mapping_error", Message: err.Error()}
		if me, ok := err.(*MapError); ok {
			o.Error.Code = me.Code
		}
		return o
	}
	o.Requests = make([]Request, 0, len(res.Ops))
	for _, op := range res.Ops {
		if op.Kind == OpListRemove {
			o.Requests = append(o.Requests, op.Requests(s)...) // lookup, then DELETE
			continue
		}
		o.Requests = append(o.Requests, op.Request(s))
	}
	o.Skipped = res.Skipped
	o.Warnings = res.Warnings
	for _, f := range res.Failures {
		o.Failures = append(o.Failures, OutcomeError{Code: f.Code, Field: f.Field, Message: f.Message})
	}
	return o
}

// Failed reports whether any outcome is an error or has a failed part
// (exit code 1).
func Failed(outs []Outcome) bool {
	for _, o := range outs {
		if o.Error != nil || len(o.Failures) > 0 {
			return true
		}
	}
	return false
}

// MarshalOutcomes renders outcomes as the indented JSON array of `relay
// transform`, HTML characters unescaped. An outcome whose requests cannot
// be rendered is replaced, in outs too, by an error outcome, so the output
// is always one valid element per event.
func MarshalOutcomes(outs []Outcome) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("[")
	for i := range outs {
		el, err := marshalOutcome(&outs[i])
		if err != nil {
			outs[i] = Outcome{MessageID: outs[i].MessageID,
				Error: &OutcomeError{Code: "render_error", Message: "the requests could not be rendered as JSON: " + err.Error()}}
			if el, err = marshalOutcome(&outs[i]); err != nil {
				return nil, fmt.Errorf("encode transform output: %w", err)
			}
		}
		if i > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n  ")
		buf.Write(bytes.TrimRight(el, "\n"))
	}
	if len(outs) > 0 {
		buf.WriteString("\n")
	}
	buf.WriteString("]\n")
	return buf.Bytes(), nil
}

func marshalOutcome(o *Outcome) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("  ", "  ")
	if err := enc.Encode(o); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
