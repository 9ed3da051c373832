package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream is the Queue that several `relay serve` nodes share: NATS
// JetStream holds the jobs, each node claims, retries and finishes them.
//
// Layout (P is JetStreamOptions.Prefix):
//
//   - one stream per source, P_SRC_<n>, work-queue retention, subjects
//     P.<n>.<dest token>; a message is one job (payload = the event, the
//     Relay-Meta header = source, dest, key, messageId, receive time);
//   - one durable pull consumer per (source stream, destination) with
//     explicit acks; AckWait is how long a node may go silent before its
//     unfinished jobs are redelivered to another node;
//   - key-value bucket P_QUEUE_REG: source and destination registry (source
//     name → stream number, destination token → name) and the count of
//     aborted jobs; bucket P_QUEUE_JOBS: attempts, last error and retry time
//     of jobs that failed, so they survive a node's death.
//
// Job.ID is the stream number << 40 | the stream sequence.
//
// A node holds the messages it fetched (claimable, executing or waiting for
// a retry) unacknowledged, renewing them with "in progress" every
// AckWait/3. Succeed and Abort acknowledge (the message leaves the stream);
// Retry keeps holding the message until it is due. Claim applies the same
// rules as *SQLite to the messages this node holds, which it fetches in
// stream order. What that guarantees with several nodes is documented in
// docs/SCALEOUT.md: per-key order holds among the jobs one node holds; two
// nodes may deliver jobs of one key at the same time.
type JetStream struct {
	opts JetStreamOptions
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream
	reg  jetstream.KeyValue // registry and counters
	jobs jetstream.KeyValue // failed jobs' state

	regMu   sync.Mutex
	sources map[string]int // source name → stream number
	streams map[int]string // stream number → source name
	dests   map[string]string
	listed  time.Time // last registry listing; under regMu

	mu      sync.Mutex
	closed  bool
	held    map[int64]*jsJob
	perDest map[string]*jsDest

	stop chan struct{}
	done chan struct{}
}

// JetStreamOptions tune a JetStream queue. Zero values mean the defaults.
type JetStreamOptions struct {
	// Prefix names the streams, subjects and buckets ([A-Za-z0-9_-], default
	// "RELAY"). Nodes that share work use the same prefix.
	Prefix string
	// AckWait is how long JetStream waits for a node's ack or renewal
	// before handing its unfinished jobs to another node (default 30 s).
	AckWait time.Duration
	// MaxHeld bounds the messages one node holds per destination (fetched
	// and not finished), so one node cannot take a whole backlog (default
	// 20000).
	MaxHeld int
	// Replicas of each stream and bucket in a NATS cluster (default 1).
	Replicas int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

const (
	idShift        = 40
	defaultAckWait = 30 * time.Second
	defaultMaxHeld = 20000
	metaHeader     = "Relay-Meta"
	// sourceRefresh is how often Claim and Stats look for sources that
	// other nodes registered.
	sourceRefresh = 2 * time.Second
)

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// OpenJetStream connects to the NATS server at url and prepares the
// registry buckets. Streams and consumers are created as sources and
// destinations appear.
func OpenJetStream(ctx context.Context, url string, opts JetStreamOptions, log *slog.Logger) (*JetStream, error) {
	if opts.Prefix == "" {
		opts.Prefix = "RELAY"
	}
	if !prefixRE.MatchString(opts.Prefix) {
		return nil, fmt.Errorf("open jetstream queue: prefix %q: want 1-32 of A-Z a-z 0-9 _ -: %w", opts.Prefix, ErrInvalid)
	}
	if opts.AckWait <= 0 {
		opts.AckWait = defaultAckWait
	}
	if opts.MaxHeld <= 0 {
		opts.MaxHeld = defaultMaxHeld
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nc, err := nats.Connect(url, nats.Name("relay"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("open jetstream queue: connect to %s: %w", redactURL(url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open jetstream queue: %w", err)
	}
	q := &JetStream{opts: opts, log: log, nc: nc, js: js,
		sources: map[string]int{}, streams: map[int]string{}, dests: map[string]string{},
		held: map[int64]*jsJob{}, perDest: map[string]*jsDest{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
	}{{&q.reg, opts.Prefix + "_QUEUE_REG"}, {&q.jobs, opts.Prefix + "_QUEUE_JOBS"}} {
		*b.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: b.name, History: 1, Storage: jetstream.FileStorage, Replicas: opts.Replicas})
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("open jetstream queue: bucket %s: %w", b.name, err)
		}
	}
	go q.renewLoop()
	return q, nil
}

// redactURL drops user info from a NATS URL for errors and logs.
func redactURL(u string) string {
	if i, j := strings.Index(u, "://"), strings.LastIndex(u, "@"); i >= 0 && j > i {
		return u[:i+3] + "…@" + u[j+1:]
	}
	return u
}

// Close gives every held message back to JetStream (nak: redelivered at
// once to another node, which restores a failed job's attempts and retry
// time from the jobs bucket) and disconnects. Later calls return ErrClosed.
func (q *JetStream) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	var msgs []jetstream.Msg
	for _, j := range q.held {
		msgs = append(msgs, j.msg)
	}
	q.held = map[int64]*jsJob{}
	q.mu.Unlock()
	close(q.stop)
	<-q.done
	var errs []error
	for _, m := range msgs {
		if err := m.Nak(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := q.nc.FlushTimeout(5 * time.Second); err != nil {
		errs = append(errs, err)
	}
	q.nc.Close()
	if len(errs) > 0 {
		return fmt.Errorf("close jetstream queue: give back %d held messages: %w", len(msgs), errors.Join(errs...))
	}
	return nil
}

func (q *JetStream) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// renewLoop tells JetStream that held messages are still being worked on,
// so they are redelivered elsewhere only when this node stops renewing.
func (q *JetStream) renewLoop() {
	defer close(q.done)
	t := time.NewTicker(q.opts.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-q.stop:
			return
		case <-t.C:
		}
		q.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(q.held))
		for _, j := range q.held {
			msgs = append(msgs, j.msg)
		}
		q.mu.Unlock()
		for _, m := range msgs {
			if err := m.InProgress(); err != nil {
				q.log.Warn("renew held job", slog.Any("err", err))
				break
			}
		}
	}
}

// token is the subject-safe name of a destination.
func token(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:8])
}

func (q *JetStream) streamName(n int) string { return q.opts.Prefix + "_SRC_" + strconv.Itoa(n) }
func (q *JetStream) subject(n int, dest string) string {
	return q.opts.Prefix + "." + strconv.Itoa(n) + "." + token(dest)
}

// sourceStream returns the stream number of source, registering the
// source and creating its stream on first use (by any node).
func (q *JetStream) sourceStream(ctx context.Context, source string) (int, error) {
	q.regMu.Lock()
	n, ok := q.sources[source]
	q.regMu.Unlock()
	if ok {
		return n, nil
	}
	key := "src." + token(source)
	if e, err := q.reg.Get(ctx, key); err == nil {
		n, err = strconv.Atoi(string(e.Value()))
		if err != nil {
			return 0, fmt.Errorf("registry entry %s: %w", key, err)
		}
		q.remember(source, n)
		return n, nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("look up source %q: %w", source, err)
	}
	// Allocate the lowest free number: creating "idx.<n>" is atomic.
	for n = 1; ; n++ {
		_, err := q.reg.Create(ctx, "idx."+strconv.Itoa(n), []byte(source))
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("register source %q: %w", source, err)
		}
	}
	if _, err := q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:      q.streamName(n),
		Subjects:  []string{q.opts.Prefix + "." + strconv.Itoa(n) + ".*"},
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  q.opts.Replicas,
	}); err != nil {
		return 0, fmt.Errorf("create stream of source %q: %w", source, err)
	}
	if _, err := q.reg.Create(ctx, key, []byte(strconv.Itoa(n))); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("register source %q: %w", source, err)
		}
		// Another node registered it first: use its stream.
		_ = q.js.DeleteStream(ctx, q.streamName(n))
		q.regMu.Lock()
		q.listed = time.Time{}
		q.regMu.Unlock()
		return q.sourceStream(ctx, source)
	}
	q.remember(source, n)
	return n, nil
}

func (q *JetStream) remember(source string, n int) {
	q.regMu.Lock()
	q.sources[source] = n
	q.streams[n] = source
	q.regMu.Unlock()
}

// registerDest records a destination's name under its token (for Stats).
func (q *JetStream) registerDest(ctx context.Context, dest string) error {
	q.regMu.Lock()
	_, ok := q.dests[token(dest)]
	q.regMu.Unlock()
	if ok {
		return nil
	}
	if _, err := q.reg.Put(ctx, "dst."+token(dest), []byte(dest)); err != nil {
		return fmt.Errorf("register destination %q: %w", dest, err)
	}
	q.regMu.Lock()
	q.dests[token(dest)] = dest
	q.regMu.Unlock()
	return nil
}

// refreshRegistry reads sources and destinations other nodes registered,
// at most every sourceRefresh unless force.
func (q *JetStream) refreshRegistry(ctx context.Context, force bool) error {
	q.regMu.Lock()
	fresh := !force && q.opts.Now().Sub(q.listed) < sourceRefresh
	q.regMu.Unlock()
	if fresh {
		return nil
	}
	lister, err := q.reg.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list registry: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		switch {
		case len(k) > 4 && k[:4] == "idx.":
			n, err := strconv.Atoi(k[4:])
			if err != nil {
				continue
			}
			q.regMu.Lock()
			_, known := q.streams[n]
			q.regMu.Unlock()
			if known {
				continue
			}
			e, err := q.reg.Get(ctx, k)
			if err != nil {
				continue
			}
			// Only a source whose src. entry points here owns the stream
			// (a lost registration race leaves an unused number).
			if s, err := q.reg.Get(ctx, "src."+token(string(e.Value()))); err == nil && string(s.Value()) == strconv.Itoa(n) {
				q.remember(string(e.Value()), n)
			}
		case len(k) > 4 && k[:4] == "dst.":
			q.regMu.Lock()
			_, known := q.dests[k[4:]]
			q.regMu.Unlock()
			if known {
				continue
			}
			if e, err := q.reg.Get(ctx, k); err == nil {
				q.regMu.Lock()
				q.dests[k[4:]] = string(e.Value())
				q.regMu.Unlock()
			}
		}
	}
	q.regMu.Lock()
	q.listed = q.opts.Now()
	q.regMu.Unlock()
	return nil
}

// streamNumbers lists the known source streams.
func (q *JetStream) streamNumbers() []int {
	q.regMu.Lock()
	defer q.regMu.Unlock()
	out := make([]int, 0, len(q.streams))
	for n := range q.streams {
		out = append(out, n)
	}
	return out
}
