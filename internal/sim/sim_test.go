package sim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaycdp/relay/internal/klaviyo/openapi"
	"github.com/relaycdp/relay/internal/testutil"
)

// The examples shipped with the spec: valid ones are accepted with a known
// key, invalid ones rejected in Klaviyo's error format with a pointer (or
// parameter) naming what is wrong.
func TestExamples(t *testing.T) {
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
	if err := json.Unmarshal(openapi.ExamplesJSON, &f); err != nil {
		t.Fatal(err)
	}
	want := map[string]ErrorSource{
		"create_event_missing_metric":              {Pointer: "/data/attributes/metric"},
		"bulk_subscribe_profiles_bad_consent":      {Pointer: "/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consent"},
		"create_client_subscription_missing_list":  {Pointer: "/data/relationships"},
		"create_event_without_revision_header":     {Parameter: "revision"},
		"create_client_profile_without_company_id": {Parameter: "company_id"},
		"request_profile_deletion_wrong_type":      {Pointer: "/data/type"},
	}
	okStatus := map[string]int{
		"POST /api/events": 202, "POST /api/event-bulk-create-jobs": 202, "POST /api/profile-import": 201,
		"POST /api/profile-bulk-import-jobs": 202, "POST /api/profile-subscription-bulk-create-jobs": 202,
		"POST /api/profile-subscription-bulk-delete-jobs": 202, "POST /api/lists/Y6nRLr/relationships/profiles": 204,
		"DELETE /api/lists/Y6nRLr/relationships/profiles": 204, "GET /api/profiles": 200, "POST /client/events": 202,
		"POST /client/profiles": 202, "POST /client/subscriptions": 202, "POST /api/profiles": 201,
		"POST /api/data-privacy-deletion-jobs": 202,
	}
	for _, ex := range f.Examples {
		t.Run(ex.Name, func(t *testing.T) {
			h := newHarness(t, Config{})
			body := ex.Body
			if strings.Contains(ex.Path, "/relationships/profiles") {
				// The list examples name a profile id; make it exist.
				a := h.must(call{method: "POST", path: "/api/profile-import", body: importBody(profileAttrs("email", "list@example.com"))}, 201)
				id := a.json(t)["data"].(map[string]any)["id"].(string)
				body = json.RawMessage(strings.ReplaceAll(string(body), "01GDDKASAP8TKDDA2GRZDSVP4H", id))
			}
			c := call{method: ex.Method, path: ex.Path, query: ex.Query}
			if len(body) > 0 {
				c.body = body
			}
			if ex.OmitRevision {
				c.header = map[string]string{"revision": ""}
			}
			a := h.do(c)
			if ex.ExpectValid {
				if ws := okStatus[ex.Method+" "+ex.Path]; a.status != ws {
					t.Fatalf("status %d, want %d: %s", a.status, ws, a.body)
				}
				if st := h.sim.State(); st.Rejected != 0 {
					t.Errorf("rejected = %d", st.Rejected)
				}
				return
			}
			if a.status != 400 {
				t.Fatalf("status %d, want 400: %s", a.status, a.body)
			}
			errs := a.errors(t)
			if diff := cmp.Diff(want[ex.Name], *errs[0].Source); diff != "" {
				t.Errorf("source (-want +got):\n%s\n%s", diff, a.body)
			}
			if st := h.sim.State(); st.Rejected != 1 || len(st.Rejections) != 1 {
				t.Errorf("rejected = %d, rejections %d", st.Rejected, len(st.Rejections))
			}
		})
	}
}

func TestAuthAndRequestChecks(t *testing.T) {
	ev := eventBody("Viewed", "u1", profileAttrs("email", "a@example.com"))
	big := importBody(profileAttrs("email", "big@example.com", "properties", map[string]any{"blob": strings.Repeat("x", 110<<10)}))
	cases := []struct {
		name   string
		cfg    Config
		call   call
		status int
		code   string
		source ErrorSource
	}{
		{name: "ok", call: call{method: "POST", path: "/api/events", body: ev}, status: 202},
		{name: "trailing slash ok", call: call{method: "POST", path: "/api/events/", body: ev}, status: 202},
		{name: "plain json ok", call: call{method: "POST", path: "/api/events", body: ev, header: map[string]string{"Content-Type": "application/json"}}, status: 202},
		{name: "no auth", call: call{method: "POST", path: "/api/events", body: ev, header: map[string]string{"Authorization": ""}}, status: 401, code: "not_authenticated"},
		{name: "unknown key", call: call{method: "POST", path: "/api/events", body: ev, header: map[string]string{"Authorization": "Klaviyo-API-Key pk_nope"}}, status: 401, code: "not_authenticated"},
		{name: "bearer scheme", call: call{method: "POST", path: "/api/events", body: ev, header: map[string]string{"Authorization": "Bearer " + testKey}}, status: 401, code: "not_authenticated"},
		{name: "demo key by default", cfg: Config{Keys: []string{}}, call: call{method: "POST", path: "/api/events", body: ev, header: map[string]string{"Authorization": "Klaviyo-API-Key " + DemoKey}}, status: 202},
		{name: "missing revision", call: call{method: "POST", path: "/api/events", body: ev, header: map[string]string{"revision": ""}}, status: 400, code: "invalid", source: ErrorSource{Parameter: "revision"}},
		{name: "bad revision", call: call{method: "POST", path: "/api/events", body: ev, header: map[string]string{"revision": "latest"}}, status: 400, code: "invalid", source: ErrorSource{Parameter: "revision"}},
		{name: "media type", call: call{method: "POST", path: "/api/events", body: ev, header: map[string]string{"Content-Type": "text/plain"}}, status: 415, code: "unsupported_media_type"},
		{name: "bad json", call: call{method: "POST", path: "/api/events", body: `{"data":`}, status: 400, code: "parse_error", source: ErrorSource{Pointer: "/data"}},
		{name: "empty body", call: call{method: "POST", path: "/api/events", body: ``, header: map[string]string{"Content-Type": "application/vnd.api+json"}}, status: 400, code: "parse_error", source: ErrorSource{Pointer: "/data"}},
		{name: "unknown path", call: call{method: "GET", path: "/api/nothing"}, status: 404, code: "not_found"},
		{name: "wrong method", call: call{method: "GET", path: "/api/events"}, status: 405, code: "method_not_allowed"},
		{name: "profile too large", call: call{method: "POST", path: "/api/profile-import", body: big}, status: 413, code: "request_too_large"},
		{name: "anonymous_id on profile-import", call: call{method: "POST", path: "/api/profile-import", body: importBody(profileAttrs("email", "a@example.com", "anonymous_id", "anon-1"))}, status: 400, code: "invalid", source: ErrorSource{Pointer: "/data/attributes/anonymous_id"}},
		{name: "unknown attribute", call: call{method: "POST", path: "/api/events", body: eventBody("X", "", profileAttrs("email", "a@example.com", "phone", "+15005550006"))}, status: 400, code: "invalid", source: ErrorSource{Pointer: "/data/attributes/profile/data/attributes/phone"}},
		{name: "bad email", call: call{method: "POST", path: "/api/profile-import", body: importBody(profileAttrs("email", "not-an-email"))}, status: 400, code: "invalid", source: ErrorSource{Pointer: "/data/attributes/email"}},
		{name: "bad phone", call: call{method: "POST", path: "/api/events", body: eventBody("X", "", profileAttrs("phone_number", "555-0100"))}, status: 400, code: "invalid", source: ErrorSource{Pointer: "/data/attributes/profile/data/attributes/phone_number"}},
		{name: "no identifier", call: call{method: "POST", path: "/api/events", body: eventBody("X", "", profileAttrs("first_name", "Ann"))}, status: 400, code: "invalid", source: ErrorSource{Pointer: "/data/attributes/profile/data/attributes"}},
		{name: "empty metric", call: call{method: "POST", path: "/api/events", body: eventBody(" ", "", profileAttrs("email", "a@example.com"))}, status: 400, code: "invalid", source: ErrorSource{Pointer: "/data/attributes/metric/data/attributes/name"}},
		{name: "schema type error", call: call{method: "POST", path: "/api/events", body: strings.Replace(mustJSON(ev), `"properties":{"k":"v"}`, `"properties":{"k":"v"},"value":"ten"`, 1)}, status: 400, code: "invalid", source: ErrorSource{Pointer: "/data/attributes/value"}},
		{name: "client without company", call: call{method: "POST", path: "/client/events", body: ev}, status: 400, code: "invalid", source: ErrorSource{Parameter: "company_id"}},
		{name: "client any company", call: call{method: "POST", path: "/client/events", query: "company_id=AbC123", body: ev}, status: 202},
		{name: "client unknown company", cfg: Config{PublicKeys: []string{"AbC123"}}, call: call{method: "POST", path: "/client/events", query: "company_id=Zzz999", body: ev}, status: 400, code: "invalid", source: ErrorSource{Parameter: "company_id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			a := h.do(tc.call)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.code == "" {
				return
			}
			errs := a.errors(t)
			if errs[0].Code != tc.code {
				t.Errorf("code %q, want %q: %s", errs[0].Code, tc.code, a.body)
			}
			var got ErrorSource
			if errs[0].Source != nil {
				got = *errs[0].Source
			}
			if diff := cmp.Diff(tc.source, got); diff != "" {
				t.Errorf("source (-want +got):\n%s\n%s", diff, a.body)
			}
			if strings.Contains(string(a.body), testKey) {
				t.Errorf("answer leaks the API key: %s", a.body)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestProfileMerge(t *testing.T) {
	type step struct {
		call   call
		status int
	}
	imp := func(kv ...any) step {
		return step{call{method: "POST", path: "/api/profile-import", body: importBody(profileAttrs(kv...))}, 0}
	}
	evt := func(uid string, kv ...any) step {
		return step{call{method: "POST", path: "/api/events", body: eventBody("Viewed", uid, profileAttrs(kv...))}, 202}
	}
	cases := []struct {
		name  string
		steps []step
		want  []ProfileState // compared on identifiers and properties
	}{
		{
			name: "by email, case-insensitive",
			steps: []step{imp("email", "ann@example.com", "properties", map[string]any{"a": 1}),
				evt("1", "email", "ANN@example.com", "external_id", "u1", "properties", map[string]any{"b": 2})},
			want: []ProfileState{{Email: "ann@example.com", ExternalID: "u1", Properties: map[string]any{"a": json.Number("1"), "b": json.Number("2")}}},
		},
		{
			name:  "by phone",
			steps: []step{imp("phone_number", "+15005550006"), evt("1", "phone_number", "+15005550006", "email", "p@example.com")},
			want:  []ProfileState{{Email: "p@example.com", PhoneNumber: "+15005550006", Properties: map[string]any{}}},
		},
		{
			name:  "by external_id",
			steps: []step{imp("external_id", "u9", "first_name", "Bo"), imp("external_id", "u9", "email", "bo@example.com")},
			want:  []ProfileState{{Email: "bo@example.com", ExternalID: "u9", Properties: map[string]any{}}},
		},
		{
			name:  "by anonymous_id",
			steps: []step{evt("1", "anonymous_id", "anon-1"), evt("2", "anonymous_id", "anon-1", "email", "x@example.com")},
			want:  []ProfileState{{Email: "x@example.com", AnonymousID: "anon-1", Properties: map[string]any{}}},
		},
		{
			name:  "distinct identifiers, distinct profiles",
			steps: []step{imp("email", "a@example.com"), imp("email", "b@example.com")},
			want: []ProfileState{{Email: "a@example.com", Properties: map[string]any{}},
				{Email: "b@example.com", Properties: map[string]any{}}},
		},
		{
			name: "patch_properties and null",
			steps: []step{
				imp("email", "c@example.com", "properties", map[string]any{"tags": []any{"a"}, "old": "x", "gone": "y", "keep": true}),
				{call{method: "POST", path: "/api/profile-import", body: map[string]any{"data": map[string]any{"type": "profile",
					"attributes": map[string]any{"email": "c@example.com", "properties": map[string]any{"gone": nil}},
					"meta": map[string]any{"patch_properties": map[string]any{
						"append": map[string]any{"tags": "b", "new": "n"}, "unappend": map[string]any{"tags": "a"}, "unset": []any{"old"}}}}}}, 200},
			},
			want: []ProfileState{{Email: "c@example.com", Properties: map[string]any{"tags": []any{"b"}, "new": []any{"n"}, "keep": true}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			for i, s := range tc.steps {
				a := h.do(s.call)
				if s.status != 0 && a.status != s.status || a.status >= 300 {
					t.Fatalf("step %d: status %d: %s", i, a.status, a.body)
				}
			}
			var got []ProfileState
			for _, p := range h.sim.State().Profiles {
				got = append(got, ProfileState{Email: p.Email, PhoneNumber: p.PhoneNumber, ExternalID: p.ExternalID,
					AnonymousID: p.AnonymousID, Properties: p.Properties})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("profiles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProfileImportStatusAndDuplicate(t *testing.T) {
	h := newHarness(t, Config{})
	a := h.must(call{method: "POST", path: "/api/profile-import", body: importBody(profileAttrs("email", "a@example.com", "first_name", "Ann"))}, 201)
	p1 := a.json(t)["data"].(map[string]any)
	if p1["type"] != "profile" || p1["id"] == "" {
		t.Fatalf("profile resource: %s", a.body)
	}
	a = h.must(call{method: "POST", path: "/api/profile-import", body: importBody(profileAttrs("email", "a@example.com", "last_name", "Lee"))}, 200)
	if id := a.json(t)["data"].(map[string]any)["id"]; id != p1["id"] {
		t.Fatalf("updated a different profile: %v vs %v", id, p1["id"])
	}
	a = h.must(call{method: "POST", path: "/api/profile-import", body: importBody(profileAttrs("phone_number", "+15005550006"))}, 201)
	p2 := a.json(t)["data"].(map[string]any)["id"]

	// email of p1 + phone of p2 → 409 duplicate_profile.
	a = h.must(call{method: "POST", path: "/api/profile-import", body: importBody(profileAttrs("email", "a@example.com", "phone_number", "+15005550006"))}, 409)
	errs := a.errors(t)
	if errs[0].Code != "duplicate_profile" || errs[0].Meta["duplicate_profile_id"] == nil {
		t.Errorf("409 error: %s", a.body)
	}
	// POST /api/profiles with an existing identifier → 409 naming it.
	a = h.must(call{method: "POST", path: "/api/profiles", body: importBody(profileAttrs("email", "A@example.com"))}, 409)
	if got := a.errors(t)[0].Meta["duplicate_profile_id"]; got != p1["id"] {
		t.Errorf("duplicate_profile_id %v, want %v", got, p1["id"])
	}
	h.must(call{method: "POST", path: "/api/profiles", body: importBody(profileAttrs("email", "new@example.com"))}, 201)
	// PATCH by id.
	h.must(call{method: "PATCH", path: "/api/profiles/" + p2.(string), body: map[string]any{"data": map[string]any{
		"type": "profile", "id": p2, "attributes": map[string]any{"external_id": "u2"}}}}, 200)
	h.must(call{method: "PATCH", path: "/api/profiles/NOPE", body: map[string]any{"data": map[string]any{
		"type": "profile", "id": "NOPE", "attributes": map[string]any{"external_id": "u3"}}}}, 404)

	st := h.sim.State()
	if len(st.Profiles) != 3 {
		t.Fatalf("%d profiles", len(st.Profiles))
	}
	if p := st.profileBy("id", p1["id"].(string)); p == nil || p.Attributes["first_name"] != "Ann" || p.Attributes["last_name"] != "Lee" {
		t.Errorf("merged attributes: %+v", p)
	}
	if p := st.profileBy("external_id", "u2"); p == nil || p.PhoneNumber != "+15005550006" {
		t.Errorf("patched profile: %+v", p)
	}
}

func TestEventDedup(t *testing.T) {
	h := newHarness(t, Config{})
	prof := profileAttrs("email", "d@example.com")
	for range 3 {
		h.must(call{method: "POST", path: "/api/events", body: eventBody("Placed Order", "order-1", prof)}, 202)
	}
	h.must(call{method: "POST", path: "/api/events", body: eventBody("Placed Order", "order-2", prof)}, 202)
	h.must(call{method: "POST", path: "/api/events", body: eventBody("Ordered Product", "order-1", prof)}, 202)
	st := h.sim.State()
	var got []string
	for _, e := range st.Events {
		got = append(got, e.Metric+"/"+e.UniqueID)
	}
	if diff := cmp.Diff([]string{"Placed Order/order-1", "Placed Order/order-2", "Ordered Product/order-1"}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if st.Requests["POST /api/events"] != 5 {
		t.Errorf("requests = %v", st.Requests)
	}
}

func TestBulkEvents(t *testing.T) {
	p1 := profileAttrs("email", "e1@example.com")
	p2 := profileAttrs("email", "e2@example.com")
	const base = "/data/attributes/events-bulk-create/data"
	cases := []struct {
		name    string
		body    map[string]any
		status  int
		pointer string
		events  int
	}{
		{name: "accepted", body: bulkEventsBody(bulkEntry(p1, bulkEvent("A", "1"), bulkEvent("B", "2")), bulkEntry(p2, bulkEvent("A", "3"))), status: 202, events: 3},
		{name: "repeated unique_id fails the job", body: bulkEventsBody(bulkEntry(p1, bulkEvent("A", "1")), bulkEntry(p2, bulkEvent("A", "1"))),
			status: 400, pointer: base + "/1/attributes/events/data/0/attributes/unique_id"},
		{name: "bad item names it", body: bulkEventsBody(bulkEntry(p1, bulkEvent("A", "1")), bulkEntry(profileAttrs("email", "nope"), bulkEvent("A", "2"))),
			status: 400, pointer: base + "/1/attributes/profile/data/attributes/email"},
		{name: "bad event time names it", body: bulkEventsBody(bulkEntry(p1, bulkEvent("A", "1"), map[string]any{"properties": map[string]any{}, "time": "1980-01-01T00:00:00Z",
			"metric": map[string]any{"data": map[string]any{"type": "metric", "attributes": map[string]any{"name": "A"}}}})),
			status: 400, pointer: base + "/0/attributes/events/data/1/attributes/time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			a := h.must(call{method: "POST", path: "/api/event-bulk-create-jobs", body: tc.body}, tc.status)
			if tc.status != 202 {
				if got := a.errors(t)[0].Source.Pointer; got != tc.pointer {
					t.Errorf("pointer %q, want %q", got, tc.pointer)
				}
				if st := h.sim.State(); len(st.Jobs) != 0 || len(st.Events) != 0 {
					t.Errorf("rejected job left jobs %d events %d", len(st.Jobs), len(st.Events))
				}
				return
			}
			if len(a.body) != 0 {
				t.Errorf("202 with body %s", a.body)
			}
			st := h.jobsDone()
			if len(st.Events) != tc.events || st.Jobs[0].CompletedCount != tc.events || st.Jobs[0].Type != "event-bulk-create-job" {
				t.Errorf("events %d, job %+v", len(st.Events), st.Jobs)
			}
		})
	}
}

func TestTooManyItems(t *testing.T) {
	h := newHarness(t, Config{})
	var evs []map[string]any
	for i := range 1001 {
		evs = append(evs, bulkEvent("A", fmt.Sprint(i)))
	}
	a := h.must(call{method: "POST", path: "/api/event-bulk-create-jobs", body: bulkEventsBody(bulkEntry(profileAttrs("email", "a@example.com"), evs...))}, 400)
	if got := a.errors(t)[0].Source.Pointer; got != "/data/attributes/events-bulk-create/data" {
		t.Errorf("pointer %q", got)
	}
	var profiles []map[string]any
	for i := range 101 {
		profiles = append(profiles, profileAttrs("email", fmt.Sprintf("u%d@example.com", i),
			"subscriptions", map[string]any{"email": map[string]any{"marketing": map[string]any{"consent": "UNSUBSCRIBED"}}}))
	}
	body := subscribeBody("L1", false, profiles...)
	body["data"].(map[string]any)["type"] = "profile-subscription-bulk-delete-job"
	h.must(call{method: "POST", path: "/api/profile-subscription-bulk-delete-jobs", body: body}, 400)
}

func TestProfileImportJob(t *testing.T) {
	h := newHarness(t, Config{JobDelay: 40 * time.Millisecond})
	items := []any{
		map[string]any{"type": "profile", "attributes": map[string]any{"email": "ok1@example.com", "first_name": "One"}},
		map[string]any{"type": "profile", "attributes": map[string]any{"email": "bad@example.com", "phone_number": "12345"}},
		map[string]any{"type": "profile", "attributes": map[string]any{"external_id": "ok2", "anonymous_id": "anon"}},
		map[string]any{"type": "profile", "attributes": map[string]any{"external_id": "ok3"}},
	}
	body := map[string]any{"data": map[string]any{"type": "profile-bulk-import-job",
		"attributes":    map[string]any{"profiles": map[string]any{"data": items}},
		"relationships": map[string]any{"lists": map[string]any{"data": []any{map[string]any{"type": "list", "id": "L1"}}}}}}
	a := h.must(call{method: "POST", path: "/api/profile-bulk-import-jobs", body: body}, 202)
	job := a.json(t)["data"].(map[string]any)
	attrs := job["attributes"].(map[string]any)
	if job["type"] != "profile-bulk-import-job" || attrs["status"] != "queued" || attrs["total_count"] != 4.0 {
		t.Fatalf("job: %s", a.body)
	}
	id := job["id"].(string)
	seen := map[string]bool{}
	var last map[string]any
	testutil.Eventually(t, 10*time.Second, "import job to complete", func() bool {
		a := h.must(call{method: "GET", path: "/api/profile-bulk-import-jobs/" + id}, 200)
		last = a.json(t)["data"].(map[string]any)["attributes"].(map[string]any)
		seen[last["status"].(string)] = true
		return last["status"] == "complete"
	})
	if last["completed_count"] != 2.0 || last["failed_count"] != 2.0 {
		t.Errorf("counts: %v", last)
	}
	var ptrs []string
	for _, e := range last["errors"].([]any) {
		ptrs = append(ptrs, e.(map[string]any)["source"].(map[string]any)["pointer"].(string))
	}
	want := []string{"/data/attributes/profiles/data/1/attributes/phone_number", "/data/attributes/profiles/data/2/attributes/anonymous_id"}
	if diff := cmp.Diff(want, ptrs); diff != "" {
		t.Errorf("error pointers (-want +got):\n%s", diff)
	}
	a = h.must(call{method: "GET", path: "/api/profile-bulk-import-jobs/" + id + "/import-errors"}, 200)
	if n := len(a.json(t)["data"].([]any)); n != 2 {
		t.Errorf("import-errors: %s", a.body)
	}
	// One a page: the cursor in links.next leads to the second, which has no next.
	a = h.must(call{method: "GET", path: "/api/profile-bulk-import-jobs/" + id + "/import-errors", query: "page[size]=1"}, 200)
	page := a.json(t)
	next, _ := page["links"].(map[string]any)["next"].(string)
	u, err := url.Parse(next)
	if n := len(page["data"].([]any)); n != 1 || err != nil || u.Path != "/api/profile-bulk-import-jobs/"+id+"/import-errors" {
		t.Fatalf("first page: %s", a.body)
	}
	a = h.must(call{method: "GET", path: u.Path, query: u.RawQuery}, 200)
	page = a.json(t)
	if ptr := page["data"].([]any)[0].(map[string]any)["attributes"].(map[string]any)["source"].(map[string]any)["pointer"]; ptr != want[1] || page["links"].(map[string]any)["next"] != nil {
		t.Errorf("second page: %s", a.body)
	}
	h.must(call{method: "GET", path: "/api/profile-bulk-import-jobs/" + id + "/import-errors", query: "page[size]=500"}, 400)
	st := h.sim.State()
	if len(st.Profiles) != 2 || len(st.Lists["L1"]) != 2 {
		t.Errorf("profiles %d, list %v", len(st.Profiles), st.Lists)
	}
	h.must(call{method: "GET", path: "/api/profile-bulk-import-jobs/NOPE"}, 404)
}

func TestSubscriptions(t *testing.T) {
	email := func(consent, at string) map[string]any {
		m := map[string]any{"consent": consent}
		if at != "" {
			m["consented_at"] = at
		}
		return map[string]any{"email": map[string]any{"marketing": m}}
	}
	t.Run("historical subscribe then unsubscribe", func(t *testing.T) {
		h := newHarness(t, Config{})
		h.must(call{method: "POST", path: "/api/profile-subscription-bulk-create-jobs", body: subscribeBody("L1", true,
			profileAttrs("email", "s@example.com", "phone_number", "+15005550006", "subscriptions", map[string]any{
				"email": map[string]any{"marketing": map[string]any{"consent": "SUBSCRIBED", "consented_at": "2024-01-01T00:00:00Z"}},
				"sms":   map[string]any{"marketing": map[string]any{"consent": "SUBSCRIBED", "consented_at": "2024-02-01T00:00:00Z"}}}))}, 202)
		st := h.jobsDone()
		p := st.profileBy("email", "s@example.com")
		if p == nil || p.Subscriptions.Email == nil || p.Subscriptions.SMS == nil {
			t.Fatalf("profile: %+v", p)
		}
		want := &Consent{Consent: "SUBSCRIBED", ConsentedAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), HistoricalImport: true, Method: "bulk_subscribe", ListID: "L1"}
		if diff := cmp.Diff(want, p.Subscriptions.Email.Marketing); diff != "" {
			t.Errorf("email consent (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"L1"}, p.Lists); diff != "" || len(st.Lists["L1"]) != 1 {
			t.Errorf("lists: %v %v", p.Lists, st.Lists)
		}
		body := subscribeBody("L1", false, profileAttrs("email", "s@example.com", "subscriptions", email("UNSUBSCRIBED", "")))
		body["data"].(map[string]any)["type"] = "profile-subscription-bulk-delete-job"
		h.must(call{method: "POST", path: "/api/profile-subscription-bulk-delete-jobs", body: body}, 202)
		st = h.jobsDone()
		p = st.profileBy("email", "s@example.com")
		if p.Subscriptions.Email.Marketing.Consent != "UNSUBSCRIBED" || p.Subscriptions.SMS.Marketing.Consent != "SUBSCRIBED" {
			t.Errorf("after unsubscribe: %+v", p.Subscriptions)
		}
		if len(p.Lists) != 0 || len(st.Lists["L1"]) != 0 {
			t.Errorf("still in list: %v %v", p.Lists, st.Lists)
		}
	})
	const ptr0 = "/data/attributes/profiles/data/0/attributes"
	cases := []struct {
		name       string
		historical bool
		profile    map[string]any
		pointer    string
	}{
		{"historical needs consented_at", true, profileAttrs("email", "a@example.com", "subscriptions", email("SUBSCRIBED", "")), ptr0 + "/subscriptions/email/marketing"},
		{"consented_at needs historical", false, profileAttrs("email", "a@example.com", "subscriptions", email("SUBSCRIBED", "2024-01-01T00:00:00Z")), ptr0 + "/subscriptions/email/marketing/consented_at"},
		{"consented_at in the future", true, profileAttrs("email", "a@example.com", "subscriptions", email("SUBSCRIBED", "2999-01-01T00:00:00Z")), ptr0 + "/subscriptions/email/marketing/consented_at"},
		{"email channel needs an email", false, profileAttrs("phone_number", "+15005550006", "subscriptions", email("SUBSCRIBED", "")), ptr0 + "/email"},
		{"bad phone", false, profileAttrs("phone_number", "5550006", "subscriptions", map[string]any{"sms": map[string]any{"marketing": map[string]any{"consent": "SUBSCRIBED"}}}), ptr0 + "/phone_number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			a := h.must(call{method: "POST", path: "/api/profile-subscription-bulk-create-jobs", body: subscribeBody("L1", tc.historical, tc.profile)}, 400)
			if got := a.errors(t)[0].Source.Pointer; got != tc.pointer {
				t.Errorf("pointer %q, want %q: %s", got, tc.pointer, a.body)
			}
		})
	}
}

func TestListsAndClient(t *testing.T) {
	h := newHarness(t, Config{})
	var ids []string
	for _, e := range []string{"l1@example.com", "l2@example.com"} {
		a := h.must(call{method: "POST", path: "/api/profile-import", body: importBody(profileAttrs("email", e))}, 201)
		ids = append(ids, a.json(t)["data"].(map[string]any)["id"].(string))
	}
	members := func(ids ...string) map[string]any {
		var d []any
		for _, id := range ids {
			d = append(d, map[string]any{"type": "profile", "id": id})
		}
		return map[string]any{"data": d}
	}
	h.must(call{method: "POST", path: "/api/lists/LX/relationships/profiles", body: members(ids...)}, 204)
	h.must(call{method: "DELETE", path: "/api/lists/LX/relationships/profiles", body: members(ids[0])}, 204)
	a := h.must(call{method: "POST", path: "/api/lists/LX/relationships/profiles", body: members(ids[0], "NOPE")}, 400)
	if got := a.errors(t)[0].Source.Pointer; got != "/data/1/id" {
		t.Errorf("pointer %q", got)
	}
	if diff := cmp.Diff(map[string][]string{"LX": {ids[1]}}, h.sim.State().Lists); diff != "" {
		t.Errorf("lists (-want +got):\n%s", diff)
	}

	// GET /api/profiles filters.
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{`equals(email,"l1@example.com")`, 1},
		{`any(email,["l1@example.com","l2@example.com","zz@example.com"])`, 2},
		{`equals(external_id,"none")`, 0},
	} {
		a := h.must(call{method: "GET", path: "/api/profiles", query: "filter=" + urlQuery(tc.filter)}, 200)
		if n := len(a.json(t)["data"].([]any)); n != tc.want {
			t.Errorf("%s: %d profiles, want %d", tc.filter, n, tc.want)
		}
	}
	a = h.must(call{method: "GET", path: "/api/profiles", query: "filter=" + urlQuery(`greater-than(created,1)`)}, 400)
	if a.errors(t)[0].Source.Parameter != "filter" {
		t.Errorf("filter error: %s", a.body)
	}

	// Client endpoints: 202, identifiers of an existing profile unchanged.
	h.must(call{method: "POST", path: "/client/profiles", query: "company_id=PUB",
		body: importBody(profileAttrs("email", "l1@example.com", "anonymous_id", "anon-9", "properties", map[string]any{"src": "web"}))}, 202)
	h.must(call{method: "POST", path: "/client/subscriptions", query: "company_id=PUB", body: map[string]any{"data": map[string]any{
		"type": "subscription", "attributes": map[string]any{"profile": map[string]any{"data": map[string]any{"type": "profile",
			"attributes": map[string]any{"email": "l1@example.com"}}}},
		"relationships": map[string]any{"list": map[string]any{"data": map[string]any{"type": "list", "id": "LX"}}}}}}, 202)
	h.must(call{method: "POST", path: "/client/event-bulk-create", query: "company_id=PUB", body: map[string]any{"data": bulkEntry(
		profileAttrs("anonymous_id", "anon-9"), bulkEvent("Viewed", "c1"), bulkEvent("Viewed", "c2"))}}, 202)
	st := h.sim.State()
	p := st.profileBy("email", "l1@example.com")
	if p == nil || p.AnonymousID != "anon-9" || p.Properties["src"] != "web" || p.Subscriptions.Email.Marketing.Consent != "SUBSCRIBED" {
		t.Fatalf("client profile: %+v", p)
	}
	if len(st.Events) != 2 || st.Events[0].ProfileID != p.ID || st.Events[0].Endpoint != "POST /client/event-bulk-create" {
		t.Errorf("client events: %+v", st.Events)
	}
}

func urlQuery(s string) string {
	r := strings.NewReplacer("\"", "%22", " ", "%20", "[", "%5B", "]", "%5D", ",", "%2C")
	return r.Replace(s)
}
