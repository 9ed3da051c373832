package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sameAsDecoded checks Options.Encode against the default mode on one
// body: the same items and errors, and each payload decoding to exactly
// the Event (and Key) the default mode returns.
func sameAsDecoded(t *testing.T, body []byte, opts Options) {
	t.Helper()
	want, werr := Parse(body, opts)
	opts.Encode = true
	got, gerr := Parse(body, opts)
	if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
		t.Fatalf("errors differ: default %v, Encode %v", werr, gerr)
	}
	if werr != nil {
		return
	}
	if got.WriteKey != want.WriteKey || len(got.Items) != len(want.Items) {
		t.Fatalf("batch differs: default %q/%d items, Encode %q/%d", want.WriteKey, len(want.Items), got.WriteKey, len(got.Items))
	}
	for i, w := range want.Items {
		g := got.Items[i]
		if d := cmp.Diff(w.Err, g.Err); d != "" {
			t.Fatalf("item %d: errors differ (-default +Encode):\n%s", i, d)
		}
		if w.Err != nil {
			if g.Payload != nil || g.Event.MessageID != w.Event.MessageID {
				t.Fatalf("item %d: rejected with payload %q, messageId %q (want %q)", i, g.Payload, g.Event.MessageID, w.Event.MessageID)
			}
			continue
		}
		var back Event
		if err := json.Unmarshal(g.Payload, &back); err != nil {
			t.Fatalf("item %d: payload %s does not decode: %v", i, g.Payload, err)
		}
		if d := cmp.Diff(w.Event, back); d != "" {
			t.Fatalf("item %d: payload %s decodes differently (-default +Encode):\n%s", i, g.Payload, d)
		}
		if k := w.Event.Key(); g.Key != k {
			t.Fatalf("item %d: key %q, want %q", i, g.Key, k)
		}
	}
}

func TestEncodeMatchesDecoding(t *testing.T) {
	recv := ts("2026-11-27T10:00:00Z")
	for _, tc := range []struct{ name, body string }{
		{"track", `{"type":"track","event":"E","userId":"u1","properties":{"a":[1,{"b":null}],"s":"\u00e9"},"timestamp":"2026-11-27T09:59:58.5Z"}`},
		{"empty objects are absent", `{"type":"identify","userId":"u1","traits":{},"properties":{ },"context":{},"integrations":{}}`},
		{"nested objects close the object", `{"type":"track","event":"E","userId":"u","context":{"a":{"b":{}}}}`},
		{"envelope merged under the event", `{"batch":[
			{"type":"track","event":"E","anonymousId":"a","context":{"traits":{"email":"X@Y.COM"},"library":null}},
			{"type":"page","anonymousId":"b"},
			{"type":"page","anonymousId":"c","context":{},"integrations":{"Klaviyo":false}}],
			"context":{"library":{"name":"analytics-go"},"ip":"1.2.3.4"},"integrations":{"All":true},"sentAt":"2026-11-27T09:59:59Z"}`},
		{"repeated keys: the last wins", `{"type":"identify","traits":{"email":"a@x.com","email":"b@x.com"},"context":{"traits":{"a":1},"traits":null}}`},
		{"escaped keys", `{"type":"identify","traits":{"em\u0061il":" Mixed@Case.com "},"context":{"tr\u0061its":{"phone":"+1"}}}`},
		{"key from context traits of a track", `{"type":"track","event":"E","context":{"traits":{"phone":" +4712345678 "}}}`},
		{"key from the envelope's context traits", `{"batch":[{"type":"track","event":"E"}],"context":{"traits":{"email":"env@x.com"}}}`},
		{"group traits are not the user's", `{"type":"group","groupId":"g","traits":{"email":"group@x.com"}}`},
		{"null email falls to phone", `{"type":"identify","traits":{"email":null,"phone":"123"},"context":{"traits":{"email":"ctx@x.com"}}}`},
		{"numeric ids and control characters", `{"type":"alias","previousId":1e3,"userId":12345678901234567890,"messageId":"m\n\t\"\\\u0001"}`},
		{"numbers out of range", `[{"type":"track","event":"E","properties":{"v":1e400}},{"type":"track","event":"E","properties":{"v":"e400"}},{"type":"identify","traits":{"n":` + strings.Repeat("9", 400) + `}}]`},
		{"not objects", `[{"type":"track","event":"E","properties":[]},{"type":"identify","context":{"traits":"x"}},{"type":"identify","integrations":1}]`},
		{"bad envelope", `{"batch":[{"type":"track","event":"E"}],"context":[]}`},
		{"generated messageId", `{"type":"track","event":"E","userId":"u","properties":{"p":1}}`},
		{"whitespace", "{ \"type\" : \"Identify\" ,\n \"traits\" : { \"email\" : \"a@b.c\" } ,\n \"context\" : { \"x\" : 1 } }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sameAsDecoded(t, []byte(tc.body), Options{ReceivedAt: recv})
		})
	}
}

// The SDKs' own bodies, as captured on the wire.
func TestEncodeMatchesDecodingWire(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "wire", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no wire captures: %v", err)
	}
	for _, name := range files {
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sameAsDecoded(t, body, Options{ReceivedAt: ts("2026-11-27T10:00:00Z"), MaxEventBytes: 32 << 10})
	}
}

// FuzzEncode holds Options.Encode to the default mode on any input.
func FuzzEncode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "wire", "*.json"))
	for _, name := range files {
		if body, err := os.ReadFile(name); err == nil {
			f.Add(body, "", int64(1795392030000000000))
		}
	}
	for _, s := range []string{
		`{"batch":[{"type":"track","event":"E","context":{"a":null,"traits":{"email":"E@x"}}}],"context":{"a":{"b":1},"traits":null},"integrations":{"X":true}}`,
		`[{"type":"identify","traits":{"phone":"1","email":1}},{"type":"page","properties":{"n":1e400}}]`,
		`{"type":"screen","name":"\u0000\u2028","context":{"traits":{"em\u0061il":"x"}}}`,
		`{"batch":[{"type":"identify","userId":"u","destinations":{"Klaviyo":{"listId":"L1"}}},{"type":"track","event":"E","destinations":{}}],"destinations":{"X":1}}`,
	} {
		f.Add([]byte(s), "track", int64(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, defaultType string, recvNanos int64) {
		var recv time.Time
		if recvNanos != 0 {
			recv = time.Unix(0, recvNanos)
		}
		sameAsDecoded(t, body, Options{ReceivedAt: recv, DefaultType: defaultType})
	})
}

// mayOverflow only sends numbers that might not fit a float64 to the slow
// check; ids inside strings must not (they did, for most corpus events).
func TestMayOverflow(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want bool
	}{
		{`{"id":"4e9a1e123b","sku":"E-1000","ok":true,"n":1e5,"m":-2.5E-12}`, false},
		{`{"s":"\"e400\\"}`, false},
		{`{"n":1e400}`, true},
		{`{"n":[1E+308]}`, true}, // fits, but only the decoder can tell
		{`{"n":` + strings.Repeat("1", 300) + `}`, true},
		{`{"s":"` + strings.Repeat("1", 400) + `"}`, false},
	} {
		if got := mayOverflow([]byte(tc.raw)); got != tc.want {
			t.Errorf("mayOverflow(%.60s) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

// A caller that hands one Batch's Scratch and Items to the next Parse
// (the gateway does, request after request) gets the same batch as from
// fresh buffers, whatever the bodies' sizes and the earlier contents.
func TestReusedBuffers(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "wire", "*.json"))
	if err != nil || len(files) < 2 {
		t.Fatalf("want at least two wire captures: %v", err)
	}
	bodies := [][]byte{[]byte(`{"batch":[{"type":"track","event":"E","userId":"u","properties":{"p":"` + strings.Repeat("x", 5000) + `"}}]}`)}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	bodies = append(bodies, []byte(`{"type":"identify","userId":"small"}`), bodies[0])
	opts := Options{ReceivedAt: ts("2026-11-27T10:00:00Z"), Encode: true}
	var scratch []byte
	var items []Item
	for i, body := range bodies {
		fresh, err := Parse(body, opts)
		if err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		reuse := opts
		reuse.Scratch, reuse.Items = scratch, items
		got, err := Parse(body, reuse)
		if err != nil {
			t.Fatalf("body %d with reused buffers: %v", i, err)
		}
		if d := cmp.Diff(fresh.Items, got.Items); d != "" || got.WriteKey != fresh.WriteKey {
			t.Fatalf("body %d: reused buffers give a different batch (-fresh +reused):\n%s", i, d)
		}
		// Dirty the buffers as a later request would before handing them on.
		scratch, items = got.Scratch, got.Items
		for j := range scratch[:cap(scratch)] {
			scratch[:cap(scratch)][j] = '#'
		}
		clear(items)
	}
}
