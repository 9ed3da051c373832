package datadir

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestAcquireIsExclusive(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetAdminURL("http://127.0.0.1:8080/admin"); err != nil {
		t.Fatal(err)
	}
	// flock belongs to the open file, so a second open in this process
	// is refused like another process would be.
	_, err = Acquire(dir)
	held, ok := errors.AsType[*HeldError](err)
	if !ok {
		t.Fatalf("second Acquire: %v, want a HeldError", err)
	}
	if held.PID != os.Getpid() || held.AdminURL != "http://127.0.0.1:8080/admin" {
		t.Errorf("holder %+v, want pid %d and the admin URL", held, os.Getpid())
	}
	if msg := held.Error(); !strings.Contains(msg, "pid ") || !strings.Contains(msg, dir) {
		t.Errorf("message %q does not name the pid and the dir", msg)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Close: %v", err)
	}
	l2.Close()
}
