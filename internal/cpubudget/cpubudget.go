// Package cpubudget shares the cores between relay's CPU-heavy work:
// parsing ingest requests, which an SDK is waiting on, and preparing
// delivery batches, which Klaviyo's rate limits pace anyway. A Budget has
// a fixed number of slots; work holds one while it runs, and a waiting
// foreground taker (ingest) is served before a background one (delivery),
// except that a background waiter gets every eighth slot while foreground
// takers never let up.
//
// Why: on two cores, with every P busy parsing or mapping, the queue's
// single writer (on every ingest request's critical path) and the
// requests it has just committed waited for a P after each wake-up, and
// that wait was the ingest latency tail. ForCores leaves a core for them
// (cores−1 slots), with delivery's mapping in the same budget. Under
// a sustained overload that P is better spent parsing: a foreground taker
// that has already waited spareAfter takes a spare slot. Measured on two
// cores (docs/BENCHMARKS.md): the spare raised sustained ingest from
// 35–44k to 50–64k events/s with the same p99 at a fixed 19,000 events/s.
//
// TuneRuntime sets what relay serve asks of the Go runtime around the
// cores: spare Ps for goroutines blocked in fsync, and the GC's target.
package cpubudget

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// Budget is a counting semaphore with two priorities and a spare slot.
// The zero value is not usable; create one with New or Default.
type Budget struct {
	mu sync.Mutex
	// limit bounds the slots in use normally; max, when above it, adds
	// spare slots that only a foreground taker that has already waited
	// spareAfter may take: under a sustained overload every core parses
	// (throughput), below it one core stays for the queue's writer
	// (latency).
	limit, max int
	inUse      int
	// Waiters in arrival order, foreground first when a slot frees. Each
	// channel is buffered 1 and receives exactly one grant.
	fg, bg []chan struct{}
	// passed counts slots handed to foreground waiters in a row while a
	// background one waited (see backgroundEvery).
	passed int
}

// backgroundEvery: while foreground takers queue without pause, every
// backgroundEvery-th freed slot still goes to a waiting background taker,
// so delivery keeps a trickle (a slot for ~1 ms in every ~8 parses) under
// an ingest overload instead of stopping until it ends.
const backgroundEvery = 8

// spareAfter is how long a foreground taker waits before it may take a
// spare slot.
const spareAfter = 5 * time.Millisecond

// New returns a budget of slots slots (at least 1) and no spare.
func New(slots int) *Budget {
	slots = max(slots, 1)
	return &Budget{limit: slots, max: slots}
}

// Default is ForCores(GOMAXPROCS).
func Default() *Budget { return ForCores(runtime.GOMAXPROCS(0)) }

// ForCores is a budget for n cores: n−1 slots (at least 1) plus one spare.
func ForCores(n int) *Budget {
	return &Budget{limit: max(n-1, 1), max: max(n, 1)}
}

// syscallProcs is how many Ps TuneRuntime adds above the cores. The SQLite
// driver's file writes and fsyncs are plain blocking syscalls, and a
// goroutine in a syscall keeps its P until the runtime's monitor takes it
// back, which can take up to 10 ms when the monitor has been idle. With
// GOMAXPROCS at the core count, the queue's writer and the checkpointer
// (or the store) in fsync at once left no P for anything else: execution
// traces at half load on two cores showed 6–9 ingest requests runnable
// and none running for 30 ms. Two spare Ps cover those goroutines.
const syscallProcs = 2

// gcPercent is relay serve's GOGC. Ingest allocates about the bodies'
// size again (payloads, queue blobs, delivery's decoding), and at the
// default of 100 the collector ran about three times a second at half
// load; while it marks, its workers take a quarter of the Ps, which on two
// cores is most of a core. At 200 it runs half as often. Measured on two
// cores (docs/BENCHMARKS.md): p99 at 55,000 events/s 16–19 → 12–18 ms;
// resident memory with 1,000,000 events queued 169 → 217 MB.
const gcPercent = 200

// TuneRuntime sets GOMAXPROCS to the cores plus syscallProcs and the GC
// target to gcPercent, and returns the cores (GOMAXPROCS as the runtime
// chose it: the CPU count or the container's CPU limit), for ForCores.
// GOMAXPROCS or GOGC set in the environment are the operator's choice and
// are left alone (a GOMAXPROCS set there is then taken as the cores).
func TuneRuntime(env func(string) (string, bool)) (cores int) {
	cores = runtime.GOMAXPROCS(0)
	if _, set := env("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(cores + syscallProcs)
	}
	if _, set := env("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	return cores
}

// minMemoryLimit is the least soft memory limit LimitMemory sets.
const minMemoryLimit = 200 << 20

// LimitMemory sets the Go runtime's soft memory limit to four times the
// request bytes ingest may hold in flight, and at least minMemoryLimit,
// unless GOMEMLIMIT is set in the environment (the operator's choice).
// GOGC 200 lets the heap grow to three times what is live before it is
// collected: under a burst of large batches that slack, not live data,
// took relay past 300 MB resident (issue 14's bound; 300–380 MB measured,
// 223–229 MB with this limit, the same batches accepted). The limit is
// soft: a live heap above it is still served, the collector just runs
// more. It returns the limit in force.
func LimitMemory(env func(string) (string, bool), bodyBytesInFlight int64) int64 {
	if _, set := env("GOMEMLIMIT"); set {
		return debug.SetMemoryLimit(-1)
	}
	limit := max(int64(minMemoryLimit), 4*bodyBytesInFlight)
	debug.SetMemoryLimit(limit)
	return limit
}

// Foreground takes a slot ahead of every background waiter.
func (b *Budget) Foreground(ctx context.Context) error { return b.acquire(ctx, true) }

// Background takes a slot once no foreground taker waits.
func (b *Budget) Background(ctx context.Context) error { return b.acquire(ctx, false) }

// Release gives back a slot taken by Foreground or Background.
func (b *Budget) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inUse--
	if b.inUse >= b.limit {
		return // a spare slot came back
	}
	starving := len(b.bg) > 0 && b.passed >= backgroundEvery-1
	switch {
	case len(b.fg) > 0 && !starving:
		b.fg[0] <- struct{}{}
		b.fg = b.fg[1:]
		if len(b.bg) > 0 {
			b.passed++
		}
	case len(b.bg) > 0:
		b.bg[0] <- struct{}{}
		b.bg = b.bg[1:]
		b.passed = 0
	default:
		return
	}
	b.inUse++
}

func (b *Budget) acquire(ctx context.Context, fg bool) error {
	b.mu.Lock()
	if b.inUse < b.limit && (fg || len(b.fg) == 0) {
		b.inUse++
		b.mu.Unlock()
		return nil
	}
	grant := make(chan struct{}, 1)
	if fg {
		b.fg = append(b.fg, grant)
	} else {
		b.bg = append(b.bg, grant)
	}
	b.mu.Unlock()
	var spare <-chan time.Time
	if fg && b.max > b.limit {
		t := time.NewTimer(spareAfter)
		defer t.Stop()
		spare = t.C
	}
	for {
		select {
		case <-grant:
			return nil
		case <-spare:
			spare = nil
			b.mu.Lock()
			took := b.inUse < b.max && remove(&b.fg, grant)
			if took {
				b.inUse++
			}
			b.mu.Unlock()
			if took {
				return nil
			}
		case <-ctx.Done():
			b.mu.Lock()
			removed := remove(&b.fg, grant) || remove(&b.bg, grant)
			b.mu.Unlock()
			if !removed {
				// Granted while giving up: hand the slot on.
				<-grant
				b.Release()
			}
			return ctx.Err()
		}
	}
}

// remove deletes c from *q and reports whether it was there.
func remove(q *[]chan struct{}, c chan struct{}) bool {
	for i, w := range *q {
		if w == c {
			*q = append((*q)[:i], (*q)[i+1:]...)
			return true
		}
	}
	return false
}
