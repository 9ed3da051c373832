package queue

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/klauspost/compress/s2"
)

// The inbox is where Enqueue writes: one row per destination of each
// Enqueue call, holding all of that call's messages for it as one encoded
// blob (inboxData). Measured on this machine size, a row and an index entry
// per message, plus a payload row, cost about 15 µs of the single writer
// per event, and every request waits for the writer; one row per request
// costs a fraction of that, so the writer is free sooner for the next
// request. Claims turn inbox rows into job rows (expand) only as delivery
// needs them, oldest first, at delivery's pace, which Klaviyo's rate
// limits hold far below ingest's.
//
// Invariant that keeps per-key order: ids are handed out in commit order,
// an inbox row's messages have the ids id … id+n-1, and expansion always
// takes the row with the smallest id, so every job row has a smaller id
// than every message still in the inbox. A claim that scans the job rows
// and, only when they run out, expands the next inbox row sees the
// destination's messages in id order, as if they had been rows all along.

// inboxVersion is the first byte of every inbox blob.
const inboxVersion = 1

// maxInboxDecoded bounds the decoded size of one blob (one Enqueue call's
// messages for one destination; the gateway's bodies are far smaller), so
// a damaged length cannot make decodeInbox allocate without limit.
const maxInboxDecoded = 256 << 20

// errInboxCorrupt marks an inbox blob that does not decode.
var errInboxCorrupt = errors.New("inbox blob is corrupt")

// encodeInbox encodes msgs (all for one destination) as an inbox blob:
// the version byte, then an s2 block of, per message, its source, key,
// message id, ReceivedAt (Unix nanoseconds, 0 when unset) and payload,
// strings and payload as uvarint length + bytes. Encoding runs in the
// caller's goroutine, not the writer's.
//
// Why s2: under ingest load the writer's time goes mostly to the WAL's
// writes and fsync, whose latency grows with the bytes written; a batch of
// corpus events compresses 4.4× with s2 at ~1 µs an event on this machine
// size (zstd's fastest level: 7× at ~5 µs an event).
func encodeInbox(msgs []Message) []byte { return new(inboxScratch).encode(msgs, nil) }

// inboxScratch holds encode's working buffers between calls (SQLite keeps
// them in a sync.Pool): the plain and the compressed form are each about
// the request body's size and live only until the blob is copied out, and
// allocating them per request was a quarter of relay's garbage under
// ingest load, which set the GC's pace.
type inboxScratch struct{ plain, packed []byte }

// encode is encodeInbox with s's buffers, writing the blob into out's
// capacity when it suffices.
func (s *inboxScratch) encode(msgs []Message, out []byte) []byte {
	b := s.plain[:0]
	for _, m := range msgs {
		b = appendBytes(b, m.Source)
		b = appendBytes(b, m.Key)
		b = appendBytes(b, m.MessageID)
		var recv int64
		if !m.ReceivedAt.IsZero() {
			recv = m.ReceivedAt.UnixNano()
		}
		b = binary.AppendVarint(b, recv)
		b = appendBytes(b, m.Payload)
	}
	s.plain = b
	if n := s2.MaxEncodedLen(len(b)); cap(s.packed) < n {
		s.packed = make([]byte, n)
	}
	packed := s2.Encode(s.packed[:cap(s.packed)], b)
	out = append(out[:0], inboxVersion)
	return append(out, packed...)
}

// maxScratch is the largest buffer an inboxScratch keeps for the next
// call; a rare huge Enqueue should not pin its buffers for good.
const maxScratch = 4 << 20

func (s *inboxScratch) trim() {
	if cap(s.plain) > maxScratch {
		s.plain = nil
	}
	if cap(s.packed) > maxScratch {
		s.packed = nil
	}
}

func appendBytes[T string | []byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// inboxMessage is one decoded inbox message. Payload aliases the blob.
type inboxMessage struct {
	Source, Key, MessageID string
	ReceivedAt             int64 // Unix nanoseconds; 0 when unset
	Payload                []byte
}

// decodeInbox decodes a blob of want messages made by encodeInbox. It never
// panics: a blob that is short, long, of another version or with a length
// past its end is errInboxCorrupt.
func decodeInbox(blob []byte, want int) ([]inboxMessage, error) {
	if len(blob) == 0 || blob[0] != inboxVersion {
		return nil, fmt.Errorf("%w: version byte %v", errInboxCorrupt, blob[:min(len(blob), 1)])
	}
	size, err := s2.DecodedLen(blob[1:])
	if err != nil || size > maxInboxDecoded {
		return nil, fmt.Errorf("%w: decoded length %d (%v)", errInboxCorrupt, size, err)
	}
	b, err := s2.Decode(make([]byte, size), blob[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInboxCorrupt, err)
	}
	if want < 0 || want > len(b) { // every message takes at least 5 bytes
		return nil, fmt.Errorf("%w: %d messages in %d bytes", errInboxCorrupt, want, len(b))
	}
	d := inboxDecoder{b: b}
	out := make([]inboxMessage, want)
	for i := range out {
		m := &out[i]
		m.Source = string(d.bytes())
		m.Key = string(d.bytes())
		m.MessageID = string(d.bytes())
		m.ReceivedAt = d.varint()
		m.Payload = d.bytes()
		if d.err != nil {
			return nil, fmt.Errorf("%w: message %d of %d: %v", errInboxCorrupt, i, want, d.err)
		}
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after message %d", errInboxCorrupt, len(d.b), want)
	}
	return out, nil
}

type inboxDecoder struct {
	b   []byte
	err error
}

func (d *inboxDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *inboxDecoder) bytes() []byte {
	if d.err != nil {
		return nil
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > math.MaxInt32 || int(n) > len(d.b)-k {
		d.err = errors.New("bad length")
		return nil
	}
	v := d.b[k : k+int(n) : k+int(n)]
	d.b = d.b[k+int(n):]
	return v
}

// payloadRef is a job whose payload is to be read: from the payloads table
// when batch is 0, else from that inbox row.
type payloadRef struct {
	id, batch int64
	dst       *[]byte
}

// querier is a read connection pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// resolvePayloads fills in every ref's payload. Each inbox row is read and
// decoded once, however many of its jobs are asked for.
func resolvePayloads(ctx context.Context, q querier, refs []payloadRef) error {
	loose := map[int64]*[]byte{}
	byBatch := map[int64][]payloadRef{}
	for _, r := range refs {
		if r.batch == 0 {
			loose[r.id] = r.dst
		} else {
			byBatch[r.batch] = append(byBatch[r.batch], r)
		}
	}
	for batch, rs := range byBatch {
		var n int
		var data []byte
		err := q.QueryRowContext(ctx, `SELECT n, data FROM inbox WHERE id = ?`, batch).Scan(&n, &data)
		if err != nil {
			return fmt.Errorf("inbox row %d of job %d: %w", batch, rs[0].id, err)
		}
		msgs, err := decodeInbox(data, n)
		if err != nil {
			return fmt.Errorf("inbox row %d: %w", batch, err)
		}
		for _, r := range rs {
			i := r.id - batch
			if i < 0 || i >= int64(n) {
				return fmt.Errorf("job %d is not in inbox row %d (%d messages)", r.id, batch, n)
			}
			*r.dst = msgs[i].Payload
		}
	}
	if len(loose) == 0 {
		return nil
	}
	return loosePayloads(ctx, q, loose)
}

// loosePayloads fills in dst (by job id) from the payloads table (jobs
// from before the inbox, and dead letters).
func loosePayloads(ctx context.Context, q querier, dst map[int64]*[]byte) error {
	ids := slices.Collect(maps.Keys(dst))
	rows, err := q.QueryContext(ctx, sqlPayloads, idsJSON(ids))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var payload []byte
		if err := rows.Scan(&id, &payload); err != nil {
			return err
		}
		if d := dst[id]; d != nil {
			*d = payload
			delete(dst, id)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(dst) > 0 {
		return fmt.Errorf("%d of %d payloads not found", len(dst), len(ids))
	}
	return nil
}
