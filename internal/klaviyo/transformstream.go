package klaviyo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/eventstream"
	"github.com/relaycdp/relay/internal/presink"
	"github.com/relaycdp/relay/internal/spec"
)

// StreamOptions configure TransformStream.
type StreamOptions struct {
	// ReceivedAt, when set, is every event's received time, and
	// timestamps are skew-corrected against it as the server does.
	ReceivedAt time.Time
	// Now is the clock read as each event is read, when ReceivedAt is
	// zero: an event with no received time of its own gets that one, and
	// an event with no timestamp is dated by it, as the server dates what
	// it receives (time.Now when nil; tests fix it).
	Now func() time.Time
	// NDJSON writes one outcome a line instead of a JSON array.
	NDJSON bool
	// Pretty indents the outcomes (a JSON array as MarshalOutcomes
	// writes it; with NDJSON, a stream of indented objects).
	Pretty bool
	// MaxEventBytes rejects (per event) an event larger than this; 0 = no limit.
	MaxEventBytes int
	// Stage, when set, runs on each parsed event before it is mapped, as
	// relay serve's pre-sink stage does (transformation, filter, privacy
	// policy; internal/presink). An error is that event's outcome, its
	// code from an ErrorCode method.
	Stage func(ev *spec.Event) (StageResult, error)
}

// StageResult is what StreamOptions.Stage made of one event.
type StageResult struct {
	// Events are mapped in its place: none means skipped (Skipped says
	// why), several when a transformation fans out.
	Events  []spec.Event
	Skipped string
	// Dropped are the keys a privacy policy removed and Logs a
	// transformation's console.log lines: warnings on the outcome.
	Dropped, Logs []string
}

// StreamStats count what TransformStream wrote.
type StreamStats struct {
	Events int // outcomes written
	Errors int // of which errors or with failed parts (exit code 1)
}

// TransformStream is `relay transform` on a stream: it reads events one at
// a time from in (a JSON array of events, or events one after another
// (NDJSON) where each may also be a batch envelope; eventstream detects
// which), maps each with s and writes its outcome to out before reading
// the next, so memory does not grow with the input.
//
// The exit code is ExitOK or ExitEventErr as for TransformOutput. An input
// that cannot be read any further returns ExitBadInput and an error
// wrapping spec.ErrMalformed that names the event's index, line and byte
// offset; the outcomes of the events before it have been written (a JSON
// array is then left unclosed, so that it does not pass for complete).
// A read or write error is returned as it is, with ExitBadInput.
func TransformStream(in io.Reader, out io.Writer, opts StreamOptions, s Settings) (StreamStats, int, error) {
	t := newStreamTransformer(out, opts, s)
	rd := eventstream.NewReader(in)
	rd.Bound = t.bound(rd)
	err := t.run(rd)
	if ferr := t.w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	switch {
	case err != nil:
		return t.stats, ExitBadInput, err
	case t.stats.Errors > 0:
		return t.stats, ExitEventErr, nil
	}
	return t.stats, ExitOK, nil
}

type streamTransformer struct {
	opts  StreamOptions
	s     Settings
	now   func() time.Time
	w     *bufio.Writer
	stats StreamStats

	items       []spec.Item // reused by spec.Parse
	maps        spec.Maps   // the events' maps, reused once each value is written
	contextKeys []string    // contextKeys(s)
	// scanned validates an array's elements as the reader finds their
	// ends (bound), for ParseElement.
	scanned spec.ElementScanner
	enc     outcomeEncoder
	// shared is shared by the stream's events (a phoneCache, and maps).
	shared shared
}

func newStreamTransformer(out io.Writer, opts StreamOptions, s Settings) *streamTransformer {
	t := &streamTransformer{opts: opts, s: s, now: opts.Now, w: bufio.NewWriterSize(out, 64<<10)}
	if t.now == nil {
		t.now = time.Now
	}
	t.enc.init(opts.Pretty, opts.NDJSON)
	t.shared.maps = &t.maps
	if opts.Stage == nil {
		// A stage (transformation, policy) sees the whole context, as in
		// delivery; the mapping alone reads only these keys.
		t.contextKeys = contextKeys(&s)
	}
	return t
}

func (t *streamTransformer) run(rd *eventstream.Reader) error {
	for {
		v, err := rd.Next()
		// No events is an empty result, not bad input: a pipeline whose
		// filter matched nothing must not fail (as jq and grep -c do not).
		if err == io.EOF || errors.Is(err, eventstream.ErrEmpty) {
			return t.end()
		}
		if err != nil {
			var se *eventstream.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("%w: %w", spec.ErrMalformed, err)
			}
			return err
		}
		if err := t.value(rd, v); err != nil {
			return err
		}
	}
}

// bound is rd's Bound: in an array, each element is validated as its
// end is found (what ParseElement would do next); other streams' values
// are parsed by spec.Parse, which validates them itself.
func (t *streamTransformer) bound(rd *eventstream.Reader) func([]byte) int {
	return func(b []byte) int {
		if rd.Form() != eventstream.FormArray {
			return 0
		}
		return t.scanned.Scan(b)
	}
}

// value parses one value of the stream and writes an outcome for each
// event in it.
func (t *streamTransformer) value(rd *eventstream.Reader, v []byte) error {
	parse := spec.Parse
	if rd.Form() == eventstream.FormArray {
		// An element means what it means inside a request's array: an
		// object is an event (a "batch" key in it is not an envelope),
		// anything else is that event's error.
		parse = spec.ParseElement
	} else if v[0] != '{' {
		return t.inputErr(rd, v, fmt.Sprintf("%s where an event (or a batch envelope) should be; one JSON object a line, or one JSON array", valueKind(v[0])))
	}
	batch, err := parse(v, spec.Options{ReceivedAt: t.opts.ReceivedAt, MaxEventBytes: t.opts.MaxEventBytes, Items: t.items,
		Maps: &t.maps, ContextKeys: t.contextKeys, Scanned: &t.scanned})
	if err != nil {
		return t.inputErr(rd, v, parseProblem(v, err))
	}
	t.items = batch.Items
	var recv time.Time
	if t.opts.ReceivedAt.IsZero() {
		recv = t.now().UTC()
	}
	for i := range batch.Items {
		it := &batch.Items[i]
		if it.Err == nil && !recv.IsZero() {
			received(&it.Event, recv)
		}
		if t.opts.Stage != nil && it.Err == nil {
			if err := t.staged(&it.Event); err != nil {
				return err
			}
			continue
		}
		o := transformEvent(it, t.s, &t.shared)
		if err := t.write(&o); err != nil {
			return err
		}
	}
	clear(t.items) // drop the events' maps before the next value
	t.maps.Reset() // their outcomes are written: nothing holds them
	return nil
}

// staged runs the stage on ev and writes an outcome for each event it
// leaves, the policy's dropped keys and the transformation's logs as
// warnings on the first.
func (t *streamTransformer) staged(ev *spec.Event) error {
	res, err := t.opts.Stage(ev)
	var notes []string
	if len(res.Dropped) > 0 {
		notes = append(notes, "dropped by the privacy policy: "+strings.Join(res.Dropped, ", "))
	}
	for _, l := range res.Logs {
		notes = append(notes, "transformation log: "+l)
	}
	var outs []Outcome
	switch {
	case err != nil:
		outs = []Outcome{{MessageID: ev.MessageID, Error: &OutcomeError{Code: presink.CodeOf(err), Message: err.Error()}}}
	case len(res.Events) == 0:
		outs = []Outcome{{MessageID: ev.MessageID, Requests: []Request{}, Skipped: res.Skipped}}
	default:
		for i := range res.Events {
			outs = append(outs, transformEvent(&spec.Item{Event: res.Events[i]}, t.s, &t.shared))
		}
	}
	outs[0].Warnings = append(notes, outs[0].Warnings...)
	for i := range outs {
		if err := t.write(&outs[i]); err != nil {
			return err
		}
	}
	return nil
}

// received dates an event read at recv as the server dates one it
// receives (spec's times, without the skew correction: the time a file
// is read says nothing about when its events were sent): the received
// time is the event's own receivedAt or recv, and an event without a
// timestamp or sentAt takes the received time.
func received(ev *spec.Event, recv time.Time) {
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = recv
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp, ev.OriginalTimestamp = ev.ReceivedAt, ev.ReceivedAt
	}
	if ev.SentAt.IsZero() {
		ev.SentAt = ev.ReceivedAt
	}
}

func (t *streamTransformer) inputErr(rd *eventstream.Reader, v []byte, msg string) error {
	idx, line, off := rd.Pos()
	return fmt.Errorf("%w: event %d (line %d, byte %d): %s", spec.ErrMalformed, idx, line, off, msg)
}

// parseProblem says what spec.Parse found wrong with a whole value: for
// invalid JSON, where in the value.
func parseProblem(v []byte, err error) string {
	var x any
	var se *json.SyntaxError
	if errors.As(json.Unmarshal(v, &x), &se) {
		return fmt.Sprintf("invalid JSON at byte %d of the event: %v", se.Offset, se)
	}
	msg := err.Error()
	if p := spec.ErrMalformed.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
		msg = msg[len(p):]
	}
	return msg
}

func valueKind(c byte) string {
	switch {
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	}
	return "something that is not JSON"
}

// write writes one outcome: as an array element or a line.
func (t *streamTransformer) write(o *Outcome) error {
	el, err := t.enc.encode(o)
	if err != nil {
		*o = Outcome{MessageID: o.MessageID,
			Error: &OutcomeError{Code: "render_error", Message: "the requests could not be rendered as JSON: " + err.Error()}}
		if el, err = t.enc.encode(o); err != nil {
			return fmt.Errorf("encode transform output: %w", err)
		}
	}
	switch {
	case t.opts.NDJSON:
	case t.stats.Events == 0 && t.opts.Pretty:
		t.w.WriteString("[\n  ")
	case t.stats.Events == 0:
		t.w.WriteByte('[')
	case t.opts.Pretty:
		t.w.WriteString(",\n  ")
	default:
		t.w.WriteByte(',')
	}
	t.w.Write(el)
	if t.opts.NDJSON {
		t.w.WriteByte('\n')
	}
	t.stats.Events++
	if o.Error != nil || len(o.Failures) > 0 { // as Failed counts them
		t.stats.Errors++
	}
	// bufio.Writer keeps its first error; report it as soon as it happens.
	if _, err := t.w.Write(nil); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// end closes a JSON array (an empty one when there were no events).
func (t *streamTransformer) end() error {
	switch {
	case t.opts.NDJSON:
	case t.stats.Events == 0:
		t.w.WriteString("[]\n")
	case t.opts.Pretty:
		t.w.WriteString("\n]\n")
	default:
		t.w.WriteString("]\n")
	}
	return nil
}

// outcomeEncoder encodes outcomes into one reused buffer, HTML characters
// unescaped, without the encoder's trailing newline: with outcomeAppender
// (the indented form is json.Indent of its output, which is what
// json.Encoder does when it indents), or with encoding/json for an outcome
// the appender gives up on, so that its error is encoding/json's.
type outcomeEncoder struct {
	app            outcomeAppender
	compact        []byte
	indented       bytes.Buffer
	pretty         bool
	prefix, indent string

	buf bytes.Buffer
	enc *json.Encoder
}

func (e *outcomeEncoder) init(pretty, ndjson bool) {
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	switch {
	case pretty && ndjson:
		e.prefix, e.indent = "", "  "
	case pretty:
		e.prefix, e.indent = "  ", "  " // inside the array's indentation
	}
	e.pretty = pretty
	if pretty {
		e.enc.SetIndent(e.prefix, e.indent)
	}
}

func (e *outcomeEncoder) encode(o *Outcome) ([]byte, error) {
	var err error
	e.compact, err = e.app.appendOutcome(e.compact[:0], o)
	if err != nil {
		return e.encodeStd(o)
	}
	if !e.pretty {
		return e.compact, nil
	}
	e.indented.Reset()
	if err := json.Indent(&e.indented, e.compact, e.prefix, e.indent); err != nil {
		return e.encodeStd(o)
	}
	return e.indented.Bytes(), nil
}

func (e *outcomeEncoder) encodeStd(o *Outcome) ([]byte, error) {
	e.buf.Reset()
	if err := e.enc.Encode(o); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(e.buf.Bytes(), []byte("\n")), nil
}
