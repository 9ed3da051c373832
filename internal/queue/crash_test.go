package queue_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/queue"
)

// crashEnv names the database a re-executed test binary enqueues into
// until it is killed.
const crashEnv = "RELAY_QUEUE_CRASH_CHILD_DB"

// TestCrashDurability re-executes the test binary as a child that enqueues
// from several goroutines and prints "ack <messageId>" for every message
// once Enqueue has returned. The parent SIGKILLs it mid-stream, reopens the
// database and checks that every acknowledged message is there exactly
// once. Three rounds on the same file, killed at different points.
func TestCrashDurability(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path, os.Getenv("RELAY_QUEUE_CRASH_ROUND"))
		return
	}
	if testing.Short() {
		t.Skip("short: re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "queue.db")
	acked := map[string]bool{}
	for round, killAfter := range []int{300, 1500, 4000} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path, fmt.Sprintf("RELAY_QUEUE_CRASH_ROUND=%d", round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Should the child stall before killAfter acks, kill it anyway so
		// the test fails instead of hanging.
		watchdog := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
		n := 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			id, ok := strings.CutPrefix(sc.Text(), "ack ")
			if !ok {
				continue
			}
			acked[id] = true
			if n++; n == killAfter {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatal(err)
				}
			}
		}
		err = cmd.Wait()
		if !watchdog.Stop() {
			t.Fatalf("round %d: child stalled after %d acks; stderr:\n%s", round, n, stderr.String())
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != -1 {
			t.Fatalf("round %d: child ended with %v after %d acks, not killed; stderr:\n%s", round, err, n, stderr.String())
		}
		checkAcked(t, path, acked, round)
	}
}

func checkAcked(t *testing.T, path string, acked map[string]bool, round int) {
	t.Helper()
	ctx := context.Background()
	q, err := queue.OpenSQLite(ctx, path, queue.SQLiteOptions{}, discard())
	if err != nil {
		t.Fatalf("round %d: reopen after kill: %v", round, err)
	}
	defer closeQ(t, q)
	seen := map[string]int{}
	var after int64
	for {
		page, err := q.List(ctx, queue.ListFilter{AfterID: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, j := range page {
			seen[j.MessageID]++
			if j.State != queue.StatePending {
				t.Errorf("message %s is %s", j.MessageID, j.State)
			}
		}
		after = page[len(page)-1].ID
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("round %d: message %s stored %d times", round, id, c)
		}
	}
	for id := range acked {
		if seen[id] == 0 {
			t.Errorf("round %d: acknowledged message %s lost", round, id)
		}
	}
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Depth != int64(len(seen)) {
		t.Errorf("round %d: Stats.Depth %d, rows %d", round, st.Depth, len(seen))
	}
	t.Logf("round %d: %d acknowledged so far, %d stored", round, len(acked), len(seen))
}

// crashChild enqueues until killed (or a minute passes, should the parent
// have vanished).
func crashChild(path, round string) {
	q, err := queue.OpenSQLite(context.Background(), path, queue.SQLiteOptions{}, discard())
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	// The deadline also bounds a stuck Enqueue, so the child never outlives
	// the test even if the writer hangs.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				msgs := make([]queue.Message, 1+(g+i)%10)
				var lines strings.Builder
				for k := range msgs {
					id := fmt.Sprintf("r%s-g%d-%d-%d", round, g, i, k)
					msgs[k] = queue.Message{Source: "web", Dest: "klaviyo", Key: fmt.Sprintf("u%d", i%13), MessageID: id,
						Payload: bytes.Repeat([]byte{'x'}, 500), ReceivedAt: time.Now()}
					fmt.Fprintf(&lines, "ack %s\n", id)
				}
				if err := q.Enqueue(ctx, msgs); err != nil {
					fmt.Fprintln(os.Stderr, "enqueue:", err)
					os.Exit(4)
				}
				mu.Lock()
				os.Stdout.WriteString(lines.String())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(5)
}
