package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/testutil"
)

// maxBadInputRSS bounds relay serve's resident memory while it is fed the
// bad-input corpus: 4 MB request bodies, at most a few dozen at once, must
// never add up to more than this (relay idles at about 30 MB).
const maxBadInputRSS = 300 << 20

// goodAnswerWithin is how long a good request may take while the server is
// under the bad input; it is a liveness bound, far above normal latency.
const goodAnswerWithin = 10 * time.Second

// badRequest is one entry of the corpus: what is sent and the answer the
// gateway documents for it (internal/gateway's package comment).
type badRequest struct {
	name     string
	path     string
	auth     string // write key for Basic auth; "-" for none
	encoding string // Content-Encoding
	body     func() io.Reader
	want     int
	// parallel sends the request this many times at once (memory bound).
	parallel int
	// orBusy also accepts 429: the bodies in flight are bounded in bytes.
	orBusy bool
}

func strBody(s string) func() io.Reader { return func() io.Reader { return strings.NewReader(s) } }

// event builds one track event with the given extra members.
func event(id, extra string) string {
	if extra != "" {
		extra = "," + extra
	}
	return fmt.Sprintf(`{"type":"track","messageId":%q,"userId":"bad-u","event":"Bad Input"%s}`, id, extra)
}

// gzipBomb is a gzip stream that inflates to n zero bytes (about 1/1000 of
// n on the wire).
func gzipBomb(n int64) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	chunk := make([]byte, 1<<20)
	for w := int64(0); w < n; w += int64(len(chunk)) {
		_, _ = zw.Write(chunk)
	}
	_ = zw.Close()
	return buf.Bytes()
}

func badInputCorpus() []badRequest {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	deepSmall := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	huge := strings.Repeat("x", 5<<20)
	bigEvent := strings.Repeat("y", 40<<10)
	hugeArray := "[" + strings.Repeat("0,", 1<<20) + "0]"
	bomb := gzipBomb(512 << 20)
	wrong := []string{}
	// Every field with a type it cannot have.
	for _, f := range []string{"type", "event", "userId", "anonymousId", "messageId", "timestamp", "sentAt",
		"originalTimestamp", "properties", "traits", "context", "integrations"} {
		for _, v := range []string{`12`, `[1,2]`, `{"x":1}`, `true`, `null`, `""`} {
			wrong = append(wrong, fmt.Sprintf(`{"type":"track","messageId":"wt-%s-%d","userId":"u","event":"E",%q:%s}`, f, len(wrong), f, v))
		}
	}
	wrongTypes := `{"batch":[` + strings.Join(wrong, ",") + `]}`
	one := event("bad-ok-1", "")
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = io.WriteString(zw, `{"batch":[`+one+`]}`)
	_ = zw.Close()
	gzipped := zb.Bytes()
	return []badRequest{
		{name: "malformed JSON", path: "/v1/batch", body: strBody(`{"batch":[{"type":"track",]}`), want: 400},
		{name: "truncated JSON", path: "/v1/batch", body: strBody(`{"batch":[` + one + `,` + one[:len(one)/2]), want: 400},
		{name: "not JSON at all", path: "/v1/track", body: strBody("\x00\x01\x02 hello"), want: 400},
		{name: "empty body", path: "/v1/track", body: strBody(""), want: 400},
		{name: "empty batch", path: "/v1/batch", body: strBody(`{"batch":[]}`), want: 400},
		// Invalid UTF-8 inside strings is replaced with U+FFFD (as
		// encoding/json does), and the event is accepted.
		{name: "invalid UTF-8 in strings", path: "/v1/track", body: strBody(event("bad-utf8", "\"properties\":{\"name\":\"caf\xe9 \xff\xfe\"}")), want: 200},
		{name: "invalid UTF-8 outside strings", path: "/v1/track", body: strBody("{\xff\"type\":\"track\"}"), want: 400},
		// Deeper than encoding/json's 10,000 levels: the body is not
		// readable JSON at all.
		{name: "deep nesting, 100k levels", path: "/v1/track", body: strBody(event("bad-deep", `"properties":{"a":`+deep+`}`)), want: 400},
		{name: "deep nesting, 5k objects", path: "/v1/track", body: strBody(event("bad-deep-obj", `"properties":{"a":`+deepSmall+`}`)), want: 200},
		{name: "deep nesting as the body", path: "/v1/batch", body: strBody(deep), want: 400},
		{name: "huge string over the request limit", path: "/v1/track", body: strBody(event("bad-huge", `"properties":{"s":"`+huge+`"}`)), want: 413},
		{name: "event over 32 KB in a batch", path: "/v1/batch", body: strBody(`{"batch":[` + event("bad-big", `"properties":{"s":"`+bigEvent+`"}`) + `,` + event("bad-ok-2", "") + `]}`), want: 200},
		{name: "event over 32 KB alone on a single-event route", path: "/v1/track", body: strBody(event("bad-big-alone", `"properties":{"s":"`+bigEvent+`"}`)), want: 400},
		// A single-event route answers 400 for an event over 32 KB: a 200
		// would claim it was kept.
		{name: "huge array", path: "/v1/track", body: strBody(event("bad-array", `"properties":{"a":`+hugeArray+`}`)), want: 400},
		// Over spec.MaxBatchEvents elements (a million bare numbers once
		// cost relay over 1 GB of memory).
		{name: "huge array as the batch", path: "/v1/batch", body: strBody(`{"batch":` + hugeArray + `}`), want: 400, parallel: 4},
		{name: "wrong types in every field", path: "/v1/batch", body: strBody(wrongTypes), want: 200},
		{name: "gzip bomb", path: "/v1/batch", encoding: "gzip", body: func() io.Reader { return bytes.NewReader(bomb) }, want: 413, parallel: 8},
		{name: "truncated gzip", path: "/v1/batch", encoding: "gzip", body: func() io.Reader { return bytes.NewReader(gzipped[:len(gzipped)/2]) }, want: 400},
		{name: "unsupported encoding", path: "/v1/batch", encoding: "br", body: strBody(one), want: 415},
		{name: "unknown write key", path: "/v1/track", auth: "WK_nobody", body: strBody(one), want: 401},
		{name: "no write key", path: "/v1/track", auth: "-", body: strBody(one), want: 401},
		{name: "unknown path", path: "/v1/nothing", body: strBody(one), want: 404},
		{name: "4 MB bodies at once", path: "/v1/track", body: strBody(event("bad-huge-par", `"properties":{"s":"`+huge[:4000<<10-200]+`"}`)), want: 400, parallel: 16, orBusy: true},
	}
}

// TestBadInputCorpus fires malformed, oversized and hostile requests at a
// running relay serve, with slow-loris clients holding connections
// throughout. Each gets its documented answer; between requests a good
// event is still accepted promptly, and the process's resident memory stays
// under maxBadInputRSS.
func TestBadInputCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ks := startSim(t, sim.Faults{})
	dir := t.TempDir()
	r := startRelay(t, relayConfig(t, dir, ks.URL, ""), filepath.Join(dir, "data"), freeAddr(t))
	pid := r.cmd.Process.Pid

	// Slow-loris clients: headers a byte at a time, and bodies a byte at
	// a time, for as long as the server lets them.
	loris := startSlowLoris(t, r.addr, 50)

	good := 0
	checkGood := func(after string) {
		t.Helper()
		good++
		ctx, cancel := context.WithTimeout(context.Background(), goodAnswerWithin)
		defer cancel()
		status, msg, err := r.post(ctx, "/v1/track", event(fmt.Sprintf("bad-good-%d", good), ""))
		if err != nil || status != 200 {
			t.Fatalf("after %s: a good event got %d %s %v", after, status, msg, err)
		}
		if rss := vmRSS(t, pid); rss > maxBadInputRSS {
			t.Fatalf("after %s: relay RSS %d MB, over %d MB", after, rss>>20, maxBadInputRSS>>20)
		}
	}
	checkGood("start")
	peak := int64(0)
	for _, tc := range badInputCorpus() {
		n := max(tc.parallel, 1)
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, msg, err := rawPost(r, tc)
				if err != nil {
					errs <- err.Error()
				} else if status != tc.want && !(tc.orBusy && status == http.StatusTooManyRequests) {
					errs <- fmt.Sprintf("got %d, want %d: %s", status, tc.want, msg)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("%s: %s", tc.name, e)
		}
		peak = max(peak, vmRSS(t, pid))
		checkGood(tc.name)
	}
	loris.check(t)
	checkGood("slow-loris clients")
	hwm := procStatusKB(t, pid, "VmHWM") << 10
	t.Logf("good events accepted: %d; RSS peak seen %d MB, VmHWM %d MB", good, peak>>20, hwm>>20)
	if hwm > maxBadInputRSS {
		t.Errorf("relay's peak RSS (VmHWM) %d MB is over %d MB", hwm>>20, maxBadInputRSS>>20)
	}
	testutil.EventuallyWhy(t, 30*time.Second, "good events delivered", func() (bool, string) {
		n := countPrefix(ks.State().Events, "bad-good-")
		return n == good, fmt.Sprintf("%d of %d", n, good)
	})
}

// rawPost sends one corpus request.
func rawPost(r *relayProc, tc badRequest) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url(tc.path), tc.body())
	if err != nil {
		return 0, "", err
	}
	switch tc.auth {
	case "":
		req.SetBasicAuth(writeKey, "")
	case "-":
	default:
		req.SetBasicAuth(tc.auth, "")
	}
	if tc.encoding != "" {
		req.Header.Set("Content-Encoding", tc.encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b), nil
}

func procStatusKB(t *testing.T, pid int, key string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc/%d/status: %v", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

// vmRSS is a process's resident memory in bytes.
func vmRSS(t *testing.T, pid int) int64 { return procStatusKB(t, pid, "VmRSS") << 10 }

// slowLoris holds connections that send a request a byte at a time.
type slowLoris struct {
	mu     sync.Mutex
	closed int // connections the server closed or answered
	total  int
	status map[string]int
	wg     sync.WaitGroup
	stop   chan struct{}
}

// startSlowLoris opens n connections: half trickle their headers, half
// send full headers and then trickle a body. The server must cut them all
// off (ReadHeaderTimeout, ReadTimeout) rather than hold them forever.
func startSlowLoris(t *testing.T, addr string, n int) *slowLoris {
	t.Helper()
	l := &slowLoris{total: n, status: map[string]int{}, stop: make(chan struct{})}
	t.Cleanup(func() { close(l.stop); l.wg.Wait() })
	for i := range n {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		var head, trickle string
		if i%2 == 0 {
			head, trickle = "POST /v1/track HTTP/1.1\r\nHost: relay\r\n", "X-Slow: "+strings.Repeat("a", 1000)
		} else {
			auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":"))
			head = "POST /v1/track HTTP/1.1\r\nHost: relay\r\nAuthorization: " + auth + "\r\nContent-Length: 100000\r\n\r\n"
			trickle = strings.Repeat(" ", 100000)
		}
		l.wg.Add(1)
		go l.run(conn, head, trickle)
	}
	return l
}

func (l *slowLoris) run(conn net.Conn, head, trickle string) {
	defer l.wg.Done()
	defer conn.Close()
	done := make(chan string, 1)
	go func() {
		// The server's answer, or the close, ends the connection.
		b, err := io.ReadAll(io.LimitReader(conn, 4096))
		switch {
		case len(b) > 12 && bytes.HasPrefix(b, []byte("HTTP/1.1 ")):
			done <- string(b[9:12])
		case err != nil:
			done <- "error"
		default:
			done <- "closed"
		}
	}()
	_, _ = io.WriteString(conn, head)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case how := <-done:
			l.mu.Lock()
			l.closed++
			l.status[how]++
			l.mu.Unlock()
			return
		case <-l.stop:
			return
		case <-tick.C:
			if i < len(trickle) {
				_, _ = conn.Write([]byte{trickle[i]})
			}
		}
	}
}

// check waits until the server has cut off every slow connection: headers
// within ReadHeaderTimeout (5 s), bodies within ReadTimeout (30 s).
func (l *slowLoris) check(t *testing.T) {
	t.Helper()
	testutil.EventuallyWhy(t, 45*time.Second, "slow-loris connections cut off", func() (bool, string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.closed == l.total, fmt.Sprintf("%d of %d closed by the server (%v)", l.closed, l.total, l.status)
	})
	l.mu.Lock()
	t.Logf("slow-loris connections ended: %v", l.status)
	l.mu.Unlock()
}
