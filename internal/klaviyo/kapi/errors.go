package kapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors for requests the client refuses before sending anything.
var (
	// ErrUnknownEndpoint means the request's method and path match no
	// endpoint in Config.Limits, so no rate limit is known for it.
	ErrUnknownEndpoint = errors.New("endpoint has no known rate limit")
	// ErrInvalidRequest means the klaviyo.Request itself is malformed
	// (missing key, path, company_id, unencodable body).
	ErrInvalidRequest = errors.New("invalid klaviyo request")
)

// Error is a failed Klaviyo call: an HTTP error status, a throttled call
// the caller's context could not wait for, or a network error (Status 0,
// cause in Err). It never contains the API key.
type Error struct {
	// Status is the HTTP status, 0 if no response was received.
	Status int
	// Class says whether and when to retry.
	Class Class
	// RetryAfter is the wait Klaviyo asked for (Throttled), or the time
	// left until the endpoint may be used again.
	RetryAfter time.Duration
	// Endpoint is the endpoint template, e.g. "POST /api/events".
	Endpoint string
	// Errors are the JSON:API error objects of the response, if any.
	Errors []ErrorObject
	// Attempts is how many requests this call sent (including 429s).
	Attempts int
	// Err is the underlying cause for network errors and timeouts
	// (errors.Is(err, context.DeadlineExceeded) works through it).
	Err error

	// snippet is the start of a non-JSON:API error body, with the key removed.
	snippet string
}

// ErrorObject is one entry of Klaviyo's {"errors": [...]} document.
type ErrorObject struct {
	ID     string `json:"id,omitempty"`
	Code   string `json:"code,omitempty"`
	Title  string `json:"title,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Status is the HTTP status; Klaviyo sends a number, some proxies and
	// older revisions a string: both decode.
	Status int         `json:"status,omitempty"`
	Source ErrorSource `json:"source"`
	// Meta carries extra data, e.g. duplicate_profile_id on a 409.
	Meta map[string]any `json:"meta,omitempty"`
}

// ErrorSource locates an error: a JSON pointer into the request body, or a
// query parameter.
type ErrorSource struct {
	Pointer   string `json:"pointer,omitempty"`
	Parameter string `json:"parameter,omitempty"`
}

// UnmarshalJSON accepts "status" as a number or a numeric string.
func (o *ErrorObject) UnmarshalJSON(b []byte) error {
	type plain ErrorObject
	var aux struct {
		*plain
		Status json.RawMessage `json:"status"`
	}
	aux.plain = (*plain)(o)
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	o.Status = 0
	s := strings.Trim(strings.TrimSpace(string(aux.Status)), `"`)
	if n, err := strconv.Atoi(s); err == nil {
		o.Status = n
	}
	return nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("klaviyo ")
	b.WriteString(e.Endpoint)
	b.WriteString(": ")
	switch {
	case e.Status != 0:
		b.WriteString(strconv.Itoa(e.Status))
		if t := http.StatusText(e.Status); t != "" {
			b.WriteByte(' ')
			b.WriteString(t)
		}
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(e.Class.String())
	}
	for i, o := range e.Errors {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Errors)-i)
			break
		}
		b.WriteString("; ")
		if o.Code != "" {
			b.WriteString(o.Code)
			b.WriteString(": ")
		}
		switch {
		case o.Detail != "":
			b.WriteString(o.Detail)
		case o.Title != "":
			b.WriteString(o.Title)
		}
		if o.Source.Pointer != "" {
			b.WriteString(" (pointer ")
			b.WriteString(o.Source.Pointer)
			b.WriteByte(')')
		}
		if o.Source.Parameter != "" {
			b.WriteString(" (parameter ")
			b.WriteString(o.Source.Parameter)
			b.WriteByte(')')
		}
	}
	if len(e.Errors) == 0 && e.snippet != "" {
		b.WriteString(": ")
		b.WriteString(strconv.Quote(e.snippet))
	}
	fmt.Fprintf(&b, " [%s", e.Class)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, ", %d attempts", e.Attempts)
	}
	b.WriteByte(']')
	return b.String()
}

// Unwrap returns the network or context error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Pointers returns the JSON pointers (source.pointer) of the error objects
// that have one, in order; delivery uses them to isolate failing items of
// a bulk request.
func (e *Error) Pointers() []string {
	var ps []string
	for _, o := range e.Errors {
		if o.Source.Pointer != "" {
			ps = append(ps, o.Source.Pointer)
		}
	}
	return ps
}

// DuplicateProfileID returns meta.duplicate_profile_id of a 409
// duplicate_profile error, or "".
func (e *Error) DuplicateProfileID() string {
	for _, o := range e.Errors {
		if id, ok := o.Meta["duplicate_profile_id"].(string); ok {
			return id
		}
	}
	return ""
}

// maxSnippet bounds how much of a non-JSON error body goes into Error().
const maxSnippet = 200

// decodeErrorBody fills e.Errors from a JSON:API error document, or
// e.snippet from anything else (HTML from a proxy, plain text). Every
// string that could echo the request has the API key removed.
func (e *Error) decodeErrorBody(body []byte, apiKey string) {
	var doc struct {
		Errors []ErrorObject `json:"errors"`
	}
	if err := json.Unmarshal(body, &doc); err == nil && len(doc.Errors) > 0 {
		for i := range doc.Errors {
			redactObject(&doc.Errors[i], apiKey)
		}
		e.Errors = doc.Errors
		return
	}
	s := strings.TrimSpace(string(body))
	if len(s) > maxSnippet {
		s = s[:maxSnippet]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	e.snippet = redact(s, apiKey)
}

const redacted = "[REDACTED]"

// redact removes the API key from s. Keys shorter than 4 bytes are not
// real keys; replacing them would mangle text for nothing.
func redact(s, apiKey string) string {
	if len(apiKey) < 4 || !strings.Contains(s, apiKey) {
		return s
	}
	return strings.ReplaceAll(s, apiKey, redacted)
}

func redactObject(o *ErrorObject, apiKey string) {
	for _, p := range []*string{&o.ID, &o.Code, &o.Title, &o.Detail, &o.Source.Pointer, &o.Source.Parameter} {
		*p = redact(*p, apiKey)
	}
	for k, v := range o.Meta {
		if s, ok := v.(string); ok {
			o.Meta[k] = redact(s, apiKey)
		}
	}
}
