package testutil

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestEventuallyWaitsForTheCondition(t *testing.T) {
	var n atomic.Int32
	Eventually(t, 5*time.Second, "third call", func() bool { return n.Add(1) >= 3 })
	if n.Load() != 3 {
		t.Errorf("cond called %d times, want 3", n.Load())
	}
}

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = format
}

func TestEventuallyFailsAfterTimeout(t *testing.T) {
	r := &fatalRecorder{TB: t}
	calls := 0
	EventuallyWhy(r, 20*time.Millisecond, "never", func() (bool, string) {
		calls++
		if r.msg != "" {
			return true, "" // stop looping once it failed (a real Fatalf does not return)
		}
		return false, "still no"
	})
	if r.msg == "" || calls < 2 {
		t.Errorf("no failure after the timeout (%d calls)", calls)
	}
}

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(t0)
	c.Add(time.Minute)
	if got := c.Now(); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("Now = %v", got)
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Error("Set")
	}
}
