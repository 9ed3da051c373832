package deletion

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/store"
)

func newAPIServer(t *testing.T) (*fixture, *httptest.Server) {
	f := newFixture(t)
	mux := http.NewServeMux()
	NewAPI(f.worker, f.store, nil, slog.New(slog.DiscardHandler), "adm_token", "", "del_key").Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

func call(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, raw)
	}
	return resp.StatusCode, m
}

func TestAPIAccepts(t *testing.T) {
	f, srv := newAPIServer(t)
	status, m := call(t, srv, "POST", "/v2/regulations", "adm_token",
		`{"regulationType":"suppress_with_delete","destinationIds":["klaviyo"],"users":[{"userId":"u1","email":"a@example.com"},{"phone":"+15005550006"}]}`)
	if status != 201 || len(m["ids"].([]any)) != 2 {
		t.Fatalf("rudderstack: %d %v", status, m)
	}
	status, m = call(t, srv, "POST", "/sources/web/regulations", "del_key",
		`{"regulationType":"DELETE_INTERNAL","subjectType":"USER_ID","subjectIds":["u2"]}`)
	if status != 200 {
		t.Fatalf("segment: %d %v", status, m)
	}
	id := m["data"].(map[string]any)["regulateId"].(string)
	status, m = call(t, srv, "GET", "/regulations/"+id, "del_key", "")
	reg := m["data"].(map[string]any)["regulation"].(map[string]any)
	if status != 200 || reg["overallStatus"] != "INITIALIZED" || !reg["deletion"].(map[string]any)["localOnly"].(bool) {
		t.Fatalf("segment status: %d %v", status, m)
	}
	status, m = call(t, srv, "POST", "/admin/api/deletions", "adm_token", `{"email":"b@example.com","origin":"cli"}`)
	if status != 201 || m["deletion"].(map[string]any)["origin"] != "cli" {
		t.Fatalf("admin: %d %v", status, m)
	}
	ds, _ := f.store.ListDeletions(t.Context(), store.DeletionQuery{})
	if len(ds) != 4 || ds[3].Origin != "rudderstack" || ds[3].Subject.Email != "a@example.com" || ds[3].Dests[0] != "klaviyo" {
		t.Errorf("stored: %+v", ds)
	}
	f.worker.RunOnce(t.Context())
	status, m = call(t, srv, "GET", "/regulations/"+id, "del_key", "")
	if reg := m["data"].(map[string]any)["regulation"].(map[string]any); status != 200 || reg["overallStatus"] != "FINISHED" {
		t.Errorf("after the worker ran: %v", m)
	}
	if status, m = call(t, srv, "GET", "/admin/api/deletions?state=done", "adm_token", ""); status != 200 || len(m["deletions"].([]any)) != 4 {
		t.Errorf("list done: %d %v", status, m)
	}
}

func TestAPIRejects(t *testing.T) {
	f, srv := newAPIServer(t)
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		want                            string
	}{
		{"no token", "POST", "/v2/regulations", "", `{}`, 401, "Authorization"},
		{"wrong token", "POST", "/admin/api/deletions", "nope", `{"userId":"u"}`, 401, "Authorization"},
		{"empty token config is not a token", "POST", "/admin/api/deletions", " ", `{"userId":"u"}`, 401, "Authorization"},
		{"not JSON", "POST", "/v2/regulations", "adm_token", `{`, 400, "body"},
		{"no regulationType", "POST", "/v2/regulations", "adm_token", `{"users":[{"userId":"u"}]}`, 400, "regulationType: required"},
		{"unknown type", "POST", "/v2/regulations", "adm_token", `{"regulationType":"erase","users":[{"userId":"u"}]}`, 400, `want "suppress" or "suppress_with_delete"`},
		{"suppress empty user", "POST", "/v2/regulations", "adm_token", `{"regulationType":"suppress","users":[{}]}`, 400, "users[0]"},
		{"no users", "POST", "/v2/regulations", "adm_token", `{"regulationType":"suppress_with_delete","users":[]}`, 400, "users: want 1 to 5000"},
		{"empty user", "POST", "/v2/regulations", "adm_token", `{"regulationType":"suppress_with_delete","users":[{"userId":"u"},{}]}`, 400, "users[1]: one of userId, email or phone"},
		{"bad email", "POST", "/v2/regulations", "adm_token", `{"regulationType":"suppress_with_delete","users":[{"email":"nope"}]}`, 400, "users[0]: email"},
		{"unknown destination", "POST", "/v2/regulations", "adm_token", `{"regulationType":"suppress_with_delete","destinationIds":["braze"],"users":[{"userId":"u"}]}`, 400, `"braze"`},
		{"not an object", "POST", "/v2/regulations", "adm_token", `[]`, 400, "body: want a JSON object, got an array"},
		{"userId a number", "POST", "/v2/regulations", "adm_token", `{"regulationType":"suppress_with_delete","users":[{"userId":5}]}`, 400, "users.userId: want a string, got a number"},
		{"users not a list", "POST", "/v2/regulations", "adm_token", `{"regulationType":"suppress_with_delete","users":"u"}`, 400, "users: want a list, got a string"},
		{"destinationIds a string", "POST", "/v2/regulations", "adm_token", `{"regulationType":"suppress_with_delete","destinationIds":"klaviyo","users":[{"userId":"u"}]}`, 400, "destinationIds: want a list, got a string"},
		{"unknown destination names the field", "POST", "/v2/regulations", "adm_token", `{"regulationType":"suppress_with_delete","destinationIds":["braze"],"users":[{"userId":"u"}]}`, 400, `destinationIds: destination "braze"`},
		{"admin unknown destination names the field", "POST", "/admin/api/deletions", "adm_token", `{"userId":"u","destinations":["braze"]}`, 400, `destinations: destination "braze"`},
		{"segment ids not a list", "POST", "/regulations", "adm_token", `{"regulationType":"DELETE_ONLY","subjectType":"USER_ID","subjectIds":"u"}`, 400, "subjectIds: want a list, got a string"},
		{"segment id a number", "POST", "/regulations", "adm_token", `{"regulationType":"DELETE_ONLY","subjectType":"USER_ID","subjectIds":[5]}`, 400, "subjectIds: want a string, got a number"},
		{"segment empty id says userId", "POST", "/regulations", "adm_token", `{"regulationType":"DELETE_ONLY","subjectType":"USER_ID","subjectIds":[""]}`, 400, "subjectIds[0]: empty; want a userId"},
		// Checked when asked, not found failing later in the worker.
		{"phone invalid for the destination", "POST", "/v2/regulations", "adm_token", `{"regulationType":"suppress_with_delete","users":[{"userId":"u"},{"phone":"030"}]}`, 400, `users[1].phone: "030" is not a valid phone number for destination klaviyo`},
		{"admin phone invalid", "POST", "/admin/api/deletions", "adm_token", `{"phone":"12"}`, 400, `phone: "12" is not a valid phone number for destination klaviyo`},
		{"segment unknown type", "POST", "/regulations", "adm_token", `{"regulationType":"SUPPRESS","subjectType":"USER_ID","subjectIds":["u"]}`, 400, "UNSUPPRESS"},
		{"cancel unknown", "DELETE", "/v2/regulations/sup_99", "adm_token", ``, 404, "no suppression"},
		{"cancel bad id", "DELETE", "/admin/api/suppressions/7", "adm_token", ``, 400, "sup_3"},
		{"remove nobody", "POST", "/admin/api/suppressions/remove", "adm_token", `{}`, 400, "one of userId"},
		{"list bad page", "GET", "/admin/api/suppressions?before=x", "adm_token", ``, 400, "before"},
		{"status of unknown suppression", "GET", "/regulations/sup_5", "adm_token", ``, 404, "not found"},
		{"segment object id", "POST", "/regulations", "adm_token", `{"regulationType":"DELETE_ONLY","subjectType":"OBJECT_ID","subjectIds":["u"]}`, 400, "subjectType"},
		{"segment empty id", "POST", "/regulations", "adm_token", `{"regulationType":"DELETE_ONLY","subjectType":"USER_ID","subjectIds":[" "]}`, 400, "subjectIds[0]"},
		{"admin unknown field", "POST", "/admin/api/deletions", "adm_token", `{"user":"u"}`, 400, "unknown field"},
		{"bad id", "GET", "/admin/api/deletions/abc", "adm_token", ``, 400, "del_12"},
		{"unknown id", "GET", "/regulations/del_99", "adm_token", ``, 404, "not found"},
		{"bad state", "GET", "/admin/api/deletions?state=gone", "adm_token", ``, 400, "state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := call(t, srv, tc.method, tc.path, tc.token, tc.body)
			msg, _ := m["error"].(string)
			if status != tc.status || !strings.Contains(msg, tc.want) {
				t.Errorf("%d %q, want %d containing %q", status, msg, tc.status, tc.want)
			}
		})
	}
	if ds, _ := f.store.ListDeletions(t.Context(), store.DeletionQuery{}); len(ds) != 0 {
		t.Errorf("rejected calls stored %d requests", len(ds))
	}
	if ss, _ := f.store.ListSuppressions(t.Context(), store.SuppressionQuery{}); len(ss) != 0 {
		t.Errorf("rejected calls stored %d suppressions", len(ss))
	}
}
