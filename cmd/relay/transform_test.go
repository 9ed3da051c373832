package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runTransformCmd(t testing.TB, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"transform"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type outcome struct {
	MessageID string            `json:"messageId"`
	Requests  []json.RawMessage `json:"requests"`
	Skipped   string            `json:"skipped"`
	Warnings  []string          `json:"warnings"`
	Error     *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeOutput(t *testing.T, stdout string) []outcome {
	t.Helper()
	var outs []outcome
	if err := json.Unmarshal([]byte(stdout), &outs); err != nil {
		t.Fatalf("stdout is not a JSON array of outcomes: %v\n%s", err, stdout)
	}
	for _, o := range outs {
		for i, r := range o.Requests {
			var c bytes.Buffer
			if err := json.Compact(&c, r); err != nil {
				t.Fatal(err)
			}
			o.Requests[i] = c.Bytes()
		}
	}
	return outs
}

const (
	trackOK    = `{"type":"track","messageId":"m1","userId":"u1","event":"Clicked","timestamp":"2026-03-01T12:00:00.123Z","properties":{"x":1}}`
	pageSkip   = `{"type":"page","messageId":"m2","userId":"u1","name":"Home","timestamp":"2026-03-01T12:00:00Z"}`
	trackNoID  = `{"type":"track","messageId":"m3","event":"Clicked","anonymousId":"a1","timestamp":"2026-03-01T12:00:00Z"}`
	identifyLs = `{"type":"identify","messageId":"m4","userId":"u4","traits":{"email":"a@example.com"},"timestamp":"2026-03-01T12:00:00Z"}`
)

func TestTransformExitCodes(t *testing.T) {
	yamlSettings := writeFile(t, "s.yaml", "privateKey: pk_SECRET_1\nlistId: L1\nconfirmOptin: false\n")
	jsonSettings := writeFile(t, "s.json", `{"fallbackOnAnonymousId": true, "apiKey": "PUB"}`)
	unknown := writeFile(t, "bad.json", `{"privateApiKey":"pk_SECRET_2","listMod":"add"}`)
	invalid := writeFile(t, "invalid.yaml", "privateApiKey: pk_SECRET_3\nlistMode: merge\n")
	wrongType := writeFile(t, "type.json", `{"confirmOptin":"yes"}`)

	tests := []struct {
		name       string
		stdin      string
		args       []string
		code       int
		n          int    // output elements (code 0/1)
		stderrHas  string // (code 2)
		check      func(t *testing.T, outs []outcome)
		noSecretIn string
	}{
		{name: "one event", stdin: trackOK, code: 0, n: 1, check: func(t *testing.T, o []outcome) {
			if len(o[0].Requests) != 1 || o[0].Error != nil || o[0].MessageID != "m1" {
				t.Errorf("outcome = %+v", o[0])
			}
		}},
		{name: "skipped only", stdin: pageSkip, code: 0, n: 1, check: func(t *testing.T, o []outcome) {
			if o[0].Skipped == "" || o[0].Requests == nil || len(o[0].Requests) != 0 {
				t.Errorf("skipped outcome = %+v", o[0])
			}
		}},
		{name: "array in order", stdin: "[" + trackOK + "," + pageSkip + "]", code: 0, n: 2, check: func(t *testing.T, o []outcome) {
			if o[0].MessageID != "m1" || o[1].MessageID != "m2" {
				t.Errorf("order = %s, %s", o[0].MessageID, o[1].MessageID)
			}
		}},
		{name: "batch with an error is exit 1 and complete", stdin: `{"batch":[` + trackOK + "," + trackNoID + "," + pageSkip + `]}`, code: 1, n: 3,
			check: func(t *testing.T, o []outcome) {
				if o[1].Error == nil || o[1].Error.Code != "missing_identifier" || o[1].Requests != nil {
					t.Errorf("error outcome = %+v", o[1])
				}
				if o[0].Error != nil || o[2].Skipped == "" {
					t.Errorf("other outcomes = %+v %+v", o[0], o[2])
				}
			}},
		{name: "invalid event is exit 1", stdin: `[{"type":"track","messageId":"m9","userId":"u"}]`, code: 1, n: 1},
		{name: "YAML settings with Segment aliases", stdin: identifyLs, args: []string{"--settings", yamlSettings}, code: 0, n: 1,
			noSecretIn: "pk_SECRET_1",
			check: func(t *testing.T, o []outcome) {
				if len(o[0].Requests) != 2 || !strings.Contains(string(o[0].Requests[1]), `"historical_import":true`) {
					t.Errorf("identify with list = %s", o[0].Requests)
				}
			}},
		{name: "JSON settings", stdin: trackNoID, args: []string{"--settings=" + jsonSettings}, code: 0, n: 1, check: func(t *testing.T, o []outcome) {
			if len(o[0].Requests) != 1 || !strings.Contains(string(o[0].Requests[0]), `"anonymous_id":"a1"`) {
				t.Errorf("anonymous track = %s", o[0].Requests)
			}
		}},
		{name: "received-at corrects skew", code: 0, n: 1,
			stdin: `{"type":"track","messageId":"m5","userId":"u","event":"E","originalTimestamp":"2026-03-01T10:00:00Z","sentAt":"2026-03-01T10:00:05Z"}`,
			args:  []string{"--received-at", "2026-03-01T10:00:10Z"},
			check: func(t *testing.T, o []outcome) {
				if !strings.Contains(string(o[0].Requests[0]), `"time":"2026-03-01T10:00:05.000Z"`) {
					t.Errorf("time not corrected: %s", o[0].Requests[0])
				}
			}},
		{name: "not JSON", stdin: "hello", code: 2, stderrHas: "unreadable input: malformed request body: event 0 (line 1, byte 0)"},
		{name: "NDJSON in", stdin: trackOK + "\n" + pageSkip + "\n", code: 0, n: 2},
		{name: "bad format", stdin: trackOK, args: []string{"--format", "xml"}, code: 2, stderrHas: `--format "xml": want json or ndjson`},
		{name: "empty input", stdin: "", code: 0, n: 0},
		{name: "empty array", stdin: "[]", code: 0, n: 0},
		{name: "JSON scalar", stdin: "42", code: 2, stderrHas: "unreadable input: malformed request body: event 0 (line 1, byte 0): a number where an event"},
		{name: "unknown setting", stdin: trackOK, args: []string{"--settings", unknown}, code: 2, stderrHas: "listMod: unknown setting", noSecretIn: "pk_SECRET_2"},
		{name: "invalid setting value", stdin: trackOK, args: []string{"--settings", invalid}, code: 2, stderrHas: "listMode", noSecretIn: "pk_SECRET_3"},
		{name: "wrong setting type", stdin: trackOK, args: []string{"--settings", wrongType}, code: 2, stderrHas: "confirmOptin: want true or false"},
		{name: "missing settings file", stdin: trackOK, args: []string{"--settings", "/nonexistent/s.yaml"}, code: 2, stderrHas: "read settings"},
		{name: "bad received-at", stdin: trackOK, args: []string{"--received-at", "yesterday"}, code: 2, stderrHas: "--received-at"},
		{name: "unknown flag", stdin: trackOK, args: []string{"--nope"}, code: 2, stderrHas: "flag provided but not defined"},
		{name: "extra argument", stdin: trackOK, args: []string{"events.json"}, code: 2, stderrHas: "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runTransformCmd(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if tc.noSecretIn != "" && (strings.Contains(stdout, tc.noSecretIn) || strings.Contains(stderr, tc.noSecretIn)) {
				t.Errorf("a secret was printed")
			}
			if code == 2 {
				if stdout != "" {
					t.Errorf("exit 2 with stdout: %s", stdout)
				}
				if !strings.Contains(stderr, tc.stderrHas) {
					t.Errorf("stderr = %q, want it to contain %q", stderr, tc.stderrHas)
				}
				return
			}
			outs := decodeOutput(t, stdout)
			if len(outs) != tc.n {
				t.Fatalf("%d outcomes, want %d", len(outs), tc.n)
			}
			if tc.check != nil {
				tc.check(t, outs)
			}
		})
	}
}

// FuzzTransformCommand: whatever arrives on stdin, the command does not
// panic; exit 2 prints nothing on stdout; otherwise stdout is a JSON
// array and the exit code is 1 exactly when an element has an error.
// Plain `go test` runs the seeds through the command. Mutation fuzzing of
// this package is impractically slow (the binary links SQLite and NATS,
// and every package is coverage-instrumented), so the same properties are
// fuzzed on klaviyo.TransformOutput, the function the command calls, by
// FuzzTransform in internal/klaviyo (and the stream by FuzzTransformStream and
// eventstream's FuzzReader).
func FuzzTransformCommand(f *testing.F) {
	for _, s := range []string{trackOK, pageSkip, trackNoID, identifyLs, "[" + trackOK + "," + trackNoID + "]",
		`{"batch":[` + pageSkip + `],"context":{"traits":{"email":"b@example.com"}}}`, "", "null", "[]", `{"batch":[]}`,
		`{"type":"track","event":"Order Completed","userId":"u","properties":{"order_id":1,"products":[{"sku":2,"price":"1.5","quantity":"x"}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		code, stdout, _ := runTransformCmd(t, string(in))
		switch code {
		case 2:
			// Unreadable input after some events: their outcomes, in an
			// array left open.
			if stdout != "" {
				var outs []json.RawMessage
				if json.Unmarshal([]byte(stdout+"]"), &outs) != nil {
					t.Fatalf("exit 2 with stdout %q", stdout)
				}
			}
			return
		case 0, 1:
		default:
			t.Fatalf("exit code %d", code)
		}
		var outs []map[string]json.RawMessage
		if err := json.Unmarshal([]byte(stdout), &outs); err != nil {
			t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout)
		}
		anyErr := false
		for _, o := range outs {
			_, e := o["error"]
			_, r := o["requests"]
			if e == r {
				t.Fatalf("element with error=%v requests=%v", e, r)
			}
			_, partial := o["failures"]
			anyErr = anyErr || e || partial
		}
		if anyErr != (code == 1) {
			t.Fatalf("exit %d but errors in output = %v", code, anyErr)
		}
	})
}

func TestTransformFormats(t *testing.T) {
	in := "[" + trackOK + "," + trackNoID + "]"
	code, compact, _ := runTransformCmd(t, in)
	if code != 1 || strings.Count(compact, "\n") != 1 || !strings.HasPrefix(compact, `[{"messageId":"m1","requests":[{"method":"POST"`) {
		t.Errorf("default output (exit %d) is not one compact JSON array line:\n%s", code, compact)
	}
	code, pretty, _ := runTransformCmd(t, in, "--pretty")
	if code != 1 || !strings.HasPrefix(pretty, "[\n  {\n    \"messageId\": \"m1\",\n") || !strings.HasSuffix(pretty, "}\n]\n") {
		t.Errorf("--pretty output (exit %d):\n%s", code, pretty)
	}
	code, nd, _ := runTransformCmd(t, in, "--format", "ndjson")
	lines := strings.Split(strings.TrimSuffix(nd, "\n"), "\n")
	if code != 1 || len(lines) != 2 || !strings.HasPrefix(lines[1], `{"messageId":"m3","error":{"code":"missing_identifier"`) {
		t.Errorf("--format ndjson output (exit %d):\n%s", code, nd)
	}
	if a, b := decodeOutput(t, compact), decodeOutput(t, pretty); len(a) != 2 || len(b) != 2 || string(a[0].Requests[0]) != string(b[0].Requests[0]) {
		t.Errorf("compact and pretty outputs differ")
	}
}

// TestTransformReceivedTime: with confirmOptin false, an identify without
// a timestamp subscribes with consented_at = the time relay transform read
// it (issue 13), as the server uses the time it received the event.
func TestTransformReceivedTime(t *testing.T) {
	settings := writeFile(t, "s.yaml", "listId: L1\nconfirmOptin: false\n")
	read := time.Date(2026, 4, 5, 6, 7, 8, 9e6, time.UTC)
	in := `{"type":"identify","messageId":"m1","userId":"u1","traits":{"email":"a@example.com"}}`
	var out, errb bytes.Buffer
	code := transformWithClock(func() time.Time { return read })(context.Background(),
		[]string{"--settings", settings}, strings.NewReader(in), &out, &errb)
	if code != 0 || !strings.Contains(out.String(), `"consented_at":"2026-04-05T06:07:08.009Z"`) {
		t.Fatalf("exit %d, stderr %s, output:\n%s", code, errb.String(), out.String())
	}
	// The real clock: dated now, not refused for want of a timestamp.
	code, stdout, stderr := runTransformCmd(t, in, "--settings", settings)
	if code != 0 || !strings.Contains(stdout, `"historical_import":true`) || !strings.Contains(stdout, `"consented_at":"`+time.Now().UTC().Format("2006-01-02")) {
		t.Fatalf("wall clock: exit %d, stderr %s, output:\n%s", code, stderr, stdout)
	}
}

func TestTransformHelp(t *testing.T) {
	code, stdout, stderr := runTransformCmd(t, "", "-h")
	for _, want := range []string{"Exit codes:", "NDJSON", "--format", "--pretty", "--received-at", "byte\n     offset", "left unclosed"} {
		if !strings.Contains(stderr, strings.ReplaceAll(want, "--", "-")) && !strings.Contains(stderr, want) {
			t.Errorf("help does not mention %q:\n%s", want, stderr)
		}
	}
	if code != 0 || stdout != "" {
		t.Errorf("-h: exit %d, stdout %q", code, stdout)
	}
}

// TestTransformMidStreamError: input that breaks off after good events
// exits 2 naming where, after writing the good events' outcomes.
func TestTransformMidStreamError(t *testing.T) {
	code, stdout, stderr := runTransformCmd(t, trackOK+"\n"+pageSkip+"\n{\"type\":", "--format", "ndjson")
	if code != 2 || strings.Count(stdout, "\n") != 2 || !strings.Contains(stderr, "event 2 (line 3, byte") || !strings.Contains(stderr, "ends inside the event") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

// The settings' transformation, filter and privacy policy run before the
// mapping, as relay serve's delivery runs them, so the output is what
// would be sent: no value of a dropped key in it, the dropped keys and the
// transformation's logs as warnings, its null a skip, its throw an error.
func TestTransformRunsPreSinkStage(t *testing.T) {
	settings := writeFile(t, "hipaa.yaml", `privacyMode: hipaa
transformation: |
  export function transformEvent(event, metadata) {
    console.log("saw " + event.event);
    if (event.event === "Drop me") return null;
    if (event.event === "Boom") throw new Error("bad event");
    return event;
  }
`)
	in := `{"type":"track","messageId":"m1","userId":"u1","event":"Viewed Result","properties":{"diagnosis":"flu-secret-value"},"context":{"ip":"203.0.113.77","userAgent":"UA-secret","traits":{"email":"a@example.com"}}}
{"type":"track","messageId":"m2","userId":"u1","event":"Drop me"}
{"type":"track","messageId":"m3","userId":"u1","event":"Boom"}`
	code, stdout, stderr := runTransformCmd(t, in, "--settings", settings)
	if code != 1 {
		t.Fatalf("exit %d (one event fails), stderr %s", code, stderr)
	}
	for _, secret := range []string{"flu-secret-value", "203.0.113.77", "UA-secret"} {
		if strings.Contains(stdout, secret) {
			t.Errorf("a dropped value reached the output: %s", secret)
		}
	}
	o := decodeOutput(t, stdout)
	if len(o) != 3 {
		t.Fatalf("%d outcomes, want 3: %s", len(o), stdout)
	}
	if len(o[0].Requests) != 1 || !strings.Contains(string(o[0].Requests[0]), `"email":"a@example.com"`) ||
		strings.Join(o[0].Warnings, "|") != "dropped by the privacy policy: context.ip, context.userAgent, properties.diagnosis|transformation log: saw Viewed Result" {
		t.Errorf("m1: %+v", o[0])
	}
	if o[1].Skipped != "the transformation dropped the event (returned null)" || len(o[1].Requests) != 0 {
		t.Errorf("m2: %+v", o[1])
	}
	if o[2].Error == nil || o[2].Error.Code != "transformation_js_error" || !strings.Contains(o[2].Error.Message, "line 4") {
		t.Errorf("m3: %+v", o[2])
	}
	if strings.Contains(stderr, "not applied") {
		t.Errorf("stderr still says the stage is not applied: %s", stderr)
	}
}
