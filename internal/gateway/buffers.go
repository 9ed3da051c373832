package gateway

import (
	"github.com/relaycdp/relay/internal/bufpool"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
)

// buffers recycles what every ingest request needs in about the body's
// size: the body as read, the payloads spec.Parse writes for the queue,
// the parsed items and the queue messages (about 400 KB for a 100-event
// batch).
type buffers struct {
	bytes    bufpool.Slices[byte]
	items    bufpool.Slices[spec.Item]
	messages bufpool.Slices[queue.Message]
}

// maxPooled bounds the bytes of a slice that goes back to a pool: SDK
// batches are at most 500 KB, and one oversize body should not stay
// pinned.
const maxPooled = 1 << 20

// setLimits bounds every pool by maxPooled (the pools keep nothing until
// it is called).
func (b *buffers) setLimits() {
	b.bytes.MaxBytes, b.items.MaxBytes, b.messages.MaxBytes = maxPooled, maxPooled, maxPooled
}
