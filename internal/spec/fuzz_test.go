package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParse checks Parse's promises on any input: it never panics; it
// either fails with ErrMalformed and no batch, or returns at least one item;
// every item is rejected with a coded error or has a valid type and
// messageId; and every event survives the JSON round trip the queue gives it.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "wire", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		body, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, "", 0, int64(1795392030000000000))
	}
	for _, s := range []string{
		`{"userId":12345678901234567890,"event":"E","properties":{"a":[1,{"b":null}]}}`,
		`[{"type":"identify","traits":{},"context":{"traits":"x"}}, 1, null, "s"]`,
		`{"batch":[{"type":"track","event":"E"}],"context":{"library":{"name":"x"}},"integrations":{"All":false},"sentAt":"2026-01-01T00:00:00.123456789+05:30"}`,
		`{"type":"Track","event":"\u00e9\"","messageId":"","originalTimestamp":"9999-12-31T23:59:59-23:59","sentAt":"0000-01-01T00:00:00+01:00"}`,
		`{"batch":"x"}`, `[]`, `{}`, `"x"`, `{"type":"alias","previousId":1e400}`,
	} {
		f.Add([]byte(s), "track", 64, int64(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, defaultType string, maxBytes int, recvNanos int64) {
		var recv time.Time
		if recvNanos != 0 {
			recv = time.Unix(0, recvNanos)
		}
		b, err := Parse(body, Options{ReceivedAt: recv, DefaultType: defaultType, MaxEventBytes: maxBytes})
		if err != nil {
			if !errors.Is(err, ErrMalformed) || b != nil {
				t.Fatalf("Parse = %v, %v: want a nil batch and an error wrapping ErrMalformed", b, err)
			}
			return
		}
		if len(b.Items) == 0 {
			t.Fatal("no items and no error")
		}
		for i, it := range b.Items {
			checkItem(t, i, it)
		}
	})
}

func checkItem(t *testing.T, i int, it Item) {
	t.Helper()
	ev := it.Event
	if it.Err != nil {
		switch it.Err.Code {
		case CodeInvalidType, CodeMissingField, CodeTooLong, CodeTooLarge:
		default:
			t.Fatalf("item %d: unknown code %q", i, it.Err.Code)
		}
		if it.Err.Message == "" {
			t.Fatalf("item %d: error without a message", i)
		}
	} else {
		switch ev.Type {
		case TypeIdentify, TypeTrack, TypePage, TypeScreen, TypeGroup, TypeAlias:
		default:
			t.Fatalf("item %d: accepted with type %q", i, ev.Type)
		}
		if ev.MessageID == "" || utf8.RuneCountInString(ev.MessageID) > MaxMessageIDLength {
			t.Fatalf("item %d: accepted with messageId %q", i, ev.MessageID)
		}
		if ev.Type == TypeTrack && ev.Event == "" {
			t.Fatalf("item %d: track accepted without an event name", i)
		}
	}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("item %d: marshal: %v", i, err)
	}
	var back Event
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("item %d: unmarshal %s: %v", i, data, err)
	}
	if d := cmp.Diff(ev, back); d != "" {
		t.Fatalf("item %d: changed in a JSON round trip (-before +after):\n%s", i, d)
	}
	// The accessors must not panic on whatever Parse produced.
	_ = ev.UserTraits()
	_ = ev.Key()
	_, _ = ev.Destination("Klaviyo")
}

// FuzzParseElement holds ParseElement(raw) to Parse("[" + raw + "]"): the
// same batch, items and errors, on any input.
func FuzzParseElement(f *testing.F) {
	for _, s := range []string{
		`{"type":"track","event":"E","userId":"u","properties":{"a":[1,{"b":null}]},"context":{"traits":{"email":"a@b.co"}}}`,
		`{"batch":[{"type":"track","event":"E"}],"writeKey":"k"}`, ` {"type":"page"} `, `1`, `null`, `"s"`, `[]`, ``, `{`, `{}`, `1,2`,
		`{"type":"identify","messageId":"m","traits":{"name":"\u00e9\b"},"timestamp":"2026-01-01T00:00:00Z"}`,
		`{"type":"track","event":"E","type":"identify","tr\u0061its":{"a":1},"userId":7,"traits":{"b":2}}`,
	} {
		f.Add([]byte(s), 0, int64(0), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, maxBytes int, recvNanos int64, encode bool) {
		var recv time.Time
		if recvNanos != 0 {
			recv = time.Unix(0, recvNanos)
		}
		opts := Options{ReceivedAt: recv, MaxEventBytes: maxBytes, Encode: encode}
		got, gotErr := ParseElement(raw, opts)
		want, wantErr := Parse(append(append([]byte("["), raw...), ']'), opts)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("ParseElement error %v; Parse of the array: %v", gotErr, wantErr)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("ParseElement differs from Parse of the array (-want +got):\n%s", diff)
		}
		// Scanned ahead, as relay transform's stream reader does: the
		// same answer, and Scan accepts what ParseElement accepts.
		var sc ElementScanner
		n := sc.Scan(raw)
		if n == 0 {
			if len(raw) > 0 && raw[0] == '{' && gotErr == nil {
				t.Fatalf("Scan refused the valid object %q", raw)
			}
			return
		}
		if n != skipValue(raw, 0) {
			t.Fatalf("Scan found %d bytes; the object is %d", n, skipValue(raw, 0))
		}
		opts.Scanned = &sc
		scanned, err := ParseElement(raw[:n], opts)
		want, wantErr = Parse(append(append([]byte("["), raw[:n]...), ']'), Options{ReceivedAt: recv, MaxEventBytes: maxBytes, Encode: encode})
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("scanned ParseElement error %v; Parse of the array: %v", err, wantErr)
		}
		if diff := cmp.Diff(want, scanned, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("scanned ParseElement differs from Parse of the array (-want +got):\n%s", diff)
		}
	})
}
