package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

const devicePublicKey = "PUBE2E"

// TestDeviceMode drives analytics-next and RudderStack's JS SDK v3 in
// headless Chromium against a relay whose Klaviyo destination is in each
// deviceMode, with Klaviyo's onsite script replaced by a recording
// stand-in. It checks the calls the stand-in got, what the page posted to
// Relay's ingest, and what Relay delivered to the Klaviyo simulator.
func TestDeviceMode(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real browser SDKs in headless Chromium")
	}
	if _, err := exec.LookPath(chromiumPath()); err != nil {
		skipUnlessRequired(t, "chromium not installed (scripts/setup.sh test installs it): %v", err)
	}
	ensureNodeModules(t)
	pages := startPageServer(t)
	for _, mode := range []string{"off", "on", "both"} {
		t.Run(mode, func(t *testing.T) {
			ks := startSim(t, sim.Faults{})
			dir := t.TempDir()
			settings := fmt.Sprintf(`{"publicApiKey":%q,"deviceMode":%q,"sendPageAsTrack":true,"onsiteScriptUrl":%q}`,
				devicePublicKey, mode, pages.URL+"/klaviyo.js?company_id={publicKey}")
			r := startRelay(t, relayConfig(t, dir, ks.URL, settings), filepath.Join(dir, "data"), freeAddr(t))
			checkSettingsEndpoints(t, r)
			for _, sdk := range []string{"segment", "rudder"} {
				t.Run(sdk, func(t *testing.T) {
					prefix := fmt.Sprintf("dm%s%s%d", mode, sdk, time.Now().UnixNano()%1e6)
					checkDeviceRun(t, ks, r, pages.URL, sdk, mode, prefix)
				})
			}
			if t.Failed() {
				t.Logf("relay logs:\n%s", r.Logs())
			}
		})
	}
}

// checkSettingsEndpoints: a running relay (its private key set through the
// environment) never puts the private key in a settings document, and an
// unknown write key gets a bare 404 on both endpoints.
func checkSettingsEndpoints(t *testing.T, r *relayProc) {
	t.Helper()
	fetch := func(path, key string) (int, string) {
		req, err := http.NewRequest("GET", r.url(path), nil)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.SetBasicAuth(key, "")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/v1/projects/" + writeKey + "/settings", "/sourceConfig/?writeKey=" + writeKey} {
		code, body := fetch(path, writeKey)
		if code != 200 || strings.Contains(body, simKey) {
			t.Errorf("GET %s: %d, private key in it: %v", path, code, strings.Contains(body, simKey))
		}
	}
	for _, path := range []string{"/v1/projects/WK_unknown/settings", "/sourceConfig/?writeKey=WK_unknown"} {
		if code, body := fetch(path, "WK_unknown"); code != 404 || body != "not found\n" {
			t.Errorf("GET %s with an unknown key: %d %q, want 404 \"not found\"", path, code, body)
		}
	}
}

// deviceRun is what devicemode.js prints.
type deviceRun struct {
	Calls   [][]any  `json:"calls"`
	Scripts []string `json:"scripts"`
	Posted  []struct {
		Path   string         `json:"path"`
		Status int            `json:"status"`
		Body   map[string]any `json:"body"`
	} `json:"posted"`
	Errors []string `json:"errors"`
}

// events flattens the posted bodies (single calls and batches).
func (d deviceRun) events() []map[string]any {
	var out []map[string]any
	for _, p := range d.Posted {
		if b, ok := p.Body["batch"].([]any); ok {
			for _, e := range b {
				if m, ok := e.(map[string]any); ok {
					out = append(out, m)
				}
			}
			continue
		}
		out = append(out, p.Body)
	}
	return out
}

func checkDeviceRun(t *testing.T, ks *klaviyoSim, r *relayProc, pagesURL, sdk, mode, p string) {
	device := mode != "off"
	wantCalls := 0
	if device {
		wantCalls = 4
	}
	pageURL := fmt.Sprintf("%s/%s.html?relay=%s&prefix=%s&calls=%d", pagesURL, sdk, "http://"+r.addr, p, wantCalls)
	run := runDevicePage(t, pageURL, r.addr)
	if len(run.Errors) > 0 {
		t.Errorf("page errors: %q", run.Errors)
	}

	// What Relay's ingest received: all four calls, in every mode.
	for _, post := range run.Posted {
		if post.Status != 200 {
			t.Errorf("POST %s answered %d", post.Path, post.Status)
		}
	}
	byKind := map[string]map[string]any{}
	for _, e := range run.events() {
		kind, _ := e["type"].(string)
		if name, ok := e["event"].(string); ok {
			kind += ":" + name
		}
		if _, dup := byKind[kind]; dup {
			t.Errorf("ingest got %s twice", kind)
		}
		byKind[kind] = e
	}
	kinds := []string{"identify", "track:Product Viewed", "track:Order Completed", "page"}
	for _, k := range kinds {
		if byKind[k] == nil {
			t.Fatalf("ingest did not get %s; got %v", k, slices.Collect(maps.Keys(byKind)))
		}
	}
	if len(byKind) != len(kinds) {
		t.Errorf("ingest got %d kinds of call, want %d: %v", len(byKind), len(kinds), slices.Collect(maps.Keys(byKind)))
	}
	mid := func(k string) string { s, _ := byKind[k]["messageId"].(string); return s }
	if sdk == "segment" {
		for _, k := range kinds {
			meta, _ := byKind[k]["_metadata"].(map[string]any)
			bundled, _ := meta["bundled"].([]any)
			if got := slices.Contains(bundled, any("Klaviyo")); got != device {
				t.Errorf("%s: _metadata.bundled = %v, Klaviyo in it = %v, want %v", k, bundled, got, device)
			}
		}
	}

	// What the Klaviyo stand-in received.
	if !device {
		if len(run.Calls) != 0 || len(run.Scripts) != 0 {
			t.Errorf("device mode off: the onsite script was loaded (%q) or called (%v)", run.Scripts, run.Calls)
		}
	} else {
		if want := []string{pagesURL + "/klaviyo.js?company_id=" + devicePublicKey}; !cmp.Equal(run.Scripts, want) {
			t.Errorf("onsite scripts loaded = %q, want %q", run.Scripts, want)
		}
		pageProps, _ := byKind["page"]["properties"].(map[string]any)
		viewed := map[string]any{"$event_id": mid("page")}
		for k, v := range pageProps {
			viewed[k] = v
		}
		want := [][]any{
			{"identify", map[string]any{"$id": p + "-user", "$email": p + "@example.com", "$first_name": "Dev", "$phone_number": "+14155550123"}},
			{"track", "Product Viewed", map[string]any{"product_id": p + "-p1", "name": "Mug", "price": 12.5, "$event_id": mid("track:Product Viewed")}},
			{"track", "Placed Order", map[string]any{"order_id": p + "-o1", "revenue": 25.0, "currency": "USD", "$value": 25.0, "$event_id": p + "-o1",
				"products": []any{map[string]any{"product_id": p + "-p1", "sku": "SKU-1", "name": "Mug", "price": 12.5, "quantity": 2.0}}}},
			{"track", "Viewed Home Page", viewed},
		}
		if diff := cmp.Diff(want, run.Calls); diff != "" {
			t.Errorf("onsite calls (-want +got):\n%s", diff)
		}
	}

	// What Relay delivered server-side. A server-side marker sent after the
	// page shows delivery has caught up before absences are checked.
	marker := p + "-marker"
	body := fmt.Sprintf(`{"type":"track","messageId":%q,"userId":%q,"event":"Marker","properties":{"email":%q}}`, marker, marker, marker+"@example.com")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code, msg, err := r.post(ctx, "/v1/track", body); err != nil || code != 200 {
		t.Fatalf("marker: %d %s %v", code, msg, err)
	}
	browserIDs := []string{mid("track:Product Viewed"), p + "-o1", mid("page")}
	testutil.EventuallyWhy(t, 30*time.Second, "server-side delivery of "+p, func() (bool, string) {
		st := ks.State()
		got := map[string]string{}
		for _, e := range st.Events {
			got[e.UniqueID] = e.Metric
		}
		if got[marker] != "Marker" {
			return false, "marker not delivered yet"
		}
		var prof *sim.ProfileState
		for i := range st.Profiles {
			if st.Profiles[i].Email == p+"@example.com" {
				prof = &st.Profiles[i]
			}
		}
		switch mode {
		case "off": // cloud mode, as before device mode
			if prof == nil || prof.ExternalID != p+"-user" {
				return false, "identify not delivered"
			}
			for i, m := range []string{"Viewed Product", "Placed Order", "Viewed Home Page"} {
				if got[browserIDs[i]] != m {
					return false, fmt.Sprintf("%s (%s) not delivered: %v", m, browserIDs[i], got)
				}
			}
		case "on", "both":
			for _, id := range browserIDs {
				if m, ok := got[id]; ok {
					t.Fatalf("the browser sent %s to Klaviyo, and Relay delivered it again (%s)", id, m)
				}
			}
			// both: identifies still go server-side (lists, consent).
			if mode == "both" && (prof == nil || prof.ExternalID != p+"-user") {
				return false, "identify not delivered in mode both"
			}
			if mode == "on" && prof != nil {
				t.Fatalf("mode on: the browser's identify was delivered server-side too: %+v", prof)
			}
		}
		return true, ""
	})
}

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

func ensureNodeModules(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("node_modules/@rudderstack/analytics-js"); err != nil {
		install := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		if out, err := install.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
}

func runDevicePage(t *testing.T, pageURL, relayHost string) deviceRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "devicemode.js", pageURL, relayHost)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node devicemode.js: %v\n%s%s", err, out, stderr.String())
	}
	var run deviceRun
	if err := json.Unmarshal(out, &run); err != nil {
		t.Fatalf("devicemode.js output: %v\n%s", err, out)
	}
	t.Logf("devicemode.js: %s", strings.TrimSpace(string(out)))
	return run
}

// startPageServer serves the test pages (the site), the SDK bundles from
// node_modules (as a site self-hosting them would) and the Klaviyo
// stand-in at the URL the destination's onsiteScriptUrl names.
func startPageServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /segment/", http.StripPrefix("/segment/", http.FileServer(http.Dir("node_modules/@segment/analytics-next/dist/umd"))))
	mux.HandleFunc("GET /rudder/index.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "node_modules/@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js")
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /klaviyo.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "testdata/devicemode/klaviyo-standin.js")
	})
	for _, sdk := range []string{"segment", "rudder"} {
		mux.HandleFunc("GET /"+sdk+".html", func(w http.ResponseWriter, r *http.Request) {
			tmpl, err := os.ReadFile("testdata/devicemode/" + sdk + ".html")
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			q := r.URL.Query()
			page := strings.NewReplacer("{{RELAY}}", q.Get("relay"), "{{PREFIX}}", q.Get("prefix"),
				"{{WRITE_KEY}}", writeKey, "{{EXPECT_CALLS}}", q.Get("calls")).Replace(string(tmpl))
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(page))
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}
