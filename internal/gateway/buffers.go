package gateway

import (
	"sync"
	"unsafe"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
)

// buffers recycles what every ingest request needs in about the body's
// size: the body as read, the payloads spec.Parse writes for the queue,
// the parsed items and the queue messages. Allocated per request they were most of the
// gateway's garbage (about 400 KB for a 100-event batch), and under load
// the garbage set how often the GC ran and took cores from the requests.
type buffers struct {
	bytes    slicePool[byte]
	items    slicePool[spec.Item]
	messages slicePool[queue.Message]
}

// maxPooled bounds the bytes of a slice that goes back to a pool: SDK
// batches are at most 500 KB, and one oversize body should not stay
// pinned.
const maxPooled = 1 << 20

// slicePool is a sync.Pool of slices of T.
type slicePool[T any] struct{ pool sync.Pool } // of *[]T

// get returns an empty slice, with capacity from an earlier request when
// one is free.
func (p *slicePool[T]) get() []T {
	if s, ok := p.pool.Get().(*[]T); ok {
		return (*s)[:0]
	}
	return nil
}

// put hands s back; nothing may use it afterwards. Its elements are
// cleared, so the pool keeps nothing they point to alive.
func (p *slicePool[T]) put(s []T) {
	var zero T
	if cap(s) == 0 || uintptr(cap(s))*unsafe.Sizeof(zero) > maxPooled {
		return
	}
	clear(s)
	p.pool.Put(&s)
}
