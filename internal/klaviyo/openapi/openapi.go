// Package openapi embeds the trimmed copy of Klaviyo's official OpenAPI spec
// (the endpoints Relay uses) and its rate limits, and validates requests
// against the spec. Tests validate every body the mapping produces with it,
// and the simulator validates every request it receives.
package openapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// SpecJSON is Klaviyo's OpenAPI subset (see README.md beside it).
//
//go:embed openapi-subset.json
var SpecJSON []byte

// RateLimitsJSON is {"limits": {"METHOD /path": {burst_per_s, steady_per_min, operationId}}}.
//
//go:embed rate-limits.json
var RateLimitsJSON []byte

// ExamplesJSON holds minimal valid and invalid request examples.
//
//go:embed examples.json
var ExamplesJSON []byte

// Limit is one endpoint's rate limit: two fixed windows.
type Limit struct {
	BurstPerSecond int    `json:"burst_per_s"`
	SteadyPerMin   int    `json:"steady_per_min"`
	OperationID    string `json:"operationId"`
}

// RateLimits returns the limits keyed by "METHOD /path-template".
func RateLimits() (map[string]Limit, error) {
	var f struct {
		Limits map[string]Limit `json:"limits"`
	}
	if err := json.Unmarshal(RateLimitsJSON, &f); err != nil {
		return nil, fmt.Errorf("decode rate limits: %w", err)
	}
	return f.Limits, nil
}

// Revision is the API revision of the embedded spec (info.version).
func Revision() string { return revision() }

// revision decodes the 190 KB spec once: callers ask for the revision per
// request or per settings parse.
var revision = sync.OnceValue(func() string {
	var f struct {
		Info struct {
			Version string `json:"version"`
		} `json:"info"`
	}
	_ = json.Unmarshal(SpecJSON, &f)
	return f.Info.Version
})

// Validator validates HTTP requests against the embedded spec. It is safe
// for concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// ErrNoRoute means the request's method and path are not in the spec.
var ErrNoRoute = errors.New("no such operation in Klaviyo's API")

// NewValidator loads and checks the embedded spec.
func NewValidator(ctx context.Context) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(SpecJSON)
	if err != nil {
		return nil, fmt.Errorf("load openapi spec: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("validate openapi spec: %w", err)
	}
	// Match any host: requests go to a simulator or a test server.
	doc.Servers = nil
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("build openapi router: %w", err)
	}
	return &Validator{doc: doc, router: r}, nil
}

// Route finds the operation a request is for, returning the path template
// (e.g. "/api/lists/{id}/relationships/profiles") and path parameters.
func (v *Validator) Route(req *http.Request) (*routers.Route, map[string]string, error) {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, ErrNoRoute)
	}
	return route, params, nil
}

// ValidateRequest checks headers (revision), query (company_id on /client/*)
// and body against the spec. Authentication is not checked here. The
// request body is read and restored. The returned error lists every problem
// (kin-openapi's MultiError) when there are several.
func (v *Validator) ValidateRequest(ctx context.Context, req *http.Request) error {
	route, params, err := v.Route(req)
	if err != nil {
		return err
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			MultiError:         true,
		},
	}
	return openapi3filter.ValidateRequest(ctx, in)
}

// ValidateCall validates a call given as method, path, query and body (any
// value that marshals to JSON, or nil), with the headers Relay's client
// sends. It is what tests use on the mapping's output.
func (v *Validator) ValidateCall(ctx context.Context, method, path, query string, body any) error {
	var rdr *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("marshal body: %w", err)
		}
		rdr = bytes.NewReader(b)
	} else {
		rdr = bytes.NewReader(nil)
	}
	u := &url.URL{Scheme: "https", Host: "a.klaviyo.com", Path: path, RawQuery: query}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rdr)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("revision", Revision())
	req.Header.Set("Accept", "application/vnd.api+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/vnd.api+json")
	}
	req.Header.Set("Authorization", "Klaviyo-API-Key pk_validation")
	return v.ValidateRequest(ctx, req)
}
