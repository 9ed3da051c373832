package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// serveOnce runs relay serve expecting it to fail at start, and returns
// its exit code and stderr.
func serveOnce(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, relayBin, append([]string{"serve"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("relay serve %v: %v (it should have refused to start)\n%s", args, err, stderr.String())
	}
	return exit.ExitCode(), stderr.String()
}

// TestStartFailuresExplainThemselves: a second relay serve on a data dir
// in use, a corrupt queue.db and an unreachable NATS each end relay serve
// with exit code 2 and one line naming the cause (once a nil-pointer
// panic that hid it); so does an admin token under 16 characters.
func TestStartFailuresExplainThemselves(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ks := startSim(t, sim.Faults{})
	dir := t.TempDir()
	cfg := relayConfig(t, dir, ks.URL, "")
	running := filepath.Join(dir, "running")
	first := startRelay(t, cfg, running, freeAddr(t))

	corrupt := filepath.Join(dir, "corrupt")
	if err := os.MkdirAll(corrupt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corrupt, "queue.db"), bytes.Repeat([]byte("not a database "), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	jsCfg := filepath.Join(dir, "jetstream.yaml")
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jsCfg, append(raw, []byte("queue: jetstream\nnats:\n  url: nats://127.0.0.1:1\n")...), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		args  []string
		want  []string // in the one line
		token string   // RELAY_ADMIN_TOKEN
	}{
		{name: "admin token too short", args: []string{"--config", cfg, "--data", filepath.Join(dir, "short"), "--addr", freeAddr(t)},
			token: "change-me", want: []string{"admin.token", "at least 16 characters"}},
		{name: "data dir in use", args: []string{"--config", cfg, "--data", running, "--addr", freeAddr(t)},
			want: []string{"in use", "pid " + strconv.Itoa(first.cmd.Process.Pid), running}},
		{name: "corrupt queue.db", args: []string{"--config", cfg, "--data", corrupt, "--addr", freeAddr(t)},
			want: []string{"queue", "queue.db"}},
		{name: "NATS unreachable", args: []string{"--config", jsCfg, "--data", filepath.Join(dir, "js"), "--addr", freeAddr(t)},
			want: []string{"nats.url"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.token != "" {
				t.Setenv("RELAY_ADMIN_TOKEN", tc.token)
			}
			code, stderr := serveOnce(t, tc.args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != 2 || len(lines) != 1 {
				t.Fatalf("exit %d with %d line(s) on stderr, want exit 2 and one line:\n%s", code, len(lines), stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("%q does not name %q", lines[0], w)
				}
			}
		})
	}
	// The refused second process left the first one serving.
	if status, msg, err := first.post(context.Background(), "/v1/track", event("dd-after", "")); err != nil || status != 200 {
		t.Fatalf("first relay after the refused second: %d %s %v", status, msg, err)
	}
}

// TestReplayBesideRunningServer: `relay replay` while relay serve runs
// asks the server (admin API) instead of opening its queue, and every
// event, replayed or sent meanwhile, is delivered exactly once.
func TestReplayBesideRunningServer(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Setenv("RELAY_ADMIN_TOKEN", "adm_e2e_replay_token_0123456789")
	ks := startSim(t, sim.Faults{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	r := startRelay(t, relayConfig(t, dir, ks.URL, "{enforceEmailAsPrimary: true}"), data, addr)

	// Without an email these cannot be delivered under enforceEmailAsPrimary.
	const dead = 300
	var events []string
	for i := range dead {
		events = append(events, fmt.Sprintf(`{"type":"track","messageId":"rp-dead-%d","userId":"rp-u%d","event":"Needs Email"}`, i, i))
	}
	if status, msg, err := r.post(context.Background(), "/v1/batch", `{"batch":[`+strings.Join(events, ",")+`]}`); err != nil || status != 200 {
		t.Fatalf("ingest: %d %s %v", status, msg, err)
	}
	testutil.EventuallyWhy(t, 30*time.Second, "dead letters", func() (bool, string) {
		resp, err := adminGet(r, "/admin/deadletters?dest=klaviyo")
		if err != nil {
			return false, err.Error()
		}
		want := fmt.Sprintf(`<b id="pending-count">%d</b>`, dead)
		return strings.Contains(resp, want), "not yet " + want
	})
	r.stop()
	// Settings that can deliver them, applied at this start.
	cfg := relayConfig(t, dir, ks.URL, "{enforceEmailAsPrimary: false}")
	r = startRelay(t, cfg, data, addr)

	// Live traffic throughout the replay: its executing jobs must not be
	// touched by the replay.
	s := newSender("rp-live")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.loop(ctx, func() *relayProc { return r }, 20*time.Millisecond) })
	time.Sleep(500 * time.Millisecond)
	out, err := exec.Command(relayBin, "replay", "--config", cfg, "--data", data, "--dest", "klaviyo").CombinedOutput()
	time.Sleep(500 * time.Millisecond)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("relay replay beside the server: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("re-enqueued %d dead letter", dead)) {
		t.Fatalf("relay replay said: %s", out)
	}
	want := s.ackedIDs()
	for i := range dead {
		want[fmt.Sprintf("rp-dead-%d", i)] = true
	}
	checkExactlyOnce(t, ks, "rp-", want, 60*time.Second)
}

// adminGet reads an admin page with the Bearer token from the environment.
func adminGet(r *relayProc, path string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, r.url(path), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("RELAY_ADMIN_TOKEN"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), err
}
