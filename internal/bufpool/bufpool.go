// Package bufpool keeps slices between uses on relay's hot paths: the
// gateway's per-request buffers and the SQLite queue's encoded blobs.
// Allocated per request they were most of relay's garbage under ingest
// load, and the garbage set how often the GC ran and took cores from the
// requests (docs/BENCHMARKS.md, fourth session).
package bufpool

import (
	"sync"
	"unsafe"
)

// Slices is a pool of slices of T. Set MaxBytes before use; the zero
// value keeps nothing. Like sync.Pool, it must not be copied after use.
type Slices[T any] struct {
	// MaxBytes bounds the capacity, in bytes, of a slice Put keeps, so
	// one oversize request does not pin its buffer for good.
	MaxBytes int
	pool     sync.Pool // of *[]T
}

// Get returns an empty slice, with the capacity of an earlier one when
// one is free.
func (p *Slices[T]) Get() []T {
	if s, ok := p.pool.Get().(*[]T); ok {
		return (*s)[:0]
	}
	return nil
}

// Put hands s back; nothing may use it afterwards. Its elements are
// cleared, so the pool keeps nothing they point to alive.
func (p *Slices[T]) Put(s []T) {
	var zero T
	if cap(s) == 0 || uintptr(cap(s))*unsafe.Sizeof(zero) > uintptr(p.MaxBytes) {
		return
	}
	clear(s)
	p.pool.Put(&s)
}
