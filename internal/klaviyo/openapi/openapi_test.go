package openapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// The examples shipped with the spec say which requests Klaviyo accepts;
// the validator must agree with every one of them.
func TestExamples(t *testing.T) {
	ctx := context.Background()
	v, err := NewValidator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Examples []struct {
			Name         string          `json:"name"`
			Method       string          `json:"method"`
			Path         string          `json:"path"`
			Query        string          `json:"query"`
			Body         json.RawMessage `json:"body"`
			ExpectValid  bool            `json:"expect_valid"`
			OmitRevision bool            `json:"omit_revision"`
		} `json:"examples"`
	}
	if err := json.Unmarshal(ExamplesJSON, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Examples) < 10 {
		t.Fatalf("only %d examples", len(f.Examples))
	}
	for _, ex := range f.Examples {
		t.Run(ex.Name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, ex.Method, "http://sim.local"+ex.Path+"?"+ex.Query, strings.NewReader(string(ex.Body)))
			if !ex.OmitRevision {
				req.Header.Set("revision", Revision())
			}
			if len(ex.Body) > 0 {
				req.Header.Set("Content-Type", "application/vnd.api+json")
			}
			err := v.ValidateRequest(ctx, req)
			if ex.ExpectValid && err != nil {
				t.Errorf("valid example rejected: %v", err)
			}
			if !ex.ExpectValid && err == nil {
				t.Errorf("invalid example accepted")
			}
		})
	}
}

func TestRateLimits(t *testing.T) {
	l, err := RateLimits()
	if err != nil {
		t.Fatal(err)
	}
	got := l["POST /api/event-bulk-create-jobs"]
	if got.BurstPerSecond != 10 || got.SteadyPerMin != 150 {
		t.Errorf("event bulk limit = %+v", got)
	}
	if Revision() != "2026-07-15" {
		t.Errorf("revision = %q", Revision())
	}
}
