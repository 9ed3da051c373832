package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// maxAnnouncedRSS bounds relay serve's resident memory while a thousand
// clients announce 4 MB bodies each (issue 14).
const maxAnnouncedRSS = 300 << 20

// TestMemoryBoundedUnderAnnouncedBodies: 1,000 connections each announce a
// 4 MB body, half with a valid write key and half without, and send it
// slowly; 16 honest clients send 3.9 MB batches meanwhile. relay's peak
// resident memory (VmHWM) stays under maxAnnouncedRSS, and a small client
// keeps getting 200s. Memory must follow the bytes that arrived and the
// bodies in flight are bounded, whatever Content-Length says.
func TestMemoryBoundedUnderAnnouncedBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ks := startSim(t, sim.Faults{})
	dir := t.TempDir()
	cfgPath := relayConfig(t, dir, ks.URL, "")
	// A second source feeding no destination takes the big batches, so
	// the simulator is not what this test measures.
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "sources:\n", "sources:\n  - name: bulk\n    writeKeys: [WK_e2e_bulk]\n", 1))
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, cfgPath, filepath.Join(dir, "data"), freeAddr(t))
	pid := r.cmd.Process.Pid

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	const conns = 1000
	const announced = 4_000_000
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":"))
	answered := make(chan string, conns)
	for i := range conns {
		conn, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		head := fmt.Sprintf("POST /v1/batch HTTP/1.1\r\nHost: relay\r\nContent-Length: %d\r\n", announced)
		switch i % 4 {
		case 0, 1:
			head += "Authorization: " + auth + "\r\n"
		case 2:
			// analytics.js's route, where the key may be in the body.
			head = strings.Replace(head, "/v1/batch", "/v1/b", 1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			answered <- trickleBody(ctx, conn, head+"\r\n")
		}()
	}

	// 16 honest clients with 3.9 MB batches of the bulk source: 200, or
	// 429 when the bodies in flight are at their bound.
	big := bigBatch(3_900_000)
	bigStatus := make(chan int, 64)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url("/v1/batch"), strings.NewReader(big))
				req.SetBasicAuth("WK_e2e_bulk", "")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				bigStatus <- resp.StatusCode
			}
		}()
	}

	// The small client: every event answered 200 while the rest goes on.
	good := 0
	peak := int64(0)
	for range 20 {
		good++
		rctx, rcancel := context.WithTimeout(ctx, goodAnswerWithin)
		status, msg, err := r.post(rctx, "/v1/track", event(fmt.Sprintf("mem-good-%d", good), ""))
		rcancel()
		if err != nil || status != 200 {
			t.Fatalf("good event %d got %d %s %v", good, status, msg, err)
		}
		peak = max(peak, vmRSS(t, pid))
		time.Sleep(250 * time.Millisecond)
	}
	hwm := procStatusKB(t, pid, "VmHWM") << 10
	cancel()
	wg.Wait()
	close(answered)
	close(bigStatus)
	how := map[string]int{}
	for a := range answered {
		how[a]++
	}
	bigHow := map[int]int{}
	for s := range bigStatus {
		bigHow[s]++
		if s != 200 && s != 429 {
			t.Errorf("a 3.9 MB batch got %d; want 200 or 429", s)
		}
	}
	t.Logf("announcing connections ended: %v; 3.9 MB batches: %v; RSS peak seen %d MB, VmHWM %d MB",
		how, bigHow, peak>>20, hwm>>20)
	if how["401"] != conns/4 || how["413"] != conns/4 {
		t.Errorf("unauthenticated connections: want %d answered 401 and %d answered 413 before their bodies, got %v",
			conns/4, conns/4, how)
	}
	if bigHow[200] == 0 {
		t.Errorf("no 3.9 MB batch was accepted: %v", bigHow)
	}
	if hwm > maxAnnouncedRSS {
		t.Errorf("relay's peak RSS (VmHWM) %d MB is over %d MB", hwm>>20, maxAnnouncedRSS>>20)
	}
	testutil.EventuallyWhy(t, 30*time.Second, "good events delivered", func() (bool, string) {
		n := countPrefix(ks.State().Events, "mem-good-")
		return n == good, fmt.Sprintf("%d of %d", n, good)
	})
}

// trickleBody sends head, then the body's first kilobyte, then a byte
// every 200 ms until the server answers or ctx ends; it returns the
// answer's status code, "closed" or "open".
func trickleBody(ctx context.Context, conn net.Conn, head string) string {
	defer conn.Close()
	done := make(chan string, 1)
	go func() {
		b := make([]byte, 12)
		if _, err := io.ReadFull(conn, b); err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 ") {
			done <- "closed"
			return
		}
		done <- string(b[9:12])
	}()
	_, _ = io.WriteString(conn, head+`{"batch":[`+strings.Repeat(" ", 1<<10))
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case how := <-done:
			return how
		case <-ctx.Done():
			_ = conn.Close()
			if how := <-done; how != "closed" {
				return how
			}
			return "open"
		case <-tick.C:
			_, _ = conn.Write([]byte(" "))
		}
	}
}

// bigBatch is a batch of about n bytes of small track events.
func bigBatch(n int) string {
	var b strings.Builder
	b.WriteString(`{"batch":[`)
	for i := 0; b.Len() < n-500; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"track","messageId":"big-%d","userId":"u%d","event":"Big Batch","properties":{"pad":"%s"}}`,
			i, i%100, strings.Repeat("p", 300))
	}
	b.WriteString(`]}`)
	return b.String()
}
