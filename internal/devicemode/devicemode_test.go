package devicemode

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/spec"
)

const (
	testKey     = "WK_device"
	privateKey  = "pk_SECRET_private_key_123"
	publicKey   = "PUB123"
	failingKey  = "WK_fails"
	unknownText = "not found\n"
)

type fakeResolver map[string][]klaviyo.Settings

func (f fakeResolver) Resolve(_ context.Context, key string) ([]klaviyo.Settings, bool, error) {
	if key == failingKey {
		return nil, false, errors.New("store down for key " + key)
	}
	d, ok := f[key]
	return d, ok, nil
}

func settings(t *testing.T, doc string) klaviyo.Settings {
	t.Helper()
	s, err := klaviyo.ParseSettings([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

func newServer(t *testing.T, mode string) http.Handler {
	doc := `{"privateApiKey":"` + privateKey + `","publicApiKey":"` + publicKey + `","deviceMode":"` + mode + `","sendPageAsTrack":true}`
	mux := http.NewServeMux()
	New(fakeResolver{testKey: {settings(t, doc)}}, nil).Register(mux)
	return mux
}

func get(t *testing.T, h http.Handler, req *http.Request) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body), rec.Result().Header
}

func rudderReq(key string) *http.Request {
	r := httptest.NewRequest("GET", "http://relay.test:8080/sourceConfig/?p=npm&v=3.34.1&build=modern&writeKey="+key, nil)
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(key+":")))
	return r
}

func TestSegmentSettings(t *testing.T) {
	for _, mode := range []string{"off", "on", "both"} {
		t.Run(mode, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://relay.test:8080/v1/projects/"+testKey+"/settings", nil)
			req.Header.Set("Origin", "http://shop.test")
			code, body, h := get(t, newServer(t, mode), req)
			if code != 200 || h.Get("Access-Control-Allow-Origin") != "http://shop.test" {
				t.Fatalf("status %d, CORS %q", code, h.Get("Access-Control-Allow-Origin"))
			}
			var doc struct {
				Integrations  map[string]map[string]any `json:"integrations"`
				RemotePlugins []struct {
					Name, CreationName, LibraryName, URL string
					Settings                             map[string]any
				} `json:"remotePlugins"`
			}
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatal(err)
			}
			seg := doc.Integrations["Segment.io"]
			if seg["apiHost"] != "relay.test:8080/v1" || seg["protocol"] != "http" || seg["apiKey"] != testKey {
				t.Errorf("Segment.io = %v", seg)
			}
			if mode == "off" {
				if len(doc.Integrations) != 1 || len(doc.RemotePlugins) != 0 {
					t.Errorf("device mode off serves %v / %v", doc.Integrations, doc.RemotePlugins)
				}
				return
			}
			if got := doc.Integrations["Klaviyo"]; !cmp.Equal(got, map[string]any{"bundlingStatus": "bundled"}) {
				t.Errorf("integrations.Klaviyo = %v", got)
			}
			if len(doc.RemotePlugins) != 1 {
				t.Fatalf("remotePlugins = %v", doc.RemotePlugins)
			}
			p := doc.RemotePlugins[0]
			if p.Name != "Klaviyo" || p.LibraryName != "relayKlaviyoDevice" || p.URL != "http://relay.test:8080/devicemode/klaviyo.js" {
				t.Errorf("plugin = %+v", p)
			}
			want := map[string]any{"publicKey": publicKey, "deviceMode": mode, "enforceEmailAsPrimary": false,
				"onsiteScriptUrl":                 "https://static.klaviyo.com/onsite/js/klaviyo.js?company_id=" + publicKey,
				"sendPlacedOrderAsOrderCompleted": false, "sendPageAsTrack": true, "userIdProperty": "id"}
			if diff := cmp.Diff(want, p.Settings); diff != "" {
				t.Errorf("plugin settings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRudderSourceConfig(t *testing.T) {
	code, body, h := get(t, newServer(t, "on"), rudderReq(testKey))
	if code != 200 || h.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("status %d, CORS %q", code, h.Get("Access-Control-Allow-Origin"))
	}
	var doc struct {
		Source struct {
			ID           string
			Enabled      bool
			Config       map[string]any
			Destinations []struct {
				Enabled               bool
				Config                map[string]any
				DestinationDefinition struct{ Name, DisplayName string }
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Source.ID == "" || doc.Source.Config == nil || !doc.Source.Enabled || len(doc.Source.Destinations) != 1 {
		t.Fatalf("source = %+v", doc.Source)
	}
	d := doc.Source.Destinations[0]
	if d.DestinationDefinition.DisplayName != "Klaviyo" || !d.Enabled || d.Config["connectionMode"] != "device" || d.Config["publicKey"] != publicKey {
		t.Errorf("destination = %+v", d)
	}
	// Device mode off: no destination, since the SDK treats every listed
	// destination without connectionMode "cloud" as device mode.
	_, body, _ = get(t, newServer(t, "off"), rudderReq(testKey))
	if !strings.Contains(body, `"destinations":[]`) {
		t.Errorf("off: %s", body)
	}
	// The preflight the Basic auth header causes.
	pre := httptest.NewRequest("OPTIONS", "http://relay.test/sourceConfig/", nil)
	pre.Header.Set("Origin", "http://shop.test")
	code, _, h = get(t, newServer(t, "on"), pre)
	if code != 204 || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") || h.Get("Access-Control-Allow-Methods") != "GET" {
		t.Errorf("preflight %d %v", code, h)
	}
}

// TestBadKeys: unknown keys get the same bare 404 on both endpoints; a
// lookup failure is a 503 without the key; no answer ever carries the
// private API key.
func TestBadKeys(t *testing.T) {
	h := newServer(t, "both")
	seg := func(k string) *http.Request {
		return httptest.NewRequest("GET", "http://relay.test/v1/projects/"+k+"/settings", nil)
	}
	tests := []struct {
		name     string
		req      *http.Request
		wantCode int
		wantBody string
	}{
		{"segment unknown", seg("WK_nope"), 404, unknownText},
		{"rudder unknown", rudderReq("WK_nope"), 404, unknownText},
		{"rudder no key", httptest.NewRequest("GET", "http://relay.test/sourceConfig/", nil), 404, unknownText},
		{"segment lookup fails", seg(failingKey), 503, "source lookup failed; try again\n"},
		{"rudder lookup fails", rudderReq(failingKey), 503, "source lookup failed; try again\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := get(t, h, tc.req)
			if code != tc.wantCode || body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", code, body, tc.wantCode, tc.wantBody)
			}
		})
	}
	for _, req := range []*http.Request{seg(testKey), rudderReq(testKey),
		httptest.NewRequest("GET", "http://relay.test/devicemode/klaviyo.js", nil),
		httptest.NewRequest("GET", "http://relay.test/devicemode/Klaviyo.min.js", nil)} {
		code, body, _ := get(t, h, req)
		if code != 200 || strings.Contains(body, privateKey) || strings.Contains(body, "privateApiKey") {
			t.Errorf("%s: status %d, or the private key is in the answer", req.URL.Path, code)
		}
	}
}

func TestSentFromBrowser(t *testing.T) {
	segment := func(typ string) *spec.Event {
		return &spec.Event{Type: typ, Bundled: []string{"Klaviyo", "Segment.io"}}
	}
	rudder := func(typ string) *spec.Event {
		return &spec.Event{Type: typ, Context: map[string]any{"library": map[string]any{"name": "RudderLabs JavaScript SDK", "version": "3.34.1"}}}
	}
	rudderV1 := &spec.Event{Type: spec.TypeTrack, Context: map[string]any{"library": map[string]any{"name": "RudderLabs JavaScript SDK", "version": "1.1.20"}}}
	server := &spec.Event{Type: spec.TypeTrack, Context: map[string]any{"library": map[string]any{"name": "analytics-node"}}}
	notBundled := &spec.Event{Type: spec.TypeTrack, Bundled: []string{"Segment.io"}}
	tests := []struct {
		mode string
		ev   *spec.Event
		skip bool
	}{
		{"off", segment(spec.TypeTrack), false},
		{"off", rudder(spec.TypeTrack), false},
		{"on", segment(spec.TypeTrack), true},
		{"on", segment(spec.TypePage), true},
		{"on", segment(spec.TypeIdentify), true},
		{"on", segment(spec.TypeGroup), false},
		{"on", rudder(spec.TypeTrack), true},
		{"on", rudder(spec.TypeIdentify), true},
		{"on", server, false},
		{"on", notBundled, false},
		{"on", rudderV1, false},
		{"both", segment(spec.TypeTrack), true},
		{"both", segment(spec.TypeIdentify), false},
		{"both", rudder(spec.TypePage), true},
		{"both", rudder(spec.TypeIdentify), false},
	}
	for _, tc := range tests {
		s := settings(t, `{"publicApiKey":"P","deviceMode":"`+tc.mode+`"}`)
		if got := SentFromBrowser(tc.ev, s) != ""; got != tc.skip {
			t.Errorf("mode %s, %s %v: skip = %v, want %v", tc.mode, tc.ev.Type, tc.ev.Context, got, tc.skip)
		}
	}
}
