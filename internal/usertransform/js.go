// Package usertransform owns a destination's user transformations: a
// JavaScript transformEvent(event, metadata) run in an embedded interpreter
// (goja) under a time budget, size limits and without network or file
// access, as RudderStack's user transformations are; and a declarative
// filter (expr) that drops events matching a condition and renames or
// removes properties.
//
// What the sandbox enforces and what it cannot (see docs/PRIVACY.md):
//   - time: each call has a budget (Limits.Timeout); a timer interrupts
//     the VM, which stops at its next instruction. A single long builtin
//     (sorting a huge array) finishes that builtin first. The budget is
//     wall-clock, so a call that times out is tried once more with ten
//     times the budget before it fails (a CPU-starved machine must not
//     dead-letter good events).
//   - memory: goja has no heap limit. Relay bounds the event handed in
//     (MaxInputBytes) and the result taken out (MaxOutputBytes), caps the
//     length of strings built by repeat/padStart/padEnd and of arrays made
//     by the Array constructor (Array(n), new Array(n)), caps call depth,
//     and interrupts a call when the process heap grew by more than
//     Limits.MaxHeapGrowth while it ran (a process-wide measure, checked
//     every millisecond, so a burst inside one builtin can overshoot).
//     Run Relay with GOMEMLIMIT as the last line of defence.
//   - isolation: the VM has only ECMAScript builtins, plus log() and
//     console.log/warn/error that capture at most MaxLogLines lines; no
//     require, no timers, no network or file access.
//   - determinism: Math.random is seeded from the event's messageId and
//     Date/Date.now read the event's timestamp, so the same event gives the
//     same result on every retry and replay. Globals a transformation
//     writes live as long as its VM (one per worker), as in RudderStack;
//     do not rely on them.
package usertransform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"regexp"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/relaycdp/relay/internal/spec"
)

// Limits bound one call of a transformation. Zero fields take defaults.
type Limits struct {
	Timeout        time.Duration // default 100 ms
	MaxInputBytes  int           // the event as JSON; default 256 KiB
	MaxOutputBytes int           // the result as JSON; default 1 MiB
	MaxEvents      int           // events one call may return; default 100
	MaxStringLen   int           // strings built by repeat/pad; default 1 Mi characters
	MaxArrayLen    int           // arrays sized by Array(n) / new Array(n); default 100,000
	MaxHeapGrowth  uint64        // process heap growth during one call; default 256 MiB
	MaxCallDepth   int           // default 1,000
	MaxLogLines    int           // default 20, each cut to 500 bytes
	// VMs is how many calls may run at once (one VM each); default 4.
	VMs int
}

func (l *Limits) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.Timeout <= 0 {
		l.Timeout = 100 * time.Millisecond
	}
	def(&l.MaxInputBytes, 256<<10)
	def(&l.MaxOutputBytes, 1<<20)
	def(&l.MaxEvents, 100)
	def(&l.MaxStringLen, 1<<20)
	def(&l.MaxArrayLen, 100_000)
	def(&l.MaxCallDepth, 1000)
	def(&l.MaxLogLines, 20)
	def(&l.VMs, 4)
	if l.MaxHeapGrowth == 0 {
		l.MaxHeapGrowth = 256 << 20
	}
}

// Error is why a transformation failed on one event: a throw, a timeout, a
// limit, or a result that is not an event. Line and Column point into the
// transformation's source (0 when unknown).
type Error struct {
	Code    string // "js_error", "timeout", "memory", "limit", "bad_result", "compile"
	Message string
	Line    int
	Column  int
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("transformation %s at line %d:%d: %s", e.Code, e.Line, e.Column, e.Message)
	}
	return fmt.Sprintf("transformation %s: %s", e.Code, e.Message)
}

// Metadata describes where an event is going; transformEvent's second
// argument is a function returning it (metadata(event)), as in RudderStack.
type Metadata struct {
	SourceName      string `json:"sourceName,omitempty"`
	DestinationName string `json:"destinationName,omitempty"`
	DestinationType string `json:"destinationType,omitempty"`
	MessageID       string `json:"messageId,omitempty"`
}

// Result is what one call produced: zero events (dropped), one, or many,
// and the lines the transformation logged.
type Result struct {
	Events []spec.Event
	Logs   []string
}

// JS is a compiled transformation with a pool of VMs. Safe for concurrent
// use; Close is not needed (idle VMs are garbage).
type JS struct {
	prog   *goja.Program
	limits Limits
	pool   chan *jsVM
	mu     sync.Mutex
	made   int
}

// esExport lets RudderStack's "export function transformEvent" load as a
// script (goja runs scripts, not modules); the line numbers stay the same.
// syntaxPos finds the position in goja's parser messages
// ("transformation.js: Line 2:13 Unexpected token").
var syntaxPos = regexp.MustCompile(`Line (\d+):(\d+)`)

var esExport = regexp.MustCompile(`(?m)^([ \t]*)export[ \t]+(default[ \t]+)?`)

// CompileJS compiles source, which must define transformEvent.
func CompileJS(source string, lim Limits) (*JS, error) {
	lim.defaults()
	src := esExport.ReplaceAllString(source, "$1")
	prog, err := goja.Compile("transformation.js", src, false)
	if err != nil {
		e := &Error{Code: "compile", Message: err.Error()}
		var se *goja.CompilerSyntaxError
		if errors.As(err, &se) && se.File != nil {
			pos := se.File.Position(se.Offset)
			e.Message, e.Line, e.Column = se.Message, pos.Line, pos.Column
		} else if m := syntaxPos.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Column, _ = strconv.Atoi(m[2])
		}
		return nil, e
	}
	j := &JS{prog: prog, limits: lim, pool: make(chan *jsVM, lim.VMs)}
	// Load one VM now so a script without transformEvent (or one that
	// throws at load) fails at save time, not at the first event.
	vm, err := j.newVM()
	if err != nil {
		return nil, err
	}
	j.made = 1
	j.pool <- vm
	return j, nil
}

// jsVM is one interpreter with the program loaded.
type jsVM struct {
	rt        *goja.Runtime
	fn        goja.Callable
	parse     goja.Callable // JSON.parse
	stringify goja.Callable // JSON.stringify
	// Per call state, read by the bridge functions.
	now  time.Time
	rng  *rand.Rand
	logs []string
	lim  *Limits
}

const prelude = `(function(maxStr, maxArr) {
	"use strict";
	var repeat = String.prototype.repeat, padStart = String.prototype.padStart, padEnd = String.prototype.padEnd;
	function check(n) { if (n > maxStr) throw new RangeError("string longer than the transformation limit (" + maxStr + ")"); }
	Object.defineProperty(String.prototype, "repeat", {value: function(c) { check(String(this).length * Number(c)); return repeat.call(this, c); }, writable: true, configurable: true});
	Object.defineProperty(String.prototype, "padStart", {value: function(n, f) { check(Number(n)); return padStart.call(this, n, f); }, writable: true, configurable: true});
	Object.defineProperty(String.prototype, "padEnd", {value: function(n, f) { check(Number(n)); return padEnd.call(this, n, f); }, writable: true, configurable: true});
	var A = Array;
	var Guarded = new Proxy(A, {
		apply: function(t, self, args) { if (args.length === 1 && typeof args[0] === "number" && args[0] > maxArr) throw new RangeError("array longer than the transformation limit (" + maxArr + ")"); return Reflect.apply(t, self, args); },
		construct: function(t, args) { if (args.length === 1 && typeof args[0] === "number" && args[0] > maxArr) throw new RangeError("array longer than the transformation limit (" + maxArr + ")"); return Reflect.construct(t, args); }
	});
	globalThis.Array = Guarded;
})`

func (j *JS) newVM() (*jsVM, error) {
	rt := goja.New()
	v := &jsVM{rt: rt, lim: &j.limits}
	rt.SetMaxCallStackSize(j.limits.MaxCallDepth)
	rt.SetRandSource(func() float64 { return v.rng.Float64() })
	rt.SetTimeSource(func() time.Time { return v.now })
	v.now, v.rng = time.Unix(0, 0).UTC(), rand.New(rand.NewPCG(0, 0))
	logf := func(call goja.FunctionCall) goja.Value {
		if len(v.logs) >= j.limits.MaxLogLines {
			return goja.Undefined()
		}
		parts := make([]string, len(call.Arguments))
		for i, a := range call.Arguments {
			parts[i] = a.String()
		}
		line := strings.Join(parts, " ")
		if len(line) > 500 {
			line = line[:500] + "…"
		}
		v.logs = append(v.logs, line)
		return goja.Undefined()
	}
	console := rt.NewObject()
	for _, name := range []string{"log", "info", "warn", "error", "debug"} {
		_ = console.Set(name, logf)
	}
	_ = rt.Set("console", console)
	_ = rt.Set("log", logf)
	guard, err := rt.RunString(prelude)
	if err != nil {
		return nil, fmt.Errorf("usertransform prelude: %w", err)
	}
	install, _ := goja.AssertFunction(guard)
	if _, err := install(goja.Undefined(), rt.ToValue(j.limits.MaxStringLen), rt.ToValue(j.limits.MaxArrayLen)); err != nil {
		return nil, fmt.Errorf("usertransform prelude: %w", err)
	}
	if _, err := j.run(v, j.limits.Timeout, func() (goja.Value, error) { return rt.RunProgram(j.prog) }); err != nil {
		return nil, err
	}
	fn, ok := goja.AssertFunction(rt.Get("transformEvent"))
	if !ok {
		return nil, &Error{Code: "compile", Message: "the transformation defines no function transformEvent(event, metadata)"}
	}
	v.fn = fn
	jsonObj := rt.Get("JSON").ToObject(rt)
	v.parse, _ = goja.AssertFunction(jsonObj.Get("parse"))
	v.stringify, _ = goja.AssertFunction(jsonObj.Get("stringify"))
	return v, nil
}

// get takes an idle VM, makes one while fewer than Limits.VMs exist, or
// waits for one.
func (j *JS) get(ctx context.Context) (*jsVM, error) {
	select {
	case v := <-j.pool:
		return v, nil
	default:
	}
	j.mu.Lock()
	if j.made < j.limits.VMs {
		j.made++
		j.mu.Unlock()
		v, err := j.newVM()
		if err != nil {
			j.mu.Lock()
			j.made--
			j.mu.Unlock()
		}
		return v, err
	}
	j.mu.Unlock()
	select {
	case v := <-j.pool:
		return v, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns a VM to the pool; a VM whose call failed is dropped (its
// globals may be half-updated) and a fresh one is made on demand.
func (j *JS) put(v *jsVM, ok bool) {
	if !ok {
		j.mu.Lock()
		j.made--
		j.mu.Unlock()
		return
	}
	j.pool <- v
}

// Transform runs transformEvent on ev. A failure of the transformation is
// an *Error; ev is not changed.
func (j *JS) Transform(ctx context.Context, ev *spec.Event, meta Metadata) (Result, error) {
	in, err := json.Marshal(ev)
	if err != nil {
		return Result{}, &Error{Code: "bad_input", Message: err.Error()}
	}
	if len(in) > j.limits.MaxInputBytes {
		return Result{}, &Error{Code: "limit", Message: fmt.Sprintf("event is %d bytes as JSON, over the transformation input limit of %d", len(in), j.limits.MaxInputBytes)}
	}
	metaJSON, _ := json.Marshal(meta)
	res, err := j.call(ctx, ev, in, metaJSON, j.limits.Timeout)
	var te *Error
	if errors.As(err, &te) && (te.Code == "timeout" || te.Code == "memory") {
		// A second chance with ten times the budget: on a machine short of
		// CPU a good transformation can be descheduled past its budget, and
		// the heap measure is process-wide (other work's garbage counts),
		// so neither may dead-letter a good event on its own. An endless
		// loop or allocation fails again, deterministically.
		res, err = j.call(ctx, ev, in, metaJSON, 10*j.limits.Timeout)
	}
	return res, err
}

// call runs transformEvent once on a pooled VM under timeout.
func (j *JS) call(ctx context.Context, ev *spec.Event, in, metaJSON []byte, timeout time.Duration) (Result, error) {
	v, err := j.get(ctx)
	if err != nil {
		return Result{}, err
	}
	v.now = ev.Timestamp
	if v.now.IsZero() {
		v.now = ev.ReceivedAt
	}
	h := fnv.New64a()
	h.Write([]byte(ev.MessageID))
	v.rng = rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
	v.logs = nil
	out, err := j.run(v, timeout, func() (goja.Value, error) {
		evVal, err := v.parse(goja.Undefined(), v.rt.ToValue(string(in)))
		if err != nil {
			return nil, err
		}
		metaVal, err := v.parse(goja.Undefined(), v.rt.ToValue(string(metaJSON)))
		if err != nil {
			return nil, err
		}
		metaFn := v.rt.ToValue(func(goja.FunctionCall) goja.Value { return metaVal })
		res, err := v.fn(goja.Undefined(), evVal, metaFn)
		if err != nil || res == nil || goja.IsUndefined(res) || goja.IsNull(res) {
			return goja.Null(), err
		}
		js, err := v.stringify(goja.Undefined(), res)
		if err == nil && goja.IsUndefined(js) {
			return nil, &Error{Code: "bad_result", Message: "transformEvent returned a function or symbol, want an event, an array of events, or null to drop"}
		}
		return js, err
	})
	logs := v.logs
	j.put(v, err == nil)
	if err != nil {
		return Result{Logs: logs}, err
	}
	events, err := j.decode(out, ev)
	return Result{Events: events, Logs: logs}, err
}

// run calls f under the time budget and the heap watchdog, turning goja's
// failures into *Error. For an interrupt (timeout, memory) goja reports
// only the start of the function that was running, so that is the line.
func (j *JS) run(v *jsVM, timeout time.Duration, f func() (goja.Value, error)) (goja.Value, error) {
	var (
		mu      sync.Mutex
		why     string
		stopped bool
		heap    *time.Timer
	)
	interrupt := func(reason string) {
		mu.Lock()
		defer mu.Unlock()
		if !stopped && why == "" {
			why = reason
			v.rt.Interrupt(reason)
		}
	}
	deadline := time.AfterFunc(timeout, func() { interrupt("timeout") })
	// Most calls end within a millisecond: the heap is first looked at
	// then, and every millisecond after.
	start := heapBytes()
	mu.Lock() // heap is read by its own callback
	heap = time.AfterFunc(time.Millisecond, func() {
		if h := heapBytes(); h > start && h-start > j.limits.MaxHeapGrowth {
			interrupt("memory")
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			heap.Reset(time.Millisecond)
		}
	})
	mu.Unlock()
	out, err := f()
	mu.Lock()
	stopped = true
	reason := why
	heap.Stop()
	mu.Unlock()
	deadline.Stop()
	v.rt.ClearInterrupt()
	if err == nil {
		return out, nil
	}
	return nil, j.jsError(err, reason, timeout)
}

func (j *JS) jsError(err error, why string, timeout time.Duration) *Error {
	var ie *goja.InterruptedError
	var so *goja.StackOverflowError
	var ex *goja.Exception
	switch {
	case errors.As(err, &ie) && why == "timeout":
		e := &Error{Code: "timeout", Message: fmt.Sprintf("ran longer than %s", timeout)}
		e.Line, e.Column = position(ie.Stack())
		return e
	case errors.As(err, &ie):
		e := &Error{Code: "memory", Message: fmt.Sprintf("the process heap grew by more than %d MiB while it ran", j.limits.MaxHeapGrowth>>20)}
		e.Line, e.Column = position(ie.Stack())
		return e
	case errors.As(err, &so):
		e := &Error{Code: "limit", Message: fmt.Sprintf("call depth over %d", j.limits.MaxCallDepth)}
		e.Line, e.Column = position(so.Stack())
		return e
	case errors.As(err, &ex):
		e := &Error{Code: "js_error", Message: ex.Value().String()}
		e.Line, e.Column = position(ex.Stack())
		return e
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: "js_error", Message: err.Error()}
}

// position is the innermost frame in the transformation's own source.
func position(stack []goja.StackFrame) (line, col int) {
	for _, f := range stack {
		if f.SrcName() != "transformation.js" {
			continue
		}
		if p := f.Position(); p.Line > 0 {
			return p.Line, p.Column
		}
	}
	return 0, 0
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
var heapMu sync.Mutex

func heapBytes() uint64 {
	heapMu.Lock()
	defer heapMu.Unlock()
	metrics.Read(heapSample)
	if heapSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return heapSample[0].Value.Uint64()
}

// decode turns transformEvent's JSON result into events: null drops, an
// object is one event, an array is many (nulls in it are skipped).
func (j *JS) decode(out goja.Value, in *spec.Event) ([]spec.Event, error) {
	if goja.IsNull(out) {
		return nil, nil
	}
	s := out.String()
	if len(s) > j.limits.MaxOutputBytes {
		return nil, &Error{Code: "limit", Message: fmt.Sprintf("result is %d bytes as JSON, over the limit of %d", len(s), j.limits.MaxOutputBytes)}
	}
	raw := []byte(s)
	var list []json.RawMessage
	switch {
	case len(raw) > 0 && raw[0] == '[':
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, &Error{Code: "bad_result", Message: err.Error()}
		}
	case len(raw) > 0 && raw[0] == '{':
		list = []json.RawMessage{raw}
	default:
		return nil, &Error{Code: "bad_result", Message: "transformEvent returned " + kindOf(raw) + ", want an event, an array of events, or null to drop"}
	}
	if len(list) > j.limits.MaxEvents {
		return nil, &Error{Code: "limit", Message: fmt.Sprintf("returned %d events, over the limit of %d", len(list), j.limits.MaxEvents)}
	}
	events := make([]spec.Event, 0, len(list))
	for i, r := range list {
		if string(r) == "null" {
			continue
		}
		var ev spec.Event
		if len(r) == 0 || r[0] != '{' {
			return nil, &Error{Code: "bad_result", Message: fmt.Sprintf("element %d of the result is %s, want an event", i, kindOf(r))}
		}
		if err := json.Unmarshal(r, &ev); err != nil {
			return nil, &Error{Code: "bad_result", Message: fmt.Sprintf("element %d of the result: %v", i, err)}
		}
		if err := inherit(&ev, in, len(events)); err != nil {
			return nil, &Error{Code: "bad_result", Message: fmt.Sprintf("element %d of the result: %v", i, err)}
		}
		events = append(events, ev)
	}
	return events, nil
}

// inherit fills what a returned event left out from the input and gives
// the second and later events of one input their own messageId (Klaviyo's
// unique_id is built from it; repeats would be deduplicated away).
func inherit(ev, in *spec.Event, n int) error {
	if ev.Type == "" {
		ev.Type = in.Type
	}
	switch ev.Type {
	case spec.TypeIdentify, spec.TypeTrack, spec.TypePage, spec.TypeScreen, spec.TypeGroup, spec.TypeAlias:
	default:
		return fmt.Errorf("type %q is not an event type", ev.Type)
	}
	if ev.MessageID == "" {
		ev.MessageID = in.MessageID
	}
	if n > 0 && ev.MessageID == in.MessageID {
		ev.MessageID = fmt.Sprintf("%s-%d", in.MessageID, n)
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = in.Timestamp
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = in.ReceivedAt
	}
	return nil
}

func kindOf(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case '[':
		return "a list"
	case '{':
		return "an object"
	case 'n':
		return "null"
	}
	return "a number"
}
