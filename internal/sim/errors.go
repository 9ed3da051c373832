package sim

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/uuid"
)

// APIError is one entry of Klaviyo's error document (ErrorDocument):
// {"errors":[{"id","status","code","title","detail","source":{"pointer"|"parameter"},"meta"}]}.
// Codes and titles follow Klaviyo (Django REST framework's exception codes).
type APIError struct {
	ID     string         `json:"id"`
	Status int            `json:"status"`
	Code   string         `json:"code"`
	Title  string         `json:"title"`
	Detail string         `json:"detail"`
	Source *ErrorSource   `json:"source,omitempty"`
	Meta   map[string]any `json:"meta,omitempty"`
}

// ErrorSource says which part of the request an error is about.
type ErrorSource struct {
	Pointer   string `json:"pointer,omitempty"`
	Parameter string `json:"parameter,omitempty"`
}

// ErrorDocument is the body of every error answer.
type ErrorDocument struct {
	Errors []APIError `json:"errors"`
}

func newErr(status int, code, title, detail string) APIError {
	return APIError{ID: uuid.NewString(), Status: status, Code: code, Title: title, Detail: detail}
}

// invalid is a 400 with a JSON pointer into the request body.
func invalid(pointer, detail string) APIError {
	e := newErr(400, "invalid", "Invalid input.", detail)
	e.Source = &ErrorSource{Pointer: pointer}
	return e
}

// invalidParam is a 400 about a query parameter or header.
func invalidParam(param, detail string) APIError {
	e := newErr(400, "invalid", "Invalid input.", detail)
	e.Source = &ErrorSource{Parameter: param}
	return e
}

func notAuthenticated(detail string) APIError {
	e := newErr(401, "not_authenticated", "Authentication credentials were not provided.", detail)
	return e
}

func notFound() APIError {
	return newErr(404, "not_found", "Not found.", "The requested resource was not found.")
}

func methodNotAllowed(method string) APIError {
	return newErr(405, "method_not_allowed", `Method "`+method+`" not allowed.`, `Method "`+method+`" not allowed.`)
}

func tooLarge(detail string) APIError {
	return newErr(413, "request_too_large", "Request entity too large.", detail)
}

func unsupportedMedia(ct string) APIError {
	return newErr(415, "unsupported_media_type", `Unsupported media type "`+ct+`" in request.`,
		`Unsupported media type "`+ct+`" in request; use application/vnd.api+json or application/json.`)
}

func throttled(retryAfter int) APIError {
	unit := "seconds"
	if retryAfter == 1 {
		unit = "second"
	}
	return newErr(429, "throttled", "Request was throttled.",
		"Request was throttled. Expected available in "+strconv.Itoa(retryAfter)+" "+unit+".")
}

func serverError(status int) APIError {
	if status == 503 {
		return newErr(503, "service_unavailable", "Service unavailable.", "Service temporarily unavailable, try again later.")
	}
	return newErr(status, "error", "A server error occurred.", "A server error occurred.")
}

var missingProp = regexp.MustCompile(`^property "([^"]+)" is missing$`)

// convertValidationError turns kin-openapi's error (a MultiError of
// RequestErrors, each with parameter or body schema errors) into Klaviyo
// errors with JSON pointers into the body, or source.parameter for query
// parameters and headers.
func convertValidationError(err error) []APIError {
	var out []APIError
	seen := map[string]bool{}
	add := func(e APIError) {
		k := e.Detail
		if e.Source != nil {
			k = e.Source.Pointer + "|" + e.Source.Parameter + "|" + k
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, x := range e {
				walk(x)
			}
		case *openapi3filter.RequestError:
			switch {
			case e.Parameter != nil:
				name := e.Parameter.Name
				reason := e.Reason
				if e.Err != nil && reason == "" {
					reason = e.Err.Error()
				}
				detail := "'" + name + "' " + e.Parameter.In + " parameter: " + firstLine(reason)
				if strings.Contains(reason, "required but missing") {
					if e.Parameter.In == "header" {
						detail = "Missing '" + name + "' header; Klaviyo requires it on every request."
					} else {
						detail = "'" + name + "' is a required " + e.Parameter.In + " parameter."
					}
				}
				add(invalidParam(name, detail))
			case e.Err != nil:
				var pe *openapi3filter.ParseError
				if errors.As(e.Err, &pe) {
					pe := newErr(400, "parse_error", "Malformed request.", "JSON parse error: "+firstLine(pe.Error()))
					pe.Source = &ErrorSource{Pointer: "/data"}
					add(pe)
					return
				}
				before := len(out)
				walk(e.Err)
				if len(out) == before {
					add(invalid("/data", firstLine(e.Error())))
				}
			default:
				add(invalid("/data", firstLine(e.Error())))
			}
		case *openapi3.SchemaError:
			ptr := pointerOf(e.JSONPointer())
			reason := e.Reason
			if m := missingProp.FindStringSubmatch(reason); m != nil {
				// kin-openapi already points at the missing property.
				reason = "'" + m[1] + "' is a required field."
			}
			add(invalid(ptr, firstLine(reason)))
		default:
			add(invalid("/data", firstLine(err.Error())))
		}
	}
	walk(err)
	if len(out) == 0 {
		out = append(out, invalid("/data", firstLine(err.Error())))
	}
	return out
}

// pointerOf renders path segments as an RFC 6901 JSON pointer.
func pointerOf(segs []string) string {
	if len(segs) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		s = strings.ReplaceAll(s, "~", "~0")
		b.WriteString(strings.ReplaceAll(s, "/", "~1"))
	}
	return b.String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
