package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"runtime/trace"
	"strconv"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
)

// parseFactor is the memory a body takes through parsing, in multiples of
// its size: the body, the payloads encoded from it and the parsed items.
const parseFactor = 3

// maxMessageLen caps error messages taken from spec.Parse in responses.
const maxMessageLen = 300

// outcome is what one ingest request came to.
type outcome struct {
	status     int
	msg        string // the response's message when status != 200
	retryAfter bool   // send Retry-After (429, 503)
	err        error  // internal cause to log; already redacted
	source     string
	events     int // items in the body
	accepted   int
	rejected   int
	messages   int // queue messages committed
}

// serveIngest handles a POST of one event or a batch.
func (g *Gateway) serveIngest(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		setCORS(w, r)
		// Regions (ingest, parse, enqueue) split a request's latency in an
		// execution trace (relaybench -profile); free when not tracing.
		region := trace.StartRegion(r.Context(), "ingest")
		out := g.ingest(w, r, rt)
		region.End()
		g.respond(w, out)
		took := time.Since(start)
		g.metrics.requests.WithLabelValues(rt.path, strconv.Itoa(out.status)).Inc()
		g.metrics.latency.WithLabelValues(rt.path).Observe(took.Seconds())
		g.logRequest(r.Context(), rt, out, took)
	}
}

func (g *Gateway) ingest(w http.ResponseWriter, r *http.Request, rt route) outcome {
	ctx := r.Context()
	// Backpressure first: it is the cheapest answer and spares the body read.
	if g.depth != nil && g.depth.Over(ctx) {
		return outcome{status: http.StatusTooManyRequests, retryAfter: true,
			msg: "the event queue is full; retry after the Retry-After delay"}
	}
	// The key is checked before the body is read, so a client without a
	// valid one costs no memory, decompression or parsing. Only analytics.js's
	// routes may carry it in the body alone, and then the body is capped at
	// MaxBodyKeyBytes.
	key := requestKey(r, rt)
	var source string
	limit := g.cfg.MaxRequestBytes
	switch {
	case key != "":
		var out outcome
		if source, out = g.authenticate(ctx, key); out.status != 0 {
			return out
		}
	case rt.bodyKey:
		limit = min(limit, MaxBodyKeyBytes)
	default:
		return outcome{status: http.StatusUnauthorized, msg: msgMissingKey}
	}
	res := &reservation{sem: g.inflight}
	if source != "" {
		res.source = g.perSource.of(source)
	}
	defer res.release()
	body, err := readBody(w, r, limit, g.bufs.bytes.Get(), res)
	if err != nil {
		if be, ok := errors.AsType[*bodyError](err); ok {
			return outcome{status: be.status, msg: be.msg, retryAfter: be.retryAfter, source: source}
		}
		return outcome{status: http.StatusInternalServerError, msg: "internal error reading the body; retry", err: err}
	}
	// Parsing writes the payloads and items beside the body: about twice
	// its size again, held until the request ends.
	if !res.grow(int64(len(body)) * parseFactor) {
		g.bufs.bytes.Put(body)
		return outcome{status: errBusy.status, msg: errBusy.msg, retryAfter: true, source: source}
	}
	g.metrics.bodyBytes.WithLabelValues(rt.path).Observe(float64(len(body)))
	if len(bytes.TrimSpace(body)) == 0 {
		return outcome{status: http.StatusBadRequest, source: source,
			msg: "empty request body: expected a JSON event, array of events or {\"batch\":[…]}"}
	}
	receivedAt := g.deps.Now()
	reg := trace.StartRegion(ctx, "parse")
	if err := g.deps.CPU.Foreground(ctx); err != nil {
		reg.End()
		return outcome{status: http.StatusServiceUnavailable, retryAfter: true, source: source,
			msg: "the request ended while waiting to be parsed; retry"}
	}
	batch, err := spec.Parse(body, spec.Options{
		ReceivedAt:    receivedAt,
		DefaultType:   rt.defaultType,
		MaxEventBytes: g.cfg.MaxEventBytes,
		Encode:        true, // the gateway stores events; it does not read them
		Scratch:       g.bufs.bytes.Get(),
		Items:         g.bufs.items.Get(),
	})
	g.deps.CPU.Release()
	reg.End()
	g.bufs.bytes.Put(body) // Parse keeps nothing from the body
	if err != nil {
		if errors.Is(err, spec.ErrMalformed) {
			return outcome{status: http.StatusBadRequest, source: source,
				msg: truncate(redact(err.Error(), key), maxMessageLen)}
		}
		return outcome{status: http.StatusInternalServerError, source: source,
			msg: "internal error parsing the body; retry", err: errors.New(redact(err.Error(), key))}
	}
	if key == "" {
		// Basic auth wins over the body; only without it is the body's
		// writeKey read (analytics.js sends both).
		if key = strings.TrimSpace(batch.WriteKey); key == "" {
			return outcome{status: http.StatusUnauthorized, msg: msgMissingBodyKey}
		}
		var out outcome
		if source, out = g.authenticate(ctx, key); out.status != 0 {
			return out
		}
	}
	if out, refused := g.refuseLoneOversized(ctx, rt, source, key, batch, receivedAt); refused {
		g.bufs.bytes.Put(batch.Scratch)
		g.bufs.items.Put(batch.Items)
		return out
	}
	out := g.commit(ctx, source, key, batch, receivedAt)
	if out.status == http.StatusOK {
		// Enqueue returned nil (or was not called): the queue keeps no
		// reference to the payloads. After a failed Enqueue it may (a
		// JetStream publish still in flight), so the buffer is left to the GC.
		g.bufs.bytes.Put(batch.Scratch)
	}
	g.bufs.items.Put(batch.Items)
	return out
}

// refuseLoneOversized answers 400 for the one event of a single-event
// route (/v1/track, /v1/identify, …) that is over MaxEventBytes: with
// nothing else in the request, a 200 would tell the SDK the event was
// kept when it was dropped. In a batch the rest is still accepted, so
// there the event is only recorded, as every per-event problem is.
func (g *Gateway) refuseLoneOversized(ctx context.Context, rt route, source, key string, batch *spec.Batch, receivedAt time.Time) (outcome, bool) {
	if rt.defaultType == "" || len(batch.Items) != 1 {
		return outcome{}, false
	}
	it := &batch.Items[0]
	if it.Err == nil || it.Err.Code != spec.CodeTooLarge {
		return outcome{}, false
	}
	reason := redact(it.Err.Message, key)
	g.record(ctx, source, []Rejection{{MessageID: it.Event.MessageID, Type: it.Event.Type,
		Code: it.Err.Code, Field: it.Err.Field, Reason: reason, ReceivedAt: receivedAt}})
	return outcome{status: http.StatusBadRequest, source: source, events: 1, rejected: 1,
		msg: truncate(reason, maxMessageLen)}, true
}

// authenticate resolves key to its source; a non-zero outcome is the
// answer to send instead.
func (g *Gateway) authenticate(ctx context.Context, key string) (string, outcome) {
	lctx, cancel := context.WithTimeout(ctx, g.cfg.EnqueueTimeout)
	defer cancel()
	source, ok, err := g.deps.Sources.SourceForKey(lctx, key)
	switch {
	case err != nil:
		return "", outcome{status: http.StatusServiceUnavailable, retryAfter: true,
			msg: "write key lookup is unavailable; retry", err: errors.New(redact(err.Error(), key))}
	case !ok || source == "":
		return "", outcome{status: http.StatusUnauthorized, msg: msgInvalidKey}
	}
	return source, outcome{}
}

// commit fans the valid events out to the source's destinations, waits
// for the queue to make them durable, and records the rejected ones.
func (g *Gateway) commit(ctx context.Context, source, key string, batch *spec.Batch, receivedAt time.Time) outcome {
	out := outcome{status: http.StatusOK, source: source, events: len(batch.Items)}
	dests := g.deps.Routes.Destinations(source)
	var (
		received, accepted [numTypes]int
		rejects            []Rejection
		msgs               = g.bufs.messages.Get()
	)
	for i := range batch.Items {
		it := &batch.Items[i]
		ti := typeIndex(it.Event.Type)
		received[ti]++
		if it.Err == nil {
			accepted[ti]++
			for _, d := range dests {
				// Payload is shared by an event's messages; Enqueuers must not modify it.
				msgs = append(msgs, queue.Message{Source: source, Dest: d, Key: it.Key,
					MessageID: it.Event.MessageID, Payload: it.Payload, ReceivedAt: receivedAt})
			}
			continue
		}
		rejects = append(rejects, Rejection{Index: i, MessageID: it.Event.MessageID, Type: it.Event.Type,
			Code: it.Err.Code, Field: it.Err.Field, Reason: redact(it.Err.Message, key), ReceivedAt: receivedAt})
	}
	for ti, n := range received {
		if n > 0 {
			g.metrics.received.WithLabelValues(source, typeName(ti)).Add(float64(n))
		}
	}
	if len(msgs) > 0 {
		ectx, cancel := context.WithTimeout(ctx, g.cfg.EnqueueTimeout)
		var err error
		trace.WithRegion(ectx, "enqueue", func() { err = g.deps.Queue.Enqueue(ectx, msgs) })
		cancel()
		if err != nil {
			out = outcome{status: http.StatusServiceUnavailable, retryAfter: true, source: source, events: out.events,
				msg: "the event queue is unavailable; nothing was accepted, retry", err: errors.New(redact(err.Error(), key))}
			return out
		}
	}
	// Committed: from here on the answer is 200.
	out.messages = len(msgs)
	g.bufs.messages.Put(msgs) // the queue keeps no reference once Enqueue returned nil
	for ti, n := range accepted {
		if n > 0 {
			g.metrics.accepted.WithLabelValues(source, typeName(ti)).Add(float64(n))
			out.accepted += n
		}
	}
	if out.accepted > 0 {
		if len(dests) == 0 {
			g.metrics.unrouted.WithLabelValues(source).Add(float64(out.accepted))
		}
		for _, d := range dests {
			g.metrics.enqueued.WithLabelValues(source, d).Add(float64(out.accepted))
		}
	}
	out.rejected = len(rejects)
	if len(rejects) > 0 {
		g.record(ctx, source, rejects)
	}
	return out
}

// record passes rejected events to Rejections. It is best effort: the
// valid events are already committed, and failing the request now would
// make the SDK resend (and duplicate) them to record events that would
// only be rejected again.
func (g *Gateway) record(ctx context.Context, source string, rejects []Rejection) {
	for _, rj := range rejects {
		g.metrics.rejected.WithLabelValues(source, typeLabel(rj.Type), codeLabel(rj.Code)).Inc()
		g.log.LogAttrs(ctx, slog.LevelDebug, "gateway: event rejected", slog.String("source", source),
			slog.String("messageId", truncate(rj.MessageID, 100)), slog.String("code", codeLabel(rj.Code)),
			slog.String("field", truncate(rj.Field, 100)))
	}
	if g.deps.Rejections == nil {
		return
	}
	// The client may already be gone; the record should still be written.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.EnqueueTimeout)
	defer cancel()
	if err := g.deps.Rejections.Rejected(rctx, source, rejects); err != nil {
		g.metrics.recordErrs.Inc()
		g.log.LogAttrs(ctx, slog.LevelWarn, "gateway: record rejected events", slog.String("source", source),
			slog.Int("count", len(rejects)), slog.String("err", err.Error()))
	}
}

// successBody is Segment's answer; no SDK parses it (clients.md §1).
const successBody = `{"success":true}`

func writeSuccess(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, successBody)
}

func (g *Gateway) respond(w http.ResponseWriter, out outcome) {
	if out.status == http.StatusOK {
		writeSuccess(w)
		return
	}
	h := w.Header()
	if out.retryAfter {
		h.Set("Retry-After", strconv.Itoa(int(math.Max(1, math.Ceil(g.cfg.RetryAfter.Seconds())))))
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	body, _ := json.Marshal(struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
	}{false, out.msg})
	w.WriteHeader(out.status)
	_, _ = w.Write(body)
}

// logRequest logs one request without the key, the URL query (it may hold
// ?writeKey=) or any payload. Server-side failures are warnings; the rest
// is debug, since bad clients must not be able to flood the log.
func (g *Gateway) logRequest(ctx context.Context, rt route, out outcome, took time.Duration) {
	level := slog.LevelDebug
	if out.status >= 500 {
		level = slog.LevelWarn
	}
	if !g.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("path", rt.path), slog.Int("status", out.status), slog.Duration("took", took),
		slog.String("source", out.source), slog.Int("events", out.events),
		slog.Int("accepted", out.accepted), slog.Int("rejected", out.rejected), slog.Int("messages", out.messages),
	}
	if out.status != http.StatusOK {
		attrs = append(attrs, slog.String("reason", out.msg))
	}
	if out.err != nil {
		attrs = append(attrs, slog.String("err", out.err.Error()))
	}
	g.log.LogAttrs(ctx, level, "gateway: ingest request", attrs...)
}

// Event type indexes, for per-request counting without maps.
const numTypes = 8

func typeIndex(t string) int {
	switch t {
	case spec.TypeIdentify:
		return 0
	case spec.TypeTrack:
		return 1
	case spec.TypePage:
		return 2
	case spec.TypeScreen:
		return 3
	case spec.TypeGroup:
		return 4
	case spec.TypeAlias:
		return 5
	case "":
		return 6
	}
	return 7
}

// typeName is typeIndex's inverse, giving the metrics label.
func typeName(i int) string {
	switch i {
	case 0:
		return spec.TypeIdentify
	case 1:
		return spec.TypeTrack
	case 2:
		return spec.TypePage
	case 3:
		return spec.TypeScreen
	case 4:
		return spec.TypeGroup
	case 5:
		return spec.TypeAlias
	case 6:
		return "none"
	}
	return "other"
}
