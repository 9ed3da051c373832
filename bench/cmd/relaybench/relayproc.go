package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	benchWriteKey = "WK_bench_0001"
	benchAPIKey   = "pk_bench_private_key"
)

// relayProc is one `relay serve` process on loopback with a fresh data
// directory.
type relayProc struct {
	cmd  *exec.Cmd
	addr string
	dir  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

// startRelay writes a relay.yaml with one source and one Klaviyo
// destination at endpoint and runs bin serve in a new directory under root.
// env is added to its environment (RELAY_QUEUE=jetstream …); extraArgs to
// the command line (relayprof's --pprof).
func startRelay(ctx context.Context, bin, root, endpoint string, env []string, extraArgs ...string) (*relayProc, error) {
	dir, err := os.MkdirTemp(root, "relay-")
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`
sources:
  - name: bench
    writeKeys: [%s]
destinations:
  - name: klaviyo
    type: klaviyo
    sources: [bench]
    endpoint: %s
    settings: {}
log:
  level: warn
`, benchWriteKey, endpoint)
	cfgPath := filepath.Join(dir, "relay.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &relayProc{addr: addr, dir: dir, done: make(chan struct{})}
	args := append([]string{"serve", "--config", cfgPath, "--data", filepath.Join(dir, "data"), "--addr", addr}, extraArgs...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "RELAY_DEST_KLAVIYO_PRIVATEAPIKEY="+benchAPIKey, "RELAY_ADMIN_TOKEN=bench-admin-token")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout = io.Discard
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			if p.logs.Len() < 1<<20 {
				p.logs.WriteString(sc.Text() + "\n")
			}
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("relay serve exited at start:\n%s", p.Logs())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		default:
		}
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("relay serve not healthy after 30 s:\n%s", p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (p *relayProc) pid() int { return p.cmd.Process.Pid }

func (p *relayProc) url(path string) string { return "http://" + p.addr + path }

// Logs returns what the process wrote to stderr (first MB).
func (p *relayProc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stop sends SIGTERM, waits up to 30 s, then SIGKILLs, and removes the
// data directory.
func (p *relayProc) stop() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	}
	os.RemoveAll(p.dir)
}

// rssKB is the process's resident set size now and at its peak.
func (p *relayProc) rssKB() (now, peak int64) {
	now, _ = procKB(p.pid(), "VmRSS")
	peak, _ = procKB(p.pid(), "VmHWM")
	return now, peak
}

// metric sums the samples of one metric family on /metrics (e.g.
// relay_queue_depth over its dest label). A family with no samples (the
// queue-depth gauge of an empty queue has none) reads 0; a failed scrape is
// an error.
func (p *relayProc) metric(ctx context.Context, name string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url("/metrics"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sum := 0.0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return sum, sc.Err()
}

// dataBytes is the size of the data directory's files (queue and store,
// with their WAL files).
func (p *relayProc) dataBytes() int64 {
	var n int64
	_ = filepath.Walk(filepath.Join(p.dir, "data"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
