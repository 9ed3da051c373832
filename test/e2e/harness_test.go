package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// relayBin is the relay binary built once for the whole package.
var relayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "relay-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	relayBin = filepath.Join(dir, "relay")
	build := exec.Command("go", "build", "-o", relayBin, "github.com/relaycdp/relay/cmd/relay")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build relay:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	simKey   = "pk_e2e_private_key"
	writeKey = "WK_e2e_123"
)

// klaviyoSim is the simulator the relay under test delivers to; it runs in
// the test process so it survives the relay's kills.
type klaviyoSim struct {
	*sim.Sim
	URL string
}

func startSim(t *testing.T, faults sim.Faults) *klaviyoSim {
	t.Helper()
	s, err := sim.New(sim.Config{Keys: []string{simKey}, RateLimits: true, Faults: faults, JobDelay: 20 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close() })
	return &klaviyoSim{Sim: s, URL: srv.URL}
}

// relayProc is one `relay serve` process.
type relayProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

// relayConfig writes a relay.yaml delivering source "e2e" to the simulator
// with the given extra settings.
func relayConfig(t *testing.T, dir, simURL string, settings string) string {
	t.Helper()
	if settings == "" {
		settings = "{}"
	}
	cfg := fmt.Sprintf(`
sources:
  - name: e2e
    writeKeys: [%s]
destinations:
  - name: klaviyo
    type: klaviyo
    sources: [e2e]
    endpoint: %s
    settings: %s
delivery:
  batchWait: 200ms
log:
  level: warn
`, writeKey, simURL, settings)
	path := filepath.Join(dir, "relay.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startRelay runs relay serve and waits until /health answers.
func startRelay(t *testing.T, cfgPath, dataDir, addr string) *relayProc {
	t.Helper()
	p := &relayProc{t: t, addr: addr, done: make(chan struct{})}
	p.cmd = exec.Command(relayBin, "serve", "--config", cfgPath, "--data", dataDir, "--addr", addr)
	p.cmd.Env = append(os.Environ(), "RELAY_DEST_KLAVIYO_PRIVATEAPIKEY="+simKey)
	out, _ := p.cmd.StderrPipe()
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	testutil.EventuallyWhy(t, 20*time.Second, "relay /health", func() (bool, string) {
		select {
		case <-p.done:
			t.Fatalf("relay exited at start:\n%s", p.Logs())
		default:
		}
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return p
}

func (p *relayProc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// kill sends SIGKILL: no shutdown code runs.
func (p *relayProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *relayProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.kill()
	}
}

func (p *relayProc) url(path string) string { return "http://" + p.addr + path }

// post sends a body with Basic auth and returns the status.
func (p *relayProc) post(ctx context.Context, path, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", p.url(path), strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.SetBasicAuth(writeKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// checkAckedOnce waits until every acknowledged event with the prefix is
// in Klaviyo exactly once.
func checkAckedOnce(t *testing.T, ks *klaviyoSim, prefix string, acked map[string]bool, timeout time.Duration) {
	t.Helper()
	testutil.EventuallyWhy(t, timeout, "every acknowledged event delivered", func() (bool, string) {
		seen := map[string]int{}
		for _, e := range ks.State().Events {
			if strings.HasPrefix(e.UniqueID, prefix) {
				seen[e.UniqueID]++
			}
		}
		missing := 0
		for id := range acked {
			if seen[id] == 0 {
				missing++
			}
		}
		for id, c := range seen {
			if c != 1 {
				t.Fatalf("event %s stored %d times", id, c)
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d acknowledged events missing", missing, len(acked))
	})
}
