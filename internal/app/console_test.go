package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaycdp/relay/internal/app"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
	"github.com/relaycdp/relay/internal/testutil"
)

// TestConsoleMounted checks the wiring without a browser: relay serve
// serves the console at /admin/, behind the admin token.
func TestConsoleMounted(t *testing.T) {
	env := consoleStartApp(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path, token string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, env.base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, _ := get("/admin/", ""); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("without token: %d, want 303 to the login form", resp.StatusCode)
	}
	if resp, _ := get("/admin/", "wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", resp.StatusCode)
	}
	for _, p := range []string{"/admin/", "/admin/destinations/klaviyo", "/admin/sources", "/admin/tester", "/admin/log", "/admin/deadletters"} {
		resp, body := get(p, env.token)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
		for name, s := range map[string]string{"private API key": sim.DemoKey, "admin token": env.token, "write key": env.writeKey} {
			if strings.Contains(body, s) {
				t.Errorf("%s shows the %s", p, name)
			}
		}
	}
}

// TestConsoleInBrowser drives the admin console of a real `relay serve
// --demo` (in process, simulator included) with headless Chromium, as a
// user would, and writes a screenshot of every page to build/screenshots.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium := consoleFindChromium(t)
	env := consoleStartApp(t)
	b := consoleNewBrowser(t, chromium)
	shots := consoleScreenshotDir(t)
	admin := env.base + "/admin"

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("nothing without the token", func(t *testing.T) {
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, p := range []string{"/", "/log", "/deadletters", "/sources", "/destinations/klaviyo", "/tester"} {
			resp, err := client.Get(admin + p)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/login") {
				t.Errorf("GET %s without token: %d %q, want 303 to the login form", p, resp.StatusCode, resp.Header.Get("Location"))
			}
			if len(body) > 0 && bytes.Contains(body, []byte("<table")) {
				t.Errorf("GET %s without token shows data", p)
			}
		}
		resp, err := http.PostForm(admin+"/deadletters/replay", map[string][]string{"dest": {"klaviyo"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST without token: %d, want 401", resp.StatusCode)
		}
		b.run(t, chromedp.Navigate(admin+"/log"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
		if loc := b.location(t); !strings.Contains(loc, "/admin/login") {
			t.Errorf("browser at %s, want the login form", loc)
		}
		if html := b.html(t); strings.Contains(html, "Delivery log") || strings.Contains(html, "<table") {
			t.Error("login page shows console content")
		}
		b.screenshot(t, shots, "login")
	})

	step("log in", func(t *testing.T) {
		b.run(t,
			chromedp.SendKeys(chromedp.CSS("#token"), env.token),
			chromedp.Click(chromedp.CSS("#login-submit")),
			chromedp.WaitVisible(chromedp.CSS("#log-search")),
		)
		if loc := b.location(t); !strings.HasSuffix(loc, "/admin/log") {
			t.Errorf("after login at %s, want back at /admin/log", loc)
		}
	})

	step("settings: validation error next to the field, secrets never shown", func(t *testing.T) {
		b.run(t, chromedp.Navigate(admin+"/destinations/klaviyo"), chromedp.WaitVisible(chromedp.CSS("#settings-form")))
		b.noSecrets(t, env)
		keyValue := b.value(t, "#f-privateApiKey")
		if keyValue != "" {
			t.Errorf("private key field has a value")
		}
		b.run(t,
			chromedp.SetValue(chromedp.CSS("#f-defaultPhoneCountry"), "ZZ"),
			chromedp.Click(chromedp.CSS("#save-settings")),
			chromedp.WaitVisible(chromedp.CSS("#error-defaultPhoneCountry")),
		)
		if txt := b.text(t, "#field-defaultPhoneCountry .field-error"); !strings.Contains(txt, "unknown region") {
			t.Errorf("error next to defaultPhoneCountry = %q", txt)
		}
		b.noSecrets(t, env)
		b.screenshot(t, shots, "settings-error")
	})

	step("settings: test connection", func(t *testing.T) {
		b.run(t, chromedp.Click(chromedp.CSS("#test-connection")), chromedp.WaitVisible(chromedp.CSS("#conn-message")))
		if txt := b.text(t, "#conn-message"); !strings.Contains(txt, "Connected") {
			t.Errorf("test connection: %q", txt)
		}
	})

	step("settings: save eventNameMap and sendPageAsTrack", func(t *testing.T) {
		// chromedp's SetValue cannot set "" (it sends no argument).
		b.setValue(t, "#f-defaultPhoneCountry", "")
		b.run(t, chromedp.SetValue(chromedp.CSS("#f-eventNameMap"), "Signed Up => Account Created"))
		b.setChecked(t, "#f-sendPageAsTrack", true)
		b.run(t, chromedp.Click(chromedp.CSS("#save-settings")), chromedp.WaitVisible(chromedp.CSS("main > .notice")))
		if txt := b.text(t, "main > .notice"); !strings.Contains(txt, "Saved (version 2)") {
			t.Errorf("after save: %q", txt)
		}
		v := b.value(t, "#f-eventNameMap")
		if v != "Signed Up => Account Created" {
			t.Errorf("eventNameMap after save = %q", v)
		}
		b.noSecrets(t, env)
		b.screenshot(t, shots, "settings")
	})

	step("new settings apply to the next ingested events", func(t *testing.T) {
		env.ingest(t, env.writeKey, "track", `{"messageId":"browser-signup-1","userId":"ada-1","event":"Signed Up","context":{"traits":{"email":"Ada@Example.com"}}}`, http.StatusOK)
		env.ingest(t, env.writeKey, "page", `{"messageId":"browser-page-1","userId":"ada-1","name":"Pricing","context":{"traits":{"email":"ada@example.com"}}}`, http.StatusOK)
		testutil.EventuallyWhy(t, 20*time.Second, "console", func() (bool, string) {
			m := env.simMetrics(t)
			return m["Account Created"] > 0 && m["Viewed Pricing Page"] > 0, fmt.Sprintf("simulator metrics %v", m)
		})
	})

	step("delivery log: find by messageId and email", func(t *testing.T) {
		b.run(t, chromedp.Navigate(admin+"/log"), chromedp.WaitVisible(chromedp.CSS("#q")),
			chromedp.SendKeys(chromedp.CSS("#q"), "browser-signup-1"), chromedp.Click(chromedp.CSS("#log-search-submit")))
		b.waitURL(t, "q=browser-signup-1")
		testutil.EventuallyWhy(t, 15*time.Second, "console", func() (bool, string) {
			st := b.textIf(t, `tr[data-message-id="browser-signup-1"] .log-status`)
			if st != "delivered" {
				b.run(t, chromedp.Reload())
			}
			return st == "delivered", "status " + st
		})
		b.run(t, chromedp.Navigate(admin+"/log?q=ada%40example.com"), chromedp.WaitVisible(chromedp.CSS("#log-table")))
		html := b.html(t)
		for _, id := range []string{"browser-signup-1", "browser-page-1"} {
			if !strings.Contains(html, `data-message-id="`+id+`"`) {
				t.Errorf("search by email does not find %s", id)
			}
		}
		b.screenshot(t, shots, "log")
	})

	step("event tester: same output as relay transform, then send", func(t *testing.T) {
		b.run(t, chromedp.Navigate(admin+"/tester"), chromedp.WaitVisible(chromedp.CSS("#tester-form")),
			chromedp.SetValue(chromedp.CSS("#sample"), "order"),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := chromedp.Evaluate[bool](`document.getElementById("sample").dispatchEvent(new Event("change", {bubbles: true}))`)(ctx, tg)
				return err
			}),
			chromedp.Click(chromedp.CSS("#run-transform")),
			chromedp.WaitVisible(chromedp.CSS("#transform-output")),
		)
		event, settings, output := b.value(t, "#event"), b.value(t, "#test-settings"), b.text(t, "#transform-output")
		if !strings.Contains(event, "Order Completed") {
			t.Fatalf("sample not filled in: %q", event)
		}
		s, err := klaviyo.ParseSettings([]byte(settings))
		if err != nil {
			t.Fatal(err)
		}
		s.PrivateAPIKey, s.PublicAPIKey = sim.DemoKey, "DEMO01"
		outs, err := klaviyo.Transform([]byte(event), spec.Options{MaxEventBytes: 32 << 10}, s)
		if err != nil {
			t.Fatal(err)
		}
		want, err := klaviyo.MarshalOutcomes(outs)
		if err != nil {
			t.Fatal(err)
		}
		wantText := strings.ReplaceAll(string(want), "DEMO01", store.MaskKey("DEMO01"))
		if strings.TrimSpace(output) != strings.TrimSpace(wantText) {
			t.Errorf("tester output differs from relay transform:\n got %s\nwant %s", output, wantText)
		}
		if !strings.Contains(output, "Placed Order") {
			t.Errorf("output has no Placed Order: %s", output)
		}
		b.run(t, chromedp.Click(chromedp.CSS("#send-event")))
		testutil.EventuallyWhy(t, 20*time.Second, "console", func() (bool, string) {
			st := b.textIf(t, ".delivery-status")
			return st == "delivered", "status " + st
		})
		b.screenshot(t, shots, "tester")
	})

	step("dead letter, fix, replay, delivered", func(t *testing.T) {
		b.run(t, chromedp.Navigate(admin+"/destinations/klaviyo"), chromedp.WaitVisible(chromedp.CSS("#settings-form")))
		b.setChecked(t, "#f-enforceEmailAsPrimary", true)
		b.run(t, chromedp.Click(chromedp.CSS("#save-settings")), chromedp.WaitVisible(chromedp.CSS("main > .notice")))
		env.ingest(t, env.writeKey, "track", `{"messageId":"browser-dead-1","userId":"no-email-user","event":"Trial Started"}`, http.StatusOK)
		b.run(t, chromedp.Navigate(admin+"/deadletters"))
		row := `tr[data-message-id="browser-dead-1"]`
		testutil.EventuallyWhy(t, 20*time.Second, "console", func() (bool, string) {
			found := b.exists(t, row)
			if !found {
				b.run(t, chromedp.Reload())
			}
			return found, "no dead letter yet"
		})
		if txt := b.text(t, row+" .dead-error"); !strings.Contains(strings.ToLower(txt), "email") {
			t.Errorf("dead letter error %q does not say an email is needed", txt)
		}
		b.screenshot(t, shots, "deadletters")

		b.run(t, chromedp.Navigate(admin+"/destinations/klaviyo"), chromedp.WaitVisible(chromedp.CSS("#settings-form")))
		b.setChecked(t, "#f-enforceEmailAsPrimary", false)
		b.run(t, chromedp.Click(chromedp.CSS("#save-settings")), chromedp.WaitVisible(chromedp.CSS("main > .notice")))

		b.run(t, chromedp.Navigate(admin+"/deadletters"), chromedp.WaitVisible(chromedp.CSS(row)),
			chromedp.Click(chromedp.CSS(row+" button.replay-one")), chromedp.WaitVisible(chromedp.CSS("main > .notice")))
		if txt := b.text(t, "main > .notice"); !strings.Contains(txt, "Replayed 1") {
			t.Errorf("after replay: %q", txt)
		}
		testutil.EventuallyWhy(t, 20*time.Second, "console", func() (bool, string) {
			m := env.simMetrics(t)
			return m["Trial Started"] > 0, fmt.Sprintf("simulator metrics %v", m)
		})
		b.run(t, chromedp.Navigate(admin+"/log?q=browser-dead-1"))
		testutil.EventuallyWhy(t, 15*time.Second, "console", func() (bool, string) {
			st := b.textIf(t, `tr[data-message-id="browser-dead-1"] .log-status`)
			if st != "delivered" {
				b.run(t, chromedp.Reload())
			}
			return st == "delivered", "status " + st
		})
	})

	step("overview", func(t *testing.T) {
		b.run(t, chromedp.Navigate(admin+"/"), chromedp.WaitVisible(chromedp.CSS("#stats")))
		if txt := b.text(t, "#stats"); !strings.Contains(txt, "POST /api/") {
			t.Errorf("overview lists no Klaviyo endpoint: %q", txt)
		}
		b.screenshot(t, shots, "overview")
	})

	step("sources: create source and key, use it, revoke it", func(t *testing.T) {
		b.run(t, chromedp.Navigate(admin+"/sources"), chromedp.WaitVisible(chromedp.CSS("#create-source")),
			chromedp.SendKeys(chromedp.CSS("#source-name"), "web-test"), chromedp.Submit(chromedp.CSS("#source-name")),
			chromedp.WaitVisible(chromedp.CSS("#source-web-test")),
			chromedp.Click(chromedp.CSS("#source-web-test button.create-key")), chromedp.WaitVisible(chromedp.CSS("#new-key-value")))
		key := b.text(t, "#new-key-value")
		if !strings.HasPrefix(key, "wk_") {
			t.Fatalf("new key %q", key)
		}
		b.screenshot(t, shots, "sources")
		env.ingest(t, key, "track", `{"messageId":"browser-newkey-1","userId":"u-9","event":"Key Works","context":{"traits":{"email":"k@example.com"}}}`, http.StatusOK)

		b.run(t, chromedp.Navigate(admin+"/sources"), chromedp.WaitVisible(chromedp.CSS("#source-web-test")))
		if strings.Contains(b.html(t), key) {
			t.Error("the new key is shown again after creation")
		}
		b.noSecrets(t, env)
		b.run(t, chromedp.Click(chromedp.CSS("#source-web-test details.confirm summary")),
			chromedp.Click(chromedp.CSS("#source-web-test details.confirm button")), chromedp.WaitVisible(chromedp.CSS("main > .notice")))
		if txt := b.text(t, "main > .notice"); !strings.Contains(txt, "revoked") {
			t.Errorf("after revoke: %q", txt)
		}
		env.ingest(t, key, "track", `{"messageId":"browser-newkey-2","userId":"u-9","event":"Key Works"}`, http.StatusUnauthorized)
	})

	step("log out", func(t *testing.T) {
		b.run(t, chromedp.Click(chromedp.CSS("header .logout button")), chromedp.WaitVisible(chromedp.CSS("#login-form")),
			chromedp.Navigate(admin+"/sources"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	})

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("browser console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// consoleApp is a running demo relay.
type consoleApp struct {
	base, token, writeKey, simURL string
}

type consoleSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *consoleSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *consoleSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func consoleStartApp(t *testing.T) *consoleApp {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &consoleSyncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Demo: true, Addr: "127.0.0.1:0", Data: t.TempDir(), Out: out,
			Env: func(k string) (string, bool) {
				if k == "RELAY_LOG_LEVEL" {
					return "warn", true
				}
				return "", false
			},
			Ready: func(addr string) { ready <- addr },
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("relay serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("relay serve did not stop")
		}
	})
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("relay serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("relay serve did not start")
	}
	banner := out.String()
	find := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("banner has no %s:\n%s", re, banner)
		}
		return m[1]
	}
	return &consoleApp{
		base:     "http://" + addr,
		token:    find(`admin token: (\S+)\)`),
		writeKey: find(`Write key:\s+(\S+)`),
		simURL:   find(`Simulator:\s+(\S+)/_sim/state`),
	}
}

func (e *consoleApp) ingest(t *testing.T, key, path, body string, want int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+"/v1/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(key, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /v1/%s: %d %s, want %d", path, resp.StatusCode, b, want)
	}
}

// simMetrics counts the simulator's events by metric name.
func (e *consoleApp) simMetrics(t *testing.T) map[string]int {
	t.Helper()
	resp, err := http.Get(e.simURL + "/_sim/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Events []struct {
			Metric string `json:"metric"`
		} `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, ev := range st.Events {
		out[ev.Metric]++
	}
	return out
}

func consoleFindChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	skipUnlessRequired(t, "no Chromium found (/usr/bin/chromium or chromium on PATH): install it with `apt-get install chromium` (scripts/setup.sh test does) to run the console's browser test")
	return ""
}

// consoleBrowser is one headless Chromium tab that records every console
// message of type error or exception (console API, uncaught exceptions,
// browser log errors such as CSP violations and failed loads).
type consoleBrowser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func consoleNewBrowser(t *testing.T, path string) *consoleBrowser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	b := &consoleBrowser{ctx: ctx}
	// Console starts the browser; the subscription lives as long as ctx.
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.record(fmt.Sprintf("%s (%s %s)", m.String(), m.Source, m.URL))
			}
		}
	}()
	t.Cleanup(func() { cancelCtx(); <-done; cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

func (b *consoleBrowser) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, s)
}

func (b *consoleBrowser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

func (b *consoleBrowser) run(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v (at %s)", err, b.location(t))
	}
}

// get runs one action that returns a value.
func consoleGet[T any](t *testing.T, b *consoleBrowser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v (at %s)", err, b.location(t))
	}
	return v
}

func (b *consoleBrowser) location(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

func (b *consoleBrowser) html(t *testing.T) string {
	t.Helper()
	return consoleGet(t, b, chromedp.OuterHTML(chromedp.CSS("html")))
}

func (b *consoleBrowser) text(t *testing.T, sel string) string {
	t.Helper()
	return strings.TrimSpace(consoleGet(t, b, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible)))
}

func (b *consoleBrowser) value(t *testing.T, sel string) string {
	t.Helper()
	return consoleGet(t, b, chromedp.Value(chromedp.CSS(sel)))
}

// textIf is the text of sel, or "" when no such element exists now.
func (b *consoleBrowser) textIf(t *testing.T, sel string) string {
	t.Helper()
	js := fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.textContent.trim():""})()`, sel)
	return consoleGet(t, b, chromedp.Evaluate[string](js))
}

func (b *consoleBrowser) exists(t *testing.T, sel string) bool {
	t.Helper()
	return consoleGet(t, b, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, sel)))
}

// waitURL waits until the tab shows a page whose URL contains part (a
// click started a navigation), then until that page is loaded.
func (b *consoleBrowser) waitURL(t *testing.T, part string) {
	t.Helper()
	testutil.EventuallyWhy(t, 10*time.Second, "console", func() (bool, string) {
		loc := b.location(t)
		return strings.Contains(loc, part), "at " + loc
	})
	testutil.EventuallyWhy(t, 10*time.Second, "console", func() (bool, string) {
		return consoleGet(t, b, chromedp.Evaluate[string](`document.readyState`)) == "complete", "page not loaded"
	})
}

// setValue sets a form field's value from script.
func (b *consoleBrowser) setValue(t *testing.T, sel, v string) {
	t.Helper()
	js, _ := json.Marshal(v)
	consoleGet(t, b, chromedp.Evaluate[bool](fmt.Sprintf(`(function(){document.querySelector(%q).value=%s;return true})()`, sel, js)))
}

// setChecked clicks a checkbox when its state is not the wanted one.
func (b *consoleBrowser) setChecked(t *testing.T, sel string, want bool) {
	t.Helper()
	if consoleGet(t, b, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).checked`, sel))) != want {
		b.run(t, chromedp.Click(chromedp.CSS(sel)))
	}
}

// noSecrets checks the page's HTML for the API keys and the admin token.
func (b *consoleBrowser) noSecrets(t *testing.T, env *consoleApp) {
	t.Helper()
	html := b.html(t)
	for name, s := range map[string]string{"private API key": sim.DemoKey, "public API key": "DEMO01", "admin token": env.token, "write key": env.writeKey} {
		if strings.Contains(html, s) {
			t.Errorf("page %s shows the %s", b.location(t), name)
		}
	}
}

func (b *consoleBrowser) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	png := consoleGet(t, b, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Errorf("write screenshot: %v", err)
	}
}

// consoleScreenshotDir is build/screenshots at the repository root (the
// directory holding go.mod, found upwards from the test's directory).
func consoleScreenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	out := filepath.Join(dir, "build", "screenshots")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// skipUnlessRequired skips a test whose service (or browser) is missing,
// except under `make test` and CI (RELAY_REQUIRE_SERVICES=1), where every
// machine has them and a skip would hide a broken setup.
func skipUnlessRequired(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("RELAY_REQUIRE_SERVICES") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
