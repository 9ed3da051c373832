package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relaycdp/relay/internal/klaviyo/openapi"
	"github.com/relaycdp/relay/internal/sim"
)

// simLockedBuffer is an io.Writer safe to read while run writes to it.
type simLockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *simLockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *simLockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

var simListenRE = regexp.MustCompile(`listening on (http://\S+)`)

// startSim runs `relay sim` with args and returns its URL and a stop
// function that cancels it and returns its exit code.
func startSim(t *testing.T, args ...string) (string, *simLockedBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr simLockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"sim", "--addr", "127.0.0.1:0"}, args...), strings.NewReader(""), &stdout, &stderr)
	}()
	var url string
	deadline := time.Now().Add(20 * time.Second)
	for url == "" {
		if m := simListenRE.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("relay sim exited %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("relay sim printed no address: %q %q", stdout.String(), stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop := func() int {
		cancel()
		return <-done
	}
	return url, &stdout, stop
}

func simPost(t *testing.T, url, key string, body any) *http.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("revision", openapi.Revision())
	req.Header.Set("Content-Type", "application/vnd.api+json")
	if key != "" {
		req.Header.Set("Authorization", "Klaviyo-API-Key "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestSimCommand(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	event := map[string]any{"data": map[string]any{"type": "event", "attributes": map[string]any{
		"properties": map[string]any{},
		"metric":     map[string]any{"data": map[string]any{"type": "metric", "attributes": map[string]any{"name": "Viewed"}}},
		"profile":    map[string]any{"data": map[string]any{"type": "profile", "attributes": map[string]any{"email": "cli@example.com"}}},
	}}}

	t.Run("keys", func(t *testing.T) {
		url, stdout, stop := startSim(t, "--key", "pk_one", "--key", "pk_two")
		for _, tc := range []struct {
			key    string
			status int
		}{{"pk_one", 202}, {"pk_two", 202}, {"pk_three", 401}, {"", 401}, {sim.DemoKey, 401}} {
			if resp := simPost(t, url+"/api/events", tc.key, event); resp.StatusCode != tc.status {
				t.Errorf("key %q: status %d, want %d", tc.key, resp.StatusCode, tc.status)
			}
		}
		resp, err := http.Get(url + "/_sim/state")
		if err != nil {
			t.Fatal(err)
		}
		var st sim.State
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Events) != 1 || st.Requests["POST /api/events"] != 5 || st.Rejected != 3 {
			t.Errorf("state: events %d requests %v rejected %d", len(st.Events), st.Requests, st.Rejected)
		}
		if code := stop(); code != 0 {
			t.Errorf("exit %d", code)
		}
		if out := stdout.String(); strings.Contains(out, "pk_one") || strings.Contains(out, "pk_two") {
			t.Errorf("stdout shows keys: %s", out)
		}
	})

	t.Run("demo key and faults", func(t *testing.T) {
		url, stdout, stop := startSim(t, "--error-rate", "1", "--fault-endpoint", "POST /api/profile-import")
		if !strings.Contains(stdout.String(), sim.DemoKey) {
			t.Errorf("demo key not printed: %s", stdout.String())
		}
		if resp := simPost(t, url+"/api/events", sim.DemoKey, event); resp.StatusCode != 202 {
			t.Errorf("events: status %d", resp.StatusCode)
		}
		prof := map[string]any{"data": map[string]any{"type": "profile", "attributes": map[string]any{"email": "cli@example.com"}}}
		if resp := simPost(t, url+"/api/profile-import", sim.DemoKey, prof); resp.StatusCode < 500 {
			t.Errorf("profile-import: status %d, want 5xx", resp.StatusCode)
		}
		if code := stop(); code != 0 {
			t.Errorf("exit %d", code)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		for _, args := range [][]string{{"sim", "--nope"}, {"sim", "--error-rate", "2"}, {"sim", "extra"}} {
			if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != 2 {
				t.Errorf("%v: exit %d, want 2", args, code)
			}
		}
	})
}
