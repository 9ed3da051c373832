package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relaycdp/relay/internal/klaviyo/openapi"
	"github.com/relaycdp/relay/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testKey = "pk_test_0123456789"

// testRevision is the spec's revision (openapi.Revision parses the spec, so
// it is read once).
var testRevision = openapi.Revision()

type harness struct {
	t   *testing.T
	sim *Sim
	srv *httptest.Server
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = []string{testKey}
	}
	if cfg.JobDelay == 0 {
		cfg.JobDelay = 5 * time.Millisecond
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		srv.Close()
	})
	return &harness{t: t, sim: s, srv: srv}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) errors(t *testing.T) []APIError {
	t.Helper()
	var doc ErrorDocument
	if err := json.Unmarshal(a.body, &doc); err != nil {
		t.Fatalf("status %d, body is not an error document: %v: %s", a.status, err, a.body)
	}
	if len(doc.Errors) == 0 {
		t.Fatalf("status %d, no errors in %s", a.status, a.body)
	}
	for _, e := range doc.Errors {
		if e.ID == "" || e.Code == "" || e.Title == "" || e.Detail == "" || e.Status != a.status {
			t.Errorf("error lacks id/code/title/detail/status: %+v", e)
		}
	}
	return doc.Errors
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("status %d, body not JSON: %v: %s", a.status, err, a.body)
	}
	return m
}

// call is one request; opts tweak headers (nil values delete).
type call struct {
	method, path, query string
	body                any
	header              map[string]string
}

func (h *harness) do(c call) answer {
	h.t.Helper()
	var rdr io.Reader
	switch b := c.body.(type) {
	case nil:
	case string:
		rdr = strings.NewReader(b)
	case []byte:
		rdr = bytes.NewReader(b)
	case json.RawMessage:
		rdr = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rdr = bytes.NewReader(raw)
	}
	u := h.srv.URL + c.path
	if c.query != "" {
		u += "?" + c.query
	}
	req, err := http.NewRequestWithContext(context.Background(), c.method, u, rdr)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("revision", testRevision)
	req.Header.Set("Accept", "application/vnd.api+json")
	if rdr != nil {
		req.Header.Set("Content-Type", "application/vnd.api+json")
	}
	if strings.HasPrefix(c.path, "/api/") {
		req.Header.Set("Authorization", "Klaviyo-API-Key "+testKey)
	}
	for k, v := range c.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

func (h *harness) must(c call, status int) answer {
	h.t.Helper()
	a := h.do(c)
	if a.status != status {
		h.t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, a.status, status, a.body)
	}
	return a
}

// jobsDone waits until every job is complete.
func (h *harness) jobsDone() State {
	h.t.Helper()
	var st State
	testutil.Eventually(h.t, 10*time.Second, "jobs to complete", func() bool {
		st = h.sim.State()
		for _, j := range st.Jobs {
			if j.Status != "complete" {
				return false
			}
		}
		return true
	})
	return st
}

// Request bodies.

func profileAttrs(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func eventBody(metric, uniqueID string, profile map[string]any) map[string]any {
	attrs := map[string]any{
		"properties": map[string]any{"k": "v"},
		"metric":     map[string]any{"data": map[string]any{"type": "metric", "attributes": map[string]any{"name": metric}}},
		"profile":    map[string]any{"data": map[string]any{"type": "profile", "attributes": profile}},
	}
	if uniqueID != "" {
		attrs["unique_id"] = uniqueID
	}
	return map[string]any{"data": map[string]any{"type": "event", "attributes": attrs}}
}

func importBody(attrs map[string]any) map[string]any {
	return map[string]any{"data": map[string]any{"type": "profile", "attributes": attrs}}
}

func bulkEventsBody(entries ...map[string]any) map[string]any {
	data := []any{}
	for _, e := range entries {
		data = append(data, e)
	}
	return map[string]any{"data": map[string]any{"type": "event-bulk-create-job", "attributes": map[string]any{
		"events-bulk-create": map[string]any{"data": data}}}}
}

func bulkEntry(profile map[string]any, events ...map[string]any) map[string]any {
	evs := []any{}
	for _, e := range events {
		evs = append(evs, map[string]any{"type": "event", "attributes": e})
	}
	return map[string]any{"type": "event-bulk-create", "attributes": map[string]any{
		"profile": map[string]any{"data": map[string]any{"type": "profile", "attributes": profile}},
		"events":  map[string]any{"data": evs}}}
}

func bulkEvent(metric, uniqueID string) map[string]any {
	return map[string]any{"properties": map[string]any{}, "unique_id": uniqueID,
		"metric": map[string]any{"data": map[string]any{"type": "metric", "attributes": map[string]any{"name": metric}}}}
}

func subscribeBody(listID string, historical bool, profiles ...map[string]any) map[string]any {
	data := []any{}
	for _, p := range profiles {
		data = append(data, map[string]any{"type": "profile", "attributes": p})
	}
	attrs := map[string]any{"profiles": map[string]any{"data": data}}
	if historical {
		attrs["historical_import"] = true
	}
	body := map[string]any{"type": "profile-subscription-bulk-create-job", "attributes": attrs}
	if listID != "" {
		body["relationships"] = map[string]any{"list": map[string]any{"data": map[string]any{"type": "list", "id": listID}}}
	}
	return map[string]any{"data": body}
}

func (s State) profileBy(field, value string) *ProfileState {
	for i := range s.Profiles {
		p := &s.Profiles[i]
		v := map[string]string{"email": p.Email, "phone_number": p.PhoneNumber, "external_id": p.ExternalID,
			"anonymous_id": p.AnonymousID, "id": p.ID}[field]
		if v == value {
			return p
		}
	}
	return nil
}
