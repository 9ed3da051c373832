package cpubudget

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/testutil"
)

// A freed slot goes to a foreground waiter even if a background one has
// waited longer.
func TestForegroundFirst(t *testing.T) {
	b := New(1)
	ctx := context.Background()
	if err := b.Background(ctx); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := b.Background(ctx); err == nil {
			order <- "background"
			b.Release()
		}
	})
	testutil.Eventually(t, 5*time.Second, "condition", func() bool { return waiting(b) == 1 })
	wg.Go(func() {
		if err := b.Foreground(ctx); err == nil {
			order <- "foreground"
			b.Release()
		}
	})
	testutil.Eventually(t, 5*time.Second, "condition", func() bool { return waiting(b) == 2 })
	b.Release()
	wg.Wait()
	if first := <-order; first != "foreground" {
		t.Errorf("first served: %s, want foreground", first)
	}
}

// A background taker does not jump ahead of waiting foreground takers even
// when it arrives just as a slot is free.
func TestBackgroundYieldsToWaiters(t *testing.T) {
	b := New(2)
	ctx := context.Background()
	_ = b.Foreground(ctx)
	_ = b.Foreground(ctx)
	done := make(chan struct{})
	go func() {
		_ = b.Foreground(ctx)
		close(done)
	}()
	testutil.Eventually(t, 5*time.Second, "condition", func() bool { return waiting(b) == 1 })
	b.Release() // to the waiting foreground
	<-done
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.Background(short); err == nil {
		t.Fatal("background took a slot while both were held")
	}
}

// A canceled waiter leaves the queue and never holds a slot; a slot
// granted as it gave up is passed on.
func TestCancel(t *testing.T) {
	b := New(1)
	if err := b.Foreground(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Background(ctx) }()
	testutil.Eventually(t, 5*time.Second, "condition", func() bool { return waiting(b) == 1 })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("canceled acquire succeeded")
	}
	b.Release()
	if err := b.Foreground(context.Background()); err != nil {
		t.Fatalf("slot lost after a canceled waiter: %v", err)
	}
}

func TestNewAtLeastOne(t *testing.T) {
	b := New(0)
	if err := b.Foreground(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func waiting(b *Budget) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.fg) + len(b.bg)
}

// Under a foreground load that never lets up, a background waiter is
// still served within backgroundEvery grants.
func TestBackgroundIsNotStarved(t *testing.T) {
	b := New(1)
	ctx := context.Background()
	_ = b.Foreground(ctx)
	bgDone := make(chan struct{})
	go func() {
		_ = b.Background(ctx)
		close(bgDone)
	}()
	testutil.Eventually(t, 5*time.Second, "condition", func() bool { return waiting(b) == 1 })
	grants := 0
	for {
		// A foreground taker is always waiting when the slot frees.
		fgDone := make(chan struct{})
		go func() {
			_ = b.Foreground(ctx)
			close(fgDone)
		}()
		testutil.Eventually(t, 5*time.Second, "condition", func() bool { return waiting(b) >= 2 || isClosed(bgDone) })
		b.Release()
		select {
		case <-bgDone:
			if grants >= backgroundEvery {
				t.Errorf("background served after %d foreground grants, want < %d", grants, backgroundEvery)
			}
			b.Release()
			<-fgDone
			return
		case <-fgDone:
			grants++
			if grants > 2*backgroundEvery {
				t.Fatal("background never served")
			}
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// A foreground taker that has waited spareAfter takes the spare slot; a
// background one never does.
func TestSpare(t *testing.T) {
	b := &Budget{limit: 1, max: 2}
	ctx := context.Background()
	if err := b.Foreground(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 3*spareAfter)
	defer cancel()
	if err := b.Background(short); err == nil {
		t.Fatal("background took the spare slot")
	}
	start := time.Now()
	if err := b.Foreground(ctx); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < spareAfter {
		t.Errorf("spare taken after %v, before spareAfter", waited)
	}
	// Both slots are in use now: a third waits for a release.
	third := make(chan struct{})
	go func() {
		_ = b.Foreground(ctx)
		close(third)
	}()
	time.Sleep(3 * spareAfter)
	if isClosed(third) {
		t.Fatal("a third slot was taken")
	}
	b.Release() // the spare comes back: not handed on, one is still in use above limit
	b.Release()
	<-third
}

func TestTuneRuntime(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	gcBefore := debug.SetGCPercent(100)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(before)
		debug.SetGCPercent(gcBefore)
	})

	noEnv := func(string) (string, bool) { return "", false }
	if cores := TuneRuntime(noEnv); cores != before {
		t.Errorf("cores = %d, want GOMAXPROCS %d", cores, before)
	}
	if got := runtime.GOMAXPROCS(0); got != before+syscallProcs {
		t.Errorf("GOMAXPROCS after TuneRuntime = %d, want %d", got, before+syscallProcs)
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent after TuneRuntime = %d, want %d", got, gcPercent)
	}

	runtime.GOMAXPROCS(before)
	setByOperator := func(k string) (string, bool) { return "3", k == "GOMAXPROCS" || k == "GOGC" }
	if cores := TuneRuntime(setByOperator); cores != before {
		t.Errorf("cores with GOMAXPROCS set = %d, want %d", cores, before)
	}
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("GOMAXPROCS set in the environment was changed to %d", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set in the environment was changed to %d", got)
	}
}

func TestForCores(t *testing.T) {
	for _, tc := range []struct{ cores, limit, max int }{{1, 1, 1}, {2, 1, 2}, {8, 7, 8}, {0, 1, 1}} {
		b := ForCores(tc.cores)
		if b.limit != tc.limit || b.max != tc.max {
			t.Errorf("ForCores(%d): %d slots + spare to %d, want %d and %d", tc.cores, b.limit, b.max, tc.limit, tc.max)
		}
	}
}

func TestLimitMemory(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	noEnv := func(string) (string, bool) { return "", false }
	for _, tc := range []struct{ inFlight, want int64 }{
		{48 << 20, minMemoryLimit},
		{256 << 20, 1 << 30},
	} {
		if got := LimitMemory(noEnv, tc.inFlight); got != tc.want || debug.SetMemoryLimit(-1) != tc.want {
			t.Errorf("in flight %d: limit %d (runtime %d), want %d", tc.inFlight, got, debug.SetMemoryLimit(-1), tc.want)
		}
	}
	debug.SetMemoryLimit(123 << 20)
	set := func(k string) (string, bool) { return "123MiB", k == "GOMEMLIMIT" }
	if got := LimitMemory(set, 48<<20); got != 123<<20 {
		t.Errorf("GOMEMLIMIT set in the environment: limit %d, want it left at %d", got, 123<<20)
	}
}
