package klaviyo

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/relaycdp/relay/internal/spec"
)

var streamClock = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

func fixedNow() time.Time { return streamClock }

// unknownNow gives the zero time: TransformStream then dates nothing, as
// TransformOutput (the golden path) does without a receivedAt.
func unknownNow() time.Time { return time.Time{} }

func stream(t testing.TB, in string, opts StreamOptions, s Settings) (string, int, error) {
	t.Helper()
	var out bytes.Buffer
	_, code, err := TransformStream(strings.NewReader(in), &out, opts, s)
	return out.String(), code, err
}

// TestStreamMatchesGolden: every golden case's input gives, through the
// stream with --pretty, exactly the bytes TransformOutput (the golden
// path) gives, and the same exit code; compact and NDJSON carry the same
// outcomes.
func TestStreamMatchesGolden(t *testing.T) {
	for _, path := range goldenFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			gc := readCase(t, path)
			s, sopts := caseSettings(t, gc), caseOptions(t, gc)
			want, wantCode, err := TransformOutput(gc.Input, sopts, s)
			if err != nil {
				t.Fatal(err)
			}
			opts := StreamOptions{ReceivedAt: sopts.ReceivedAt, MaxEventBytes: sopts.MaxEventBytes, Now: unknownNow, Pretty: true}
			got, code, err := stream(t, string(gc.Input), opts, s)
			if err != nil || code != wantCode || got != string(want) {
				t.Fatalf("stream: exit %d (%v), want %d; output:\n%s\nwant:\n%s", code, err, wantCode, got, want)
			}
			var wantOuts []json.RawMessage
			if err := json.Unmarshal(want, &wantOuts); err != nil {
				t.Fatal(err)
			}
			opts.Pretty = false
			compact, _, _ := stream(t, string(gc.Input), opts, s)
			opts.NDJSON = true
			ndjson, _, _ := stream(t, string(gc.Input), opts, s)
			lines := strings.Split(strings.TrimSuffix(ndjson, "\n"), "\n")
			var compactOuts []json.RawMessage
			if err := json.Unmarshal([]byte(compact), &compactOuts); err != nil || strings.Contains(compact, "\n ") {
				t.Fatalf("compact output is not a one-line JSON array (%v): %s", err, compact)
			}
			if len(lines) != len(wantOuts) || len(compactOuts) != len(wantOuts) {
				t.Fatalf("%d NDJSON lines, %d compact elements, want %d", len(lines), len(compactOuts), len(wantOuts))
			}
			for i := range wantOuts {
				var w bytes.Buffer
				_ = json.Compact(&w, wantOuts[i])
				if lines[i] != w.String() || string(compactOuts[i]) != w.String() {
					t.Errorf("outcome %d:\nndjson  %s\ncompact %s\nwant    %s", i, lines[i], compactOuts[i], w.String())
				}
			}
		})
	}
}

// TestStreamReceivedTime: an event without a timestamp is dated by the
// time it is read (the server's received time), so confirmOptin false
// renders; an event's own timestamp or receivedAt wins; --received-at
// replaces the clock and corrects skew as the server does.
func TestStreamReceivedTime(t *testing.T) {
	s := DefaultSettings()
	s.ListID, s.ConfirmOptin = "L1", false
	const noTime = `{"type":"identify","messageId":"m1","userId":"u1","traits":{"email":"a@example.com"}}`
	tests := []struct {
		name, in string
		opts     StreamOptions
		want     string // consented_at / time in the output
	}{
		{"no timestamp: the read time", noTime, StreamOptions{Now: fixedNow}, `"consented_at":"2026-03-01T09:30:00.000Z"`},
		{"own timestamp wins", `{"type":"identify","messageId":"m1","userId":"u1","traits":{"email":"a@example.com"},"timestamp":"2025-01-02T03:04:05Z"}`,
			StreamOptions{Now: fixedNow}, `"consented_at":"2025-01-02T03:04:05.000Z"`},
		{"own receivedAt before the read time", `{"type":"identify","messageId":"m1","userId":"u1","traits":{"email":"a@example.com"},"receivedAt":"2025-06-01T00:00:00Z"}`,
			StreamOptions{Now: fixedNow}, `"consented_at":"2025-06-01T00:00:00.000Z"`},
		{"--received-at", noTime, StreamOptions{Now: fixedNow, ReceivedAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, `"consented_at":"2024-01-01T00:00:00.000Z"`},
		{"--received-at corrects skew", `{"type":"track","messageId":"m5","userId":"u","event":"E","originalTimestamp":"2026-03-01T10:00:00Z","sentAt":"2026-03-01T10:00:05Z"}`,
			StreamOptions{Now: fixedNow, ReceivedAt: time.Date(2026, 3, 1, 10, 0, 10, 0, time.UTC)}, `"time":"2026-03-01T10:00:05.000Z"`},
		{"no skew correction against the read time", `{"type":"track","messageId":"m5","userId":"u","event":"E","originalTimestamp":"2026-03-01T10:00:00Z","sentAt":"2026-03-01T10:00:05Z"}`,
			StreamOptions{Now: fixedNow}, `"time":"2026-03-01T10:00:00.000Z"`},
		{"a track is dated too", `{"type":"track","messageId":"m6","userId":"u","event":"E"}`, StreamOptions{Now: fixedNow}, `"time":"2026-03-01T09:30:00.000Z"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code, err := stream(t, tc.in, tc.opts, s)
			if err != nil || code != ExitOK || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d (%v), want 0 and %s in:\n%s", code, err, tc.want, out)
			}
		})
	}
	// Without a clock reading (the golden path's TransformOutput), the
	// same event is an error: the bug the read time fixes.
	out, code, _ := stream(t, noTime, StreamOptions{Now: unknownNow}, s)
	if code != ExitEventErr || !strings.Contains(out, "timestamp is required") {
		t.Errorf("undated identify with confirmOptin false: exit %d, %s", code, out)
	}
}

func TestStreamInputs(t *testing.T) {
	const (
		ok1 = `{"type":"track","messageId":"a","userId":"u","event":"E","timestamp":"2026-03-01T12:00:00Z"}`
		ok2 = `{"type":"page","messageId":"b","userId":"u","timestamp":"2026-03-01T12:00:00Z"}`
		bad = `{"type":"track","messageId":"c","event":"E","timestamp":"2026-03-01T12:00:00Z"}`
	)
	tests := []struct {
		name    string
		in      string
		ids     []string // messageIds of the outcomes, in order
		code    int
		errHas  string // ExitBadInput: the error names this
		partial bool   // ExitBadInput after some outcomes
	}{
		{name: "array", in: "[" + ok1 + "," + ok2 + "]", ids: []string{"a", "b"}},
		{name: "ndjson", in: ok1 + "\n" + ok2 + "\n", ids: []string{"a", "b"}},
		{name: "ndjson with BOM, CRLF and blank lines", in: "\xef\xbb\xbf" + ok1 + "\r\n\r\n" + ok2, ids: []string{"a", "b"}},
		{name: "ndjson of batch envelopes", in: `{"batch":[` + ok1 + `]}` + "\n" + `{"batch":[` + ok2 + "," + bad + `]}`, ids: []string{"a", "b", "c"}, code: ExitEventErr},
		{name: "one bad event does not stop the stream", in: "[" + bad + "," + ok1 + `,42,` + ok2 + "]", ids: []string{"c", "a", "", "b"}, code: ExitEventErr},
		{name: "a batch key in an array element is not an envelope", in: `[{"batch":[` + ok1 + `]}]`, ids: []string{""}, code: ExitEventErr},
		{name: "empty", in: " \n"},
		{name: "empty array", in: "[ ]"},
		{name: "garbage", in: "hello", errHas: `event 0 (line 1, byte 0): something that is not JSON where an event`},
		{name: "scalar line", in: ok1 + "\n42\n" + ok2, ids: []string{"a"}, partial: true, errHas: "event 1 (line 2, byte 93): a number where an event (or a batch envelope) should be"},
		{name: "truncated array", in: "[" + ok1 + "," + ok2, ids: []string{"a", "b"}, partial: true, errHas: "event 2 (line 1, byte 173): the input ends inside the array"},
		{name: "invalid JSON in the middle", in: ok1 + "\n{\"type\":\"track\",}\n" + ok2, ids: []string{"a"}, partial: true, errHas: "event 1 (line 2, byte 93): invalid JSON at byte 17 of the event"},
		{name: "missing comma", in: "[" + ok1 + " " + ok2 + "]", ids: []string{"a"}, partial: true, errHas: `event 1 (line 1, byte 94): want , or ] after event 0, found "{"`},
		{name: "empty batch", in: ok1 + "\n" + `{"batch":[]}`, ids: []string{"a"}, partial: true, errHas: "event 1 (line 2, byte 93): batch is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, ndjson := range []bool{false, true} {
				var out bytes.Buffer
				stats, code, err := TransformStream(iotest.HalfReader(strings.NewReader(tc.in)), &out,
					StreamOptions{Now: fixedNow, NDJSON: ndjson, MaxEventBytes: 32768}, DefaultSettings())
				if tc.errHas != "" {
					if code != ExitBadInput || err == nil || !errors.Is(err, spec.ErrMalformed) || !strings.Contains(err.Error(), tc.errHas) {
						t.Fatalf("exit %d, error %v; want exit 2 and %q", code, err, tc.errHas)
					}
				} else if code != tc.code || err != nil {
					t.Fatalf("exit %d (%v), want %d", code, err, tc.code)
				}
				ids := outcomeIDs(t, out.String(), ndjson, tc.partial)
				if strings.Join(ids, ",") != strings.Join(tc.ids, ",") || stats.Events != len(tc.ids) {
					t.Errorf("outcomes %q (stats %+v), want %q", ids, stats, tc.ids)
				}
			}
		})
	}
}

// outcomeIDs reads the messageIds of the outcomes written; partial is an
// output cut by an input error (a JSON array left open).
func outcomeIDs(t *testing.T, out string, ndjson, partial bool) []string {
	t.Helper()
	var outs []Outcome
	switch {
	case out == "":
	case ndjson:
		dec := json.NewDecoder(strings.NewReader(out))
		for {
			var o Outcome
			if err := dec.Decode(&o); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("output is not NDJSON: %v\n%s", err, out)
			}
			outs = append(outs, o)
		}
	default:
		if partial {
			if strings.HasSuffix(out, "]\n") {
				t.Fatalf("an output cut by an input error ends like a whole array: %s", out)
			}
			out += "]"
		}
		if err := json.Unmarshal([]byte(out), &outs); err != nil {
			t.Fatalf("output is not a JSON array: %v\n%s", err, out)
		}
	}
	ids := []string{}
	for _, o := range outs {
		if o.Error == nil {
			ids = append(ids, o.MessageID)
		} else if strings.HasPrefix(o.MessageID, "relay-") || o.MessageID == "" {
			ids = append(ids, "")
		} else {
			ids = append(ids, o.MessageID)
		}
	}
	return ids
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("pipe closed")
	}
	return len(p), nil
}

func TestStreamWriteError(t *testing.T) {
	ev := `{"type":"track","messageId":"a","userId":"u","event":"E","timestamp":"2026-03-01T12:00:00Z"}` + "\n"
	_, code, err := TransformStream(strings.NewReader(strings.Repeat(ev, 5000)), &failingWriter{n: 100 << 10},
		StreamOptions{Now: fixedNow}, DefaultSettings())
	if code != ExitBadInput || err == nil || !strings.Contains(err.Error(), "write output: pipe closed") || errors.Is(err, spec.ErrMalformed) {
		t.Fatalf("exit %d, error %v; want exit 2 and the write error", code, err)
	}
}

// TestStreamLarge: 150,000 events in one array (15 times the old
// 10,000-event limit, about 25 MB) stream through with one outcome each.
func TestStreamLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large input")
	}
	const n = 150000
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("["))
		for i := range n {
			if i > 0 {
				pw.Write([]byte(","))
			}
			pw.Write([]byte(`{"type":"page","userId":"u","name":"P","timestamp":"2026-03-01T12:00:00Z","properties":{"i":` + strings.Repeat("1", 1+i%9) + `}}`))
		}
		pw.Write([]byte("]"))
		pw.Close()
	}()
	var out countingWriter
	stats, code, err := TransformStream(pr, &out, StreamOptions{NDJSON: true}, DefaultSettings())
	if err != nil || code != ExitOK || stats.Events != n || out.lines != n {
		t.Fatalf("exit %d (%v), %d outcomes, %d lines; want %d", code, err, stats.Events, out.lines, n)
	}
}

type countingWriter struct{ lines int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.lines += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

// FuzzTransformStream: whatever TransformOutput (the golden path) accepts,
// the stream gives byte for byte with --pretty, with the same exit code;
// on any input it never panics, exit 2 comes with an error, and otherwise
// the output is a JSON array with one element per outcome it counted.
func FuzzTransformStream(f *testing.F) {
	for _, path := range goldenFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		var gc goldenCase
		if err := json.Unmarshal(data, &gc); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(gc.Input))
	}
	f.Add([]byte("{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\"}\n{\"batch\":[{}]}\n"))
	f.Add([]byte("[1,{\"type\":\"page\"},[]]"))
	recv := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := DefaultSettings()
	f.Fuzz(func(t *testing.T, body []byte) {
		opts := StreamOptions{ReceivedAt: recv, MaxEventBytes: 32768, Pretty: true}
		var out bytes.Buffer
		stats, code, err := TransformStream(bytes.NewReader(body), &out, opts, s)
		if (code == ExitBadInput) != (err != nil) {
			t.Fatalf("exit %d with error %v", code, err)
		}
		want, wantCode, wantErr := TransformOutput(body, spec.Options{ReceivedAt: recv, MaxEventBytes: 32768}, s)
		if wantErr == nil {
			if code != wantCode || out.String() != string(want) {
				t.Fatalf("stream: exit %d (%v)\n%s\nTransformOutput: exit %d\n%s", code, err, out.Bytes(), wantCode, want)
			}
			return
		}
		if code == ExitBadInput {
			return
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(out.Bytes(), &arr); err != nil || len(arr) != stats.Events {
			t.Fatalf("output is not a JSON array of %d outcomes (%v): %s", stats.Events, err, out.Bytes())
		}
		if (code == ExitEventErr) != (stats.Errors > 0) {
			t.Fatalf("exit %d with %d errors", code, stats.Errors)
		}
	})
}
