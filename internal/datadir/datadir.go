// Package datadir owns the exclusive lock on relay's data directory: one
// process at a time may open the embedded store and queue in it (as NATS
// and Kafka lock theirs). The lock file also tells other relay commands
// which process holds it and where its admin API listens, so `relay
// replay` can ask the running server instead of opening its queue.
package datadir

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FileName is the lock file inside the data directory.
const FileName = "relay.lock"

// Lock is a held data-directory lock. The kernel drops it when the
// process exits, however it exits.
type Lock struct {
	f   *os.File
	pid int
}

// HeldError is returned by Acquire when another process holds the lock.
type HeldError struct {
	Dir      string
	PID      int    // 0 when the holder has not written it yet
	AdminURL string // the holder's admin console URL, "" when unknown
}

func (e *HeldError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("another relay (pid %d)", e.PID)
	}
	return fmt.Sprintf("data dir %s is in use by %s: stop it, or give this one another --data", e.Dir, who)
}

// Acquire creates dir if needed and takes its lock without waiting.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			h := readHolder(path)
			h.Dir = dir
			return nil, h
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l := &Lock{f: f, pid: os.Getpid()}
	if err := l.write(""); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// SetAdminURL records where the holder's admin API answers.
func (l *Lock) SetAdminURL(url string) error { return l.write(url) }

func (l *Lock) write(adminURL string) error {
	content := fmt.Sprintf("pid=%d\nadmin=%s\n", l.pid, adminURL)
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("write lock file: %w", err)
	}
	if _, err := l.f.WriteAt([]byte(content), 0); err != nil {
		return fmt.Errorf("write lock file: %w", err)
	}
	return nil
}

// Close releases the lock. The file stays: removing it would let a
// process that opened it meanwhile lock an unlinked file.
func (l *Lock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}

// readHolder reads what the holder wrote; a half-written file gives zeros.
func readHolder(path string) *HeldError {
	h := &HeldError{}
	f, err := os.Open(path)
	if err != nil {
		return h
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "pid":
			h.PID, _ = strconv.Atoi(v)
		case "admin":
			h.AdminURL = v
		}
	}
	return h
}
