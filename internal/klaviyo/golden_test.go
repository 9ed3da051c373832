package klaviyo

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaycdp/relay/internal/klaviyo/openapi"
	"github.com/relaycdp/relay/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the expected output of the golden cases")

// goldenCase is one file under testdata/golden: input event(s), settings,
// the seed or design rule it shows, and the expected `relay transform`
// output.
type goldenCase struct {
	Seed        string          `json:"seed"`
	Description string          `json:"description"`
	Settings    json.RawMessage `json:"settings,omitempty"`
	ReceivedAt  string          `json:"receivedAt,omitempty"`
	Input       json.RawMessage `json:"input"`
	Expected    json.RawMessage `json:"expected"`
}

// citations a case's seed field may start with.
var citations = []string{"000 ", "001 ", "002 ", "003 ", "004 ", "DESIGN §", "peers.md ", "Klaviyo rule "}

var (
	validatorOnce sync.Once
	validator     *openapi.Validator
	validatorErr  error
)

func klaviyoValidator(t testing.TB) *openapi.Validator {
	t.Helper()
	validatorOnce.Do(func() { validator, validatorErr = openapi.NewValidator(context.Background()) })
	if validatorErr != nil {
		t.Fatal(validatorErr)
	}
	return validator
}

func goldenFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readCase(t *testing.T, path string) goldenCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var gc goldenCase
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&gc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return gc
}

// caseSettings reads a case's settings (defaults when absent).
func caseSettings(t *testing.T, gc goldenCase) Settings {
	t.Helper()
	s := DefaultSettings()
	if len(gc.Settings) > 0 {
		var err error
		if s, err = ParseSettings(gc.Settings); err != nil {
			t.Fatalf("settings: %v", err)
		}
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("settings: %v", err)
	}
	return s
}

func caseOptions(t *testing.T, gc goldenCase) spec.Options {
	t.Helper()
	opts := spec.Options{MaxEventBytes: 32768}
	if gc.ReceivedAt != "" {
		ts, err := time.Parse(time.RFC3339Nano, gc.ReceivedAt)
		if err != nil {
			t.Fatalf("receivedAt: %v", err)
		}
		opts.ReceivedAt = ts
	}
	return opts
}

// TestGolden runs every case through the real transform path (spec.Parse
// → Map → Op.Request → JSON), validates every request against Klaviyo's
// OpenAPI spec and the extra allow-lists, and compares the output with
// the case's expectation. -update rewrites the expectations.
func TestGolden(t *testing.T) {
	files := goldenFiles(t)
	if len(files) < 60 {
		t.Errorf("only %d golden cases, want at least 60", len(files))
	}
	v := klaviyoValidator(t)
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			gc := readCase(t, path)
			if !slices.ContainsFunc(citations, func(c string) bool { return strings.HasPrefix(gc.Seed, c) }) {
				t.Errorf("seed %q cites no seed file, DESIGN section or peers.md", gc.Seed)
			}
			s := caseSettings(t, gc)
			outs, err := Transform(gc.Input, caseOptions(t, gc), s)
			if err != nil {
				t.Fatalf("Transform: %v", err)
			}
			got, err := MarshalOutcomes(outs)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range outs {
				for i, r := range o.Requests {
					checkRequest(t, v, o.MessageID, i, r)
				}
			}
			if *update {
				gc.Expected = got
				data, err := json.MarshalIndent(gc, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			var want, have any
			if err := json.Unmarshal(gc.Expected, &want); err != nil {
				t.Fatalf("expected: %v", err)
			}
			if err := json.Unmarshal(got, &have); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
			if diff := cmp.Diff(want, have); diff != "" {
				t.Errorf("transform output mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// profileImportAttributes are the attributes /api/profile-import takes
// (ProfileUpsertQueryResourceObject). The schema allows unknown keys, so
// this list is what catches anonymous_id (removed in revision 2025-10-15).
var profileImportAttributes = []string{"email", "phone_number", "external_id", "_kx",
	"first_name", "last_name", "organization", "locale", "title", "image", "location", "properties"}

// checkRequest validates one request against the OpenAPI spec, and checks
// what the schema cannot: no nulls anywhere, the profile-import allow-list
// (never anonymous_id) and a company_id on /client calls.
func checkRequest(t *testing.T, v *openapi.Validator, msgID string, i int, r Request) {
	t.Helper()
	if err := v.ValidateCall(context.Background(), r.Method, r.Path, r.Query, r.Body); err != nil {
		t.Errorf("%s request %d (%s %s) rejected by Klaviyo's OpenAPI spec: %v", msgID, i, r.Method, r.Path, err)
	}
	raw, err := json.Marshal(r.Body)
	if err != nil {
		t.Fatalf("%s request %d: marshal: %v", msgID, i, err)
	}
	if !json.Valid(raw) {
		t.Fatalf("%s request %d: invalid JSON body", msgID, i)
	}
	var body any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	if p := findNull(body, ""); p != "" && r.Body != nil {
		t.Errorf("%s request %d: null at %s (leave empty fields out)", msgID, i, p)
	}
	if strings.HasPrefix(r.Path, "/client/") && !strings.HasPrefix(r.Query, "company_id=") {
		t.Errorf("%s request %d: %s without company_id", msgID, i, r.Path)
	}
	if r.Path == "/api/profile-subscription-bulk-create-jobs" {
		// consented_at only with historical_import (Klaviyo rejects it
		// otherwise), and then on every profile (it is required).
		historical := dig(body, "data", "attributes", "historical_import") == true
		for _, p := range asList(dig(body, "data", "attributes", "profiles", "data")) {
			subs, _ := dig(p, "attributes", "subscriptions").(map[string]any)
			for ch, c := range subs {
				has := dig(c, "marketing", "consented_at") != nil
				if has != historical {
					t.Errorf("%s request %d: %s consented_at present=%v with historical_import=%v", msgID, i, ch, has, historical)
				}
			}
		}
	}
	var profiles []map[string]any
	switch r.Path {
	case "/api/profile-import":
		if d, ok := body.(map[string]any)["data"].(map[string]any); ok {
			profiles = append(profiles, d)
		}
	case "/api/profile-bulk-import-jobs":
		d := dig(body, "data", "attributes", "profiles", "data")
		for _, p := range asList(d) {
			if pm, ok := p.(map[string]any); ok {
				profiles = append(profiles, pm)
			}
		}
	}
	for _, p := range profiles {
		attrs, _ := p["attributes"].(map[string]any)
		for k := range attrs {
			if !slices.Contains(profileImportAttributes, k) {
				t.Errorf("%s request %d: %s profile attribute %q is not one /api/profile-import takes", msgID, i, r.Path, k)
			}
		}
	}
}

func findNull(v any, path string) string {
	switch t := v.(type) {
	case nil:
		if path == "" {
			return "/"
		}
		return path
	case map[string]any:
		for k, e := range t {
			if p := findNull(e, path+"/"+k); p != "" {
				return p
			}
		}
	case []any:
		for i, e := range t {
			if p := findNull(e, path+"/"+strconv.Itoa(i)); p != "" {
				return p
			}
		}
	}
	return ""
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
