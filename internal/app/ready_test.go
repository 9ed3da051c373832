package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/app"
)

// startAt runs relay serve --demo with its data in dir until the test ends
// and returns its base URL.
func startAt(t *testing.T, dir string) (base, writeKey string) {
	t.Helper()
	out := &consoleSyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Demo: true, Addr: "127.0.0.1:0", Data: dir, Out: out,
			Env: func(k string) (string, bool) {
				if k == "RELAY_LOG_LEVEL" {
					return "error", true
				}
				return "", false
			},
			Ready: func(addr string) { ready <- addr },
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("relay serve did not stop")
		}
	})
	select {
	case addr := <-ready:
		m := regexp.MustCompile(`Write key:\s+(\S+)`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("banner has no write key:\n%s", out)
		}
		return "http://" + addr, m[1]
	case err := <-done:
		t.Fatalf("relay serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("relay serve did not start")
	}
	return "", ""
}

type readyBody struct {
	Ready  bool `json:"ready"`
	Checks []struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Reason string `json:"reason"`
	} `json:"checks"`
	Destinations []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"destinations"`
}

func getReady(t *testing.T, base string) (int, readyBody, string) {
	t.Helper()
	resp, err := http.Get(base + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var b readyBody
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("/ready body %q: %v", raw, err)
	}
	return resp.StatusCode, b, string(raw)
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReadyWhenDiskFull fills a small tmpfs holding the data dir: /health
// stays 200 (the process is alive) while /ready answers 503 naming the
// cause, and /ready recovers once there is room again.
func TestReadyWhenDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).Run(); err != nil {
		skipUnlessRequired(t, "cannot mount a tmpfs to fill (needs root): %v", err)
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	base, writeKey := startAt(t, dir)
	track := func(id string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/track",
			strings.NewReader(`{"userId":"u1","event":"Disk Test","messageId":"`+id+`","properties":{"pad":"`+strings.Repeat("p", 2000)+`"}}`))
		req.SetBasicAuth(writeKey, "")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := track("before"); c != http.StatusOK {
		t.Fatalf("ingest before filling: %d", c)
	}

	code, body, raw := getReady(t, base)
	if code != http.StatusOK || !body.Ready {
		t.Fatalf("before filling: /ready %d %s", code, raw)
	}
	if len(body.Destinations) != 1 || body.Destinations[0].State != "ok" {
		t.Errorf("destinations %+v, want the demo destination ok", body.Destinations)
	}

	fill := filepath.Join(dir, "filler")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	f.Close()

	var last string
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body, raw = getReady(t, base)
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("disk full: /ready still %d %s", code, raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if body.Ready || len(body.Checks) == 0 || body.Checks[0].Name != "queue" || body.Checks[0].OK ||
		body.Checks[0].Reason != "no space left on device" {
		t.Errorf("disk full: /ready %s, want the queue check failing with the cause", raw)
	}
	if strings.Contains(raw, dir) {
		t.Errorf("/ready shows the data dir's path: %s", raw)
	}
	if c := getStatus(t, base+"/health"); c != http.StatusOK {
		t.Errorf("disk full: /health %d, want 200 (alive)", c)
	}
	// What the probe predicts: ingest cannot commit either (logged, not
	// asserted: SQLite may still have room in pages it already holds).
	full := 0
	for i := range 20 {
		if track(fmt.Sprintf("full-%d", i)) == http.StatusServiceUnavailable {
			full++
		}
	}
	t.Logf("disk full: %d of 20 ingest requests answered 503", full)
	last = raw

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if code, _, raw = getReady(t, base); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("room again: /ready still %d %s (was %s)", code, raw, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if c := track("after"); c != http.StatusOK {
		t.Errorf("room again: ingest %d, want 200", c)
	}
}
