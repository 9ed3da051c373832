package console

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kdest"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
	"github.com/relaycdp/relay/internal/testutil"
	"github.com/relaycdp/relay/internal/webhook"
)

func TestAuthRequired(t *testing.T) {
	tc := newTestConsole(t)
	anon := tc.anon(t)
	pages := []string{"/admin/", "/admin/sources", "/admin/destinations/klaviyo", "/admin/tester",
		"/admin/log", "/admin/deadletters", "/admin/overview/stats", "/admin/tester/status?dest=klaviyo&id=m-1", "/admin/nope"}
	for _, p := range pages {
		t.Run("GET "+p, func(t *testing.T) {
			resp, body := anon.get(p)
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/login?next=") {
				t.Errorf("status %d location %q, want 303 to the login form", resp.StatusCode, resp.Header.Get("Location"))
			}
			for _, leak := range []string{"m-1", "jane@example.com", "web", "Signed Up"} {
				if strings.Contains(body, leak) && !strings.Contains(p, leak) {
					t.Errorf("body shows %q without login", leak)
				}
			}
		})
	}
	posts := []string{"/admin/sources", "/admin/sources/keys", "/admin/keys/revoke", "/admin/destinations/klaviyo",
		"/admin/destinations/klaviyo/test", "/admin/tester/transform", "/admin/tester/send", "/admin/deadletters/replay", "/admin/logout"}
	for _, p := range posts {
		t.Run("POST "+p, func(t *testing.T) {
			resp, _ := anon.post(p, url.Values{"name": {"evil"}, "id": {"5"}, "dest": {"klaviyo"}, "event": {`{"type":"track","event":"x","userId":"u"}`}}, nil)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", resp.StatusCode)
			}
		})
	}
	if len(tc.q.msgs) > 0 || len(tc.st.sources) != 1 || !tc.st.dead[0].ReplayedAt.IsZero() {
		t.Error("an unauthenticated POST changed something")
	}

	t.Run("htmx request", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, tc.srv.URL+"/admin/overview/stats", nil)
		req.Header.Set("HX-Request", "true")
		resp, _ := anon.do(req)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("HX-Redirect") != "/admin/login" {
			t.Errorf("status %d HX-Redirect %q", resp.StatusCode, resp.Header.Get("HX-Redirect"))
		}
	})
	t.Run("bearer", func(t *testing.T) {
		for _, tt := range []struct {
			auth string
			want int
		}{
			{"Bearer " + testToken, http.StatusOK},
			{"Bearer wrong", http.StatusUnauthorized},
			{"Bearer " + testToken + "x", http.StatusUnauthorized},
			// Basic is a proxy's scheme, not an admin token: no session, so login.
			{"Basic " + testToken, http.StatusSeeOther},
		} {
			req, _ := http.NewRequest(http.MethodGet, tc.srv.URL+"/admin/log", nil)
			req.Header.Set("Authorization", tt.auth)
			resp, body := anon.do(req)
			if resp.StatusCode != tt.want {
				t.Errorf("%.12s…: status %d, want %d", tt.auth, resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusOK && !strings.Contains(body, "m-1") {
				t.Error("bearer request does not see the log")
			}
		}
	})
	t.Run("static assets need no login and hold no secrets", func(t *testing.T) {
		for _, f := range []string{"htmx.min.js", "console.js", "console.css"} {
			resp, body := anon.get("/admin/static/" + f)
			if resp.StatusCode != http.StatusOK || len(body) == 0 {
				t.Errorf("%s: %d", f, resp.StatusCode)
			}
		}
	})
}

func TestLogin(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.anon(t)
	resp, body := s.post("/admin/login", url.Values{"token": {"nope"}, "next": {"/admin/log"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not the admin token") || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if strings.Contains(body, "nope") {
		t.Error("the submitted token is echoed")
	}
	resp, _ = s.post("/admin/login", url.Values{"token": {testToken}, "next": {"/admin/log"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/log" {
		t.Fatalf("right token: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	ck := resp.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/admin/" || strings.Contains(ck[0].Value, testToken) {
		t.Errorf("cookie %+v", ck)
	}
	if resp, body := s.get("/admin/log"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "m-1") {
		t.Errorf("after login: %d", resp.StatusCode)
	}
	t.Run("redirect stays in the console", func(t *testing.T) {
		for _, next := range []string{"https://evil.example/", "//evil.example/admin/", "/elsewhere"} {
			resp, _ := tc.anon(t).post("/admin/login", url.Values{"token": {testToken}, "next": {next}}, nil)
			if loc := resp.Header.Get("Location"); loc != "/admin/" {
				t.Errorf("next=%q redirects to %q", next, loc)
			}
		}
	})
	t.Run("logout", func(t *testing.T) {
		s.get("/admin/")
		resp, _ := s.post("/admin/logout", s.form(), nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		if resp, _ := s.get("/admin/log"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("after logout: %d, want a redirect to login", resp.StatusCode)
		}
	})
	t.Run("too many failures", func(t *testing.T) {
		a := tc.anon(t)
		var last int
		for range loginFailures + 1 {
			resp, _ := a.post("/admin/login", url.Values{"token": {"bad"}}, nil)
			last = resp.StatusCode
		}
		if last != http.StatusTooManyRequests {
			t.Errorf("after %d failures: %d, want 429", loginFailures+1, last)
		}
		if resp, _ := a.post("/admin/login", url.Values{"token": {testToken}}, nil); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("right token while locked: %d, want 429", resp.StatusCode)
		}
	})
}

func TestCSRF(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	create := func(name string, form url.Values, hdr map[string]string) int {
		form.Set("name", name)
		resp, _ := s.post("/admin/sources", form, hdr)
		return resp.StatusCode
	}
	tests := []struct {
		name string
		form url.Values
		hdr  map[string]string
		want int
	}{
		{"no token", url.Values{}, nil, http.StatusForbidden},
		{"wrong token", url.Values{"csrf": {"x" + s.csrf}}, nil, http.StatusForbidden},
		{"token from another session", url.Values{"csrf": {tc.login(t).csrf}}, nil, http.StatusForbidden},
		{"right token, other origin", url.Values{"csrf": {s.csrf}}, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"right token, cross-site fetch", url.Values{"csrf": {s.csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"right token in form", url.Values{"csrf": {s.csrf}}, map[string]string{"Origin": tc.srv.URL}, http.StatusSeeOther},
		{"right token in header", url.Values{}, map[string]string{csrfHeader: s.csrf, "Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
		{"bearer needs no token", url.Values{}, map[string]string{"Authorization": "Bearer " + testToken}, http.StatusSeeOther},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "src" + string(rune('a'+i))
			if got := create(name, tt.form, tt.hdr); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
			srcs, _ := tc.st.Sources(t.Context())
			created := false
			for _, s := range srcs {
				created = created || s.Name == name
			}
			if created != (tt.want == http.StatusSeeOther) {
				t.Errorf("source created = %v", created)
			}
		})
	}
}

func TestSecretsNeverShown(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	secrets := map[string]string{"private key": testPrivate, "public key": testPublic, "admin token": testToken, "write key": testWK}
	check := func(t *testing.T, what, body string) {
		t.Helper()
		for name, sec := range secrets {
			if strings.Contains(body, sec) {
				t.Errorf("%s shows the %s", what, name)
			}
		}
	}
	for _, p := range []string{"/admin/", "/admin/sources", "/admin/destinations/klaviyo", "/admin/tester", "/admin/log", "/admin/deadletters", "/admin/login"} {
		_, body := s.get(p)
		check(t, p, body)
	}
	_, body := s.get("/admin/destinations/klaviyo")
	if !strings.Contains(body, store.MaskKey(testPrivate)) {
		t.Error("settings page does not show the masked private key")
	}
	if strings.Contains(body, "config-hash") {
		t.Error("settings page shows the internal config-hash row")
	}

	t.Run("new write key shown once", func(t *testing.T) {
		_, body := s.post("/admin/sources/keys", s.form("source", "web"), nil)
		newKey := tc.st.sources[0].WriteKeys[1].Key
		if strings.Count(body, newKey) < 1 {
			t.Fatal("the new key is not shown right after creation")
		}
		check(t, "key creation", body)
		for _, want := range []string{"writeKey: '" + newKey + "', cdnURL: 'http://", "rudderanalytics.load('" + newKey + "', 'http://", "destSDKBaseURL: 'http://"} {
			if !strings.Contains(body, want) {
				t.Errorf("the browser snippets lack %q", want)
			}
		}
		_, body = s.get("/admin/sources")
		if strings.Contains(body, newKey) {
			t.Error("the new key is shown again on the next page")
		}
		if !strings.Contains(body, store.MaskKey(newKey)) {
			t.Error("the new key is not listed masked")
		}
	})
	t.Run("tester masks the keys in requests", func(t *testing.T) {
		// An identify with only an anonymousId goes to /client/profiles with
		// the public key as company_id.
		_, body := s.post("/admin/tester/transform", s.form("dest", "klaviyo", "settings", `{"fallbackOnAnonymousId": true}`,
			"event", `{"type":"identify","anonymousId":"a-1","messageId":"m-anon","traits":{"plan":"pro"}}`), nil)
		check(t, "tester output", body)
		if !strings.Contains(body, "/client/profiles") {
			t.Fatalf("expected a client request: %s", body)
		}
	})
	t.Run("test connection never echoes the key", func(t *testing.T) {
		typed := "pk_typed_key_abcdefghijklmnop0123"
		tc.ping.fail = "Klaviyo refused the private key with 401 (not_authenticated: bad key " + typed + ")."
		_, body := s.post("/admin/destinations/klaviyo/test", s.form("privateApiKey", typed), map[string]string{"HX-Request": "true"})
		if strings.Contains(body, typed) || !strings.Contains(body, "refused") || !strings.Contains(body, "401") {
			t.Errorf("test connection answer: %s", body)
		}
		tc.ping.fail = ""
		_, body = s.post("/admin/destinations/klaviyo/test", s.form(), map[string]string{"HX-Request": "true"})
		if !strings.Contains(body, "Connected") || !strings.Contains(body, "the saved settings") {
			t.Errorf("test connection with the saved key: %s", body)
		}
		if got := tc.ping.keys; len(got) != 2 || got[0] != typed || got[1] != testPrivate {
			t.Errorf("pinged with %d keys; want the typed one, then the saved one", len(got))
		}
		check(t, "test connection", body)
	})
	if strings.Contains(tc.logBuf.String(), testToken) || strings.Contains(tc.logBuf.String(), testPrivate) {
		t.Error("the log contains a secret")
	}
}

// settingsForm is a complete settings form as the page submits it.
func (s *testClient) settingsForm(kv ...string) url.Values {
	f := s.form("version", "1", "listId", "L1", "listMode", "subscribe", "confirmOptin", "on", "consent", "email",
		"ecommerceNames", "klaviyo", "revision", klaviyo.DefaultSettings().Revision)
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

func TestSettingsValidation(t *testing.T) {
	tests := []struct {
		name, field, value string
		want               string // in the error next to field
	}{
		{"unknown region", "defaultPhoneCountry", "ZZ", "unknown region"},
		{"unknown channel", "consent", "email, fax", "unknown channel"},
		{"bad name map line", "eventNameMap", "Signed Up", "line 1"},
		{"name map JSON not strings", "eventNameMap", `{"A": 1}`, "want a metric name"},
		{"bad revision", "revision", "latest", "revision date"},
		{"list mode", "listMode", "sometimes", `want &#34;subscribe&#34; or &#34;add&#34;`},
		{"key with space", "privateApiKey", "pk_has space", "white space"},
		{"device mode", "deviceMode", "sometimes", `want &#34;off&#34;, &#34;on&#34; or &#34;both&#34;`},
		{"onsite script URL", "onsiteScriptUrl", "klaviyo.js", "absolute http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestConsole(t)
			s := tc.login(t)
			resp, body := s.post("/admin/destinations/klaviyo", s.settingsForm(tt.field, tt.value), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			i := strings.Index(body, `id="error-`+tt.field+`"`)
			if i < 0 {
				t.Fatalf("no error next to %s:\n%s", tt.field, body)
			}
			if msg := body[i:min(len(body), i+200)]; !strings.Contains(msg, tt.want) {
				t.Errorf("error next to %s = %q, want %q", tt.field, msg, tt.want)
			}
			if !strings.Contains(body, "Not saved") {
				t.Error("no page-level 'Not saved'")
			}
			if tc.st.settings["klaviyo"].Version != 1 {
				t.Error("invalid settings were saved")
			}
			if strings.Contains(body, testPrivate) || (tt.field == "privateApiKey" && strings.Contains(body, tt.value)) {
				t.Error("a key is echoed back")
			}
		})
	}
}

func TestSettingsSave(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	saved := func() klaviyo.Settings {
		st, err := klaviyo.ParseSettings(tc.st.settings["klaviyo"].Settings)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	resp, _ := s.post("/admin/destinations/klaviyo", s.settingsForm("eventNameMap", "Signed Up => Account Created\nA=>B",
		"sendPageAsTrack", "on", "eventAllowlist", "Signed Up\n\nOrder Completed\n", "consent", "email, sms"), nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/destinations/klaviyo?saved=2" {
		t.Fatalf("save: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	got := saved()
	want := klaviyo.DefaultSettings()
	want.PrivateAPIKey, want.PublicAPIKey, want.ListID = testPrivate, testPublic, "L1"
	want.EventNameMap = map[string]string{"Signed Up": "Account Created", "A": "B"}
	want.SendPageAsTrack = true
	want.EventAllowlist = []string{"Signed Up", "Order Completed"}
	want.Consent = []string{"email", "sms"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(klaviyo.Settings{})); diff != "" {
		t.Errorf("saved settings (-want +got):\n%s", diff)
	}
	_, body := s.get("/admin/destinations/klaviyo?saved=2")
	if !strings.Contains(body, "Saved (version 2)") || !strings.Contains(body, "Signed Up =&gt; Account Created") {
		t.Error("saved page does not show the notice or the map")
	}

	t.Run("stale version is refused", func(t *testing.T) {
		_, body := s.post("/admin/destinations/klaviyo", s.settingsForm("version", "1", "listId", "L2"), nil)
		if !strings.Contains(body, "changed elsewhere") || saved().ListID != "L1" {
			t.Errorf("stale save not refused: %s", body)
		}
	})
	t.Run("new key replaces, clear removes", func(t *testing.T) {
		s.post("/admin/destinations/klaviyo", s.settingsForm("version", "2", "privateApiKey", "pk_new_key_0123456789abcdef"), nil)
		if got := saved().PrivateAPIKey; got != "pk_new_key_0123456789abcdef" {
			t.Errorf("private key %q after entering a new one", store.MaskKey(got))
		}
		s.post("/admin/destinations/klaviyo", s.settingsForm("version", "3", "publicApiKey.clear", "on"), nil)
		if got := saved(); got.PublicAPIKey != "" || got.PrivateAPIKey == "" {
			t.Errorf("after clearing the public key: public %q, private set %v", got.PublicAPIKey, got.PrivateAPIKey != "")
		}
	})
	t.Run("unknown destination", func(t *testing.T) {
		if resp, _ := s.get("/admin/destinations/config-hash:klaviyo"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
}

func TestTesterTransformIsRelayTransform(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	event := `{"type":"track","userId":"u-1","event":"Order Completed","messageId":"m-o","properties":{"order_id":"o-1","revenue":25,"products":[{"product_id":"p-1","price":12.5,"quantity":2}]},"context":{"traits":{"email":"jane@example.com"}}}`
	settingsJSON := `{"sendPlacedOrderAsOrderCompleted": true}`
	_, body := s.post("/admin/tester/transform", s.form("dest", "klaviyo", "event", event, "settings", settingsJSON), nil)

	st, err := klaviyo.ParseSettings([]byte(settingsJSON))
	if err != nil {
		t.Fatal(err)
	}
	st.PrivateAPIKey, st.PublicAPIKey = testPrivate, testPublic
	outs, err := klaviyo.Transform([]byte(event), spec.Options{MaxEventBytes: 32 << 10}, st)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := klaviyo.MarshalOutcomes(outs)
	if !strings.Contains(body, html.EscapeString(string(want))) {
		t.Errorf("tester output is not relay transform's:\nwant %s\nbody %s", want, body)
	}
	if !strings.Contains(body, "Order Completed") || strings.Contains(body, `"metric_name": "Placed Order"`) {
		t.Error("the edited settings were not used")
	}

	t.Run("bad settings", func(t *testing.T) {
		_, body := s.post("/admin/tester/transform", s.form("dest", "klaviyo", "event", event, "settings", `{"listMode": "x"}`), nil)
		if !strings.Contains(body, `id="settings-error"`) || !strings.Contains(body, "listMode") {
			t.Errorf("no settings error: %s", body)
		}
	})
	t.Run("mapping error", func(t *testing.T) {
		_, body := s.post("/admin/tester/transform", s.form("dest", "klaviyo", "event", `{"type":"group","userId":"u","messageId":"g-1"}`), nil)
		if !strings.Contains(body, "badge bad") {
			t.Errorf("group without groupId shows no error: %s", body)
		}
	})
	t.Run("unreadable input", func(t *testing.T) {
		_, body := s.post("/admin/tester/transform", s.form("dest", "klaviyo", "event", `{"type":`), nil)
		if !strings.Contains(body, `id="input-error"`) {
			t.Errorf("no input error: %s", body)
		}
	})
}

func TestTesterSend(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	event := `[{"type":"track","userId":"u-2","event":"Signed Up","messageId":"m-send"},{"type":"track","messageId":"m-bad"}]`
	_, body := s.post("/admin/tester/send", s.form("dest", "klaviyo", "event", event), map[string]string{"HX-Request": "true"})
	if len(tc.q.msgs) != 1 {
		t.Fatalf("enqueued %d messages, want 1", len(tc.q.msgs))
	}
	m := tc.q.msgs[0]
	m.Payload = nil
	if diff := cmp.Diff(queue.Message{Source: testerSource, Dest: "klaviyo", Key: "u-2", MessageID: "m-send", ReceivedAt: testNow}, m); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	if !strings.Contains(body, "rejected") || !strings.Contains(body, "/admin/tester/status?dest=klaviyo&amp;id=m-send") {
		t.Errorf("send answer: %s", body)
	}
	_, body = s.get("/admin/tester/status?dest=klaviyo&id=m-send")
	if !strings.Contains(body, "queued") || !strings.Contains(body, "hx-get") {
		t.Errorf("not yet delivered: %s", body)
	}
	_, body = s.get("/admin/tester/status?dest=klaviyo&id=m-1")
	if !strings.Contains(body, "delivered") || strings.Contains(body, "hx-get") {
		t.Errorf("delivered: %s", body)
	}
	if _, body := s.post("/admin/tester/send", s.form("dest", "nowhere", "event", event), nil); !strings.Contains(body, "No destination") {
		t.Errorf("unknown destination: %s", body)
	}
}

func TestReplayDeadLetter(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	_, body := s.get("/admin/deadletters")
	if !strings.Contains(body, "m-dead") || !strings.Contains(body, "group needs a groupId") {
		t.Fatalf("dead letters page: %s", body)
	}
	resp, _ := s.post("/admin/deadletters/replay", s.form("id", "5"), nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/deadletters?done=1" {
		t.Fatalf("replay: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	want := []queue.Message{{Source: "web", Dest: "klaviyo", Key: "u-7", MessageID: "m-dead", Payload: tc.st.dead[0].Payload, ReceivedAt: testNow}}
	if diff := cmp.Diff(want, tc.q.msgs); diff != "" {
		t.Errorf("enqueued (-want +got):\n%s", diff)
	}
	resp, _ = s.post("/admin/deadletters/replay", s.form("id", "5"), nil)
	if loc := resp.Header.Get("Location"); loc != "/admin/deadletters?none=1" || len(tc.q.msgs) != 1 {
		t.Errorf("second replay: %q, %d messages", loc, len(tc.q.msgs))
	}

	t.Run("enqueue failure marks nothing", func(t *testing.T) {
		tc := newTestConsole(t)
		s := tc.login(t)
		tc.q.err = queue.ErrClosed
		resp, body := s.post("/admin/deadletters/replay", s.form("dest", "klaviyo"), nil)
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "queue closed") {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
		if !tc.st.dead[0].ReplayedAt.IsZero() {
			t.Error("dead letter marked replayed although enqueue failed")
		}
	})
}

func TestLogSearch(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	for _, q := range []string{"m-1", "u-1", "Jane@Example.com"} {
		_, body := s.get("/admin/log?q=" + url.QueryEscape(q))
		if !strings.Contains(body, `data-message-id="m-1"`) {
			t.Errorf("search %q does not find m-1", q)
		}
		if tc.st.lastQ.Text != q {
			t.Errorf("query text %q, want %q", tc.st.lastQ.Text, q)
		}
	}
	_, body := s.get("/admin/log?q=nobody")
	if !strings.Contains(body, "Nothing matches") {
		t.Error("empty search result not said")
	}
	_, body = s.get("/admin/log?status=bogus")
	if !strings.Contains(body, "Unknown status") {
		t.Error("bogus status accepted")
	}
}

func TestOverview(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	_, body := s.get("/admin/")
	for _, want := range []string{"POST /api/event-bulk-create-jobs", `id="tile-depth">7<`, "1m 30s", "<svg", `id="tile-dead"`} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, tc.srv.URL+"/admin/overview/stats", nil)
	req.Header.Set("HX-Request", "true")
	resp, body := s.do(req)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "<html") || !strings.Contains(body, `id="stats"`) {
		t.Errorf("stats fragment: %d", resp.StatusCode)
	}
}

func TestRates(t *testing.T) {
	at := func(min int, received, delivered float64) sample {
		s := sample{At: testNow.Truncate(time.Minute).Add(time.Duration(min) * time.Minute)}
		s.Received, s.Delivered = received, delivered
		return s
	}
	atSec := func(min, sec int, received, delivered float64) sample {
		s := at(min, received, delivered)
		s.At = s.At.Add(time.Duration(sec) * time.Second)
		return s
	}
	tests := []struct {
		name    string
		samples []sample
		want    []float64 // In per minute
	}{
		{"one sample, no rate", []sample{at(0, 5, 0)}, nil},
		{"first minute against the first sample", []sample{at(0, 5, 0), atSec(0, 40, 9, 0)}, []float64{4}},
		{"consecutive minutes", []sample{at(0, 0, 0), at(1, 10, 5), at(2, 25, 20)}, []float64{10, 15}},
		{"a gap is averaged", []sample{at(0, 0, 0), at(4, 40, 0)}, []float64{10}},
		{"the last sample of a minute wins", []sample{at(0, 0, 0), at(1, 3, 0), at(1, 8, 0)}, []float64{8}},
		{"counter reset is not negative", []sample{at(0, 50, 0), at(1, 2, 0)}, []float64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newSampler()
			for _, s := range tt.samples {
				p.add(s)
			}
			var got []float64
			for _, r := range rates(p.snapshot()) {
				got = append(got, r.In)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rates (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("ring keeps an hour", func(t *testing.T) {
		p := newSampler()
		for i := range 200 {
			p.add(at(i, float64(i), 0))
		}
		if _, ring := p.snapshot(); len(ring) > ringMinutes+2 {
			t.Errorf("ring holds %d samples", len(ring))
		}
	})
}

func TestSourcesCreateAndRevoke(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	if _, body := s.post("/admin/sources", s.form("name", "web"), nil); !strings.Contains(body, "already exists") {
		t.Error("duplicate source accepted")
	}
	if _, body := s.post("/admin/sources", s.form("name", " "), nil); !strings.Contains(body, "Give the source a name") {
		t.Error("empty name accepted")
	}
	resp, _ := s.post("/admin/sources", s.form("name", "ios"), nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	_, body := s.get("/admin/sources")
	id := tc.keyIDs.id(testWK)
	if !strings.Contains(body, `value="`+id+`"`) {
		t.Fatal("revoke form does not name the key by its id")
	}
	resp, _ = s.post("/admin/keys/revoke", s.form("key", id), nil)
	if resp.StatusCode != http.StatusSeeOther || tc.st.sources[0].WriteKeys[0].RevokedAt.IsZero() {
		t.Errorf("revoke: %d", resp.StatusCode)
	}
	if _, body := s.post("/admin/keys/revoke", s.form("key", testWK), nil); !strings.Contains(body, "No such write key") {
		t.Error("revoke accepted a raw key instead of its id")
	}
}

// Pasting a RudderStack export selects the rudderstack preset, says so,
// and keeps the saved private key; the page shows what the preset implies.
func TestSettingsImportSelectsPreset(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	resp, _ := s.post("/admin/destinations/klaviyo", s.settingsForm("import",
		`{"publicApiKey":"AbC123","listId":"XUepkK","eventFilteringOption":"disable","apiVersion":"v2"}`), nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "imported=1") {
		t.Fatalf("import: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	st, err := klaviyo.ParseSettings(tc.st.settings["klaviyo"].Settings)
	if err != nil {
		t.Fatal(err)
	}
	if st.Compat != klaviyo.CompatRudderStack || st.ListMode != klaviyo.ListModeAdd || st.PrivateAPIKey != testPrivate || st.ListID != "XUepkK" {
		t.Errorf("imported settings = %+v", st.Redacted())
	}
	_, body := s.get(resp.Header.Get("Location"))
	for _, want := range []string{"settings were imported", `id="compat-preset"`, "Compatibility preset: RudderStack", "listMode: add", "fallbackOnAnonymousId: true"} {
		if !strings.Contains(body, want) {
			t.Errorf("settings page lacks %q", want)
		}
	}
	if strings.Contains(body, testPrivate) {
		t.Error("settings page shows the private key")
	}
	if _, body := s.post("/admin/destinations/klaviyo", s.settingsForm("import", `{"listMode":"sometimes"}`), nil); !strings.Contains(body, "Not imported") {
		t.Error("a bad import is not reported")
	}
}

// Picking another preset in the form applies its defaults to the
// settings the user left as they were; a field the user changed wins.
func TestSettingsFormPresetChange(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	resp, _ := s.post("/admin/destinations/klaviyo", s.settingsForm("compat", "rudderstack", "sendPageAsTrack", "on"), nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	st, err := klaviyo.ParseSettings(tc.st.settings["klaviyo"].Settings)
	if err != nil {
		t.Fatal(err)
	}
	if st.Compat != klaviyo.CompatRudderStack || st.ListMode != klaviyo.ListModeAdd || !st.FallbackOnAnonymousID || st.UserIDProperty != "_id" || !st.SendPageAsTrack {
		t.Errorf("settings after the preset change = %+v", st.Redacted())
	}
}

func TestSettingErrors(t *testing.T) {
	s := klaviyo.Settings{ListMode: "x", EcommerceNames: "y", Revision: "z", Compat: klaviyo.CompatRelay, UserIDProperty: "id"}
	_, err := kdest.Type().Parse(mustJSON(t, s))
	got := destination.SettingsErrors(err)
	var names []string
	for _, e := range got {
		names = append(names, e.Setting)
	}
	if diff := cmp.Diff([]string{"listMode", "ecommerceNames", "revision"}, names); diff != "" {
		t.Errorf("settings errors (-want +got):\n%s", diff)
	}
	raw, errs := formToSettings(kdest.Type(), map[string][]string{"eventNameMap": {"x"}}, klaviyo.Settings{PrivateAPIKey: "pk_old"})
	if errs["eventNameMap"] == "" {
		t.Error("bad name map line gives no field error")
	}
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	if doc["privateApiKey"] != "pk_old" {
		t.Errorf("empty secret field does not keep the key: %v", doc["privateApiKey"])
	}
}

func TestSamplesAreValidEvents(t *testing.T) {
	ss := samples(testNow, `List "1"`)
	if len(ss) != 5 {
		t.Fatalf("%d samples", len(ss))
	}
	for _, s := range ss {
		b, err := spec.Parse([]byte(s.JSON), spec.Options{})
		if err != nil {
			t.Errorf("%s: %v", s.ID, err)
			continue
		}
		if it := b.Items[0]; it.Err != nil || !strings.HasPrefix(it.Event.MessageID, "console-"+s.ID+"-") {
			t.Errorf("%s: %+v", s.ID, it.Err)
		}
	}
}

func TestCharts(t *testing.T) {
	start := testNow.Truncate(time.Minute)
	var ring []sample
	for i := range 10 {
		s := sample{At: start.Add(time.Duration(i) * time.Minute), HasGauges: true, Depth: int64(i)}
		s.Minute = s.At
		s.Received = float64(i * 10)
		ring = append(ring, s)
	}
	charts := buildCharts(start.Add(9*time.Minute+30*time.Second), ring, rates(nil, ring))
	if len(charts) != 3 {
		t.Fatalf("%d charts", len(charts))
	}
	in, depth := charts[0].Series[0], charts[1].Series[0]
	if len(in.Dots) != 9 || len(depth.Dots) != 10 {
		t.Errorf("points: in %d (want 9 rates), depth %d (want 10 samples)", len(in.Dots), len(depth.Dots))
	}
	if charts[0].Max != "10" || in.Last != "10" || depth.Last != "9" {
		t.Errorf("max %q, last in %q, last depth %q", charts[0].Max, in.Last, depth.Last)
	}
	for _, p := range append(in.Dots, depth.Dots...) {
		if p.X < padL || p.X > chartW-padR || p.Y < padT || p.Y > chartH-padB {
			t.Errorf("point %+v outside the plot", p)
		}
	}
	if last := depth.Dots[len(depth.Dots)-1]; last.X != chartW-padR || last.Y != padT+(chartH-padT-padB)*0.1 {
		t.Errorf("newest depth point %+v, want at the right edge, 9 of 10", last)
	}
}

// The background sampler records the gauges without anyone opening the
// overview, and stops with its context.
func TestRunSampler(t *testing.T) {
	tc := newTestConsole(t)
	if _, ring := tc.samples.snapshot(); len(ring) > 0 && ring[len(ring)-1].HasGauges {
		t.Fatal("a gauge sample exists before the sampler ran")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tc.RunSampler(ctx, time.Millisecond) }()
	testutil.Eventually(t, 5*time.Second, "a sample recorded by the sampler", func() bool {
		_, ring := tc.samples.snapshot()
		return len(ring) > 0 && ring[len(ring)-1].HasGauges
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const testHookSecret = "hook-signing-secret-0123456789abcdef"

// A second destination type gets its form, save, test connection and
// event tester from its registered Type alone.
func TestWebhookDestinationPages(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	_, body := s.get("/admin/destinations/hook")
	for _, want := range []string{"Webhook destination: hook", `id="f-url"`, `value="https://hooks.example/in"`, `type="password" id="f-signingSecret"`,
		"X-Team =&gt; growth", "Where events are POSTed", `id="f-mode"`} {
		if !strings.Contains(body, want) {
			t.Errorf("webhook form lacks %q", want)
		}
	}
	if strings.Contains(body, testHookSecret) {
		t.Fatal("the form shows the signing secret")
	}
	// Save: a bad value is named next to its field; a good one keeps the
	// secret when its box is left empty.
	form := s.form("version", "1", "url", "ftp://nope", "mode", "batch", "maxBatchSize", "50", "signatureHeader", "X-Sig", "timeout", "5s", "concurrency", "2")
	_, body = s.post("/admin/destinations/hook", form, nil)
	if !strings.Contains(body, `id="error-url"`) || !strings.Contains(body, "want an http or https URL") {
		t.Errorf("bad url not reported at its field")
	}
	form.Set("url", "https://hooks.example/v2")
	resp, _ := s.post("/admin/destinations/hook", form, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	saved, err := webhook.ParseSettings(tc.st.settings["hook"].Settings)
	if err != nil || saved.URL != "https://hooks.example/v2" || saved.Mode != "batch" || saved.SigningSecret != testHookSecret || saved.Timeout != 5*time.Second {
		t.Errorf("saved %+v, %v", saved, err)
	}
	// Test connection hands the destination the saved settings, and the
	// tester maps with the webhook's own Test, the secret kept.
	_, body = s.post("/admin/destinations/hook/test", s.form(), map[string]string{"HX-Request": "true"})
	if !strings.Contains(body, "Connected") || !strings.Contains(body, "the saved settings") {
		t.Errorf("test connection: %s", body)
	}
	_, body = s.post("/admin/tester/transform", s.form("dest", "hook", "event", `{"type":"track","event":"E","userId":"u","messageId":"w-1"}`), nil)
	if !strings.Contains(body, "POST /v2") || !strings.Contains(body, "X-Sig") || strings.Contains(body, testHookSecret) {
		t.Errorf("tester: %s", body)
	}
}
