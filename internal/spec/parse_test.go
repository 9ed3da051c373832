package spec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // the error message after "malformed request body: "
	}{
		{"empty", "", "body is empty"},
		{"whitespace", " \n\t", "body is empty"},
		{"not JSON", "hello", "invalid JSON at byte 1: invalid character 'h' looking for beginning of value"},
		{"truncated object", `{"type":"track"`, "invalid JSON at byte 15: unexpected end of JSON input"},
		{"truncated array", `[{"type":"track"},`, "invalid JSON at byte 18: unexpected end of JSON input"},
		{"trailing garbage", `{"type":"track"} x`, "invalid JSON at byte 18: invalid character 'x' after top-level value"},
		{"string", `"track"`, "body is a string, want an object or an array"},
		{"number", ` 42`, "body is a number, want an object or an array"},
		{"null", `null`, "body is null, want an object or an array"},
		{"boolean", `true`, "body is a boolean, want an object or an array"},
		{"empty array", `[ ]`, "the array of events is empty"},
		{"empty batch", `{"batch":[],"writeKey":"k"}`, "batch is empty"},
		{"batch object", `{"batch":{"type":"track"}}`, "batch is an object, want an array"},
		{"batch null", `{"batch":null}`, "batch is null, want an array"},
		{"batch string", `{"batch":"[]"}`, "batch is a string, want an array"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Parse([]byte(tc.body), Options{DefaultType: TypeTrack})
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) = %+v, %v; want an error wrapping ErrMalformed", tc.body, b, err)
			}
			if b != nil {
				t.Errorf("Parse returned a batch with its error: %+v", b)
			}
			if got, want := err.Error(), "malformed request body: "+tc.want; got != want {
				t.Errorf("error = %q\nwant    %q", got, want)
			}
		})
	}
}

// errOnly compares only the rejection of each item.
func itemErrs(b *Batch) []*Error {
	var out []*Error
	for _, it := range b.Items {
		out = append(out, it.Err)
	}
	return out
}

func TestParseRejects(t *testing.T) {
	long := strings.Repeat("m", 101)
	tests := []struct {
		name string
		body string
		opts Options
		want *Error
	}{
		{"missing type in batch", `{"batch":[{"event":"E","userId":"u"}]}`, Options{},
			&Error{CodeMissingField, "type", "type is missing; every event in a batch must name its call (identify, track, page, screen, group or alias)"}},
		{"empty type in batch", `[{"type":"","event":"E"}]`, Options{},
			&Error{CodeMissingField, "type", "type is missing; every event in a batch must name its call (identify, track, page, screen, group or alias)"}},
		{"unknown type", `[{"type":"purchase","event":"E"}]`, Options{},
			&Error{CodeInvalidType, "type", `type "purchase" is not one of identify, track, page, screen, group, alias`}},
		{"short type is not a type", `[{"type":"t","event":"E"}]`, Options{},
			&Error{CodeInvalidType, "type", `type "t" is not one of identify, track, page, screen, group, alias`}},
		{"long unknown type is truncated", `[{"type":"` + strings.Repeat("x", 60) + `"}]`, Options{},
			&Error{CodeInvalidType, "type", `type "` + strings.Repeat("x", 40) + `…" is not one of identify, track, page, screen, group, alias`}},
		{"type not a string", `[{"type":1}]`, Options{},
			&Error{CodeInvalidType, "type", "type is a number, want a string"}},
		{"element is a number", `[1]`, Options{}, &Error{CodeInvalidType, "", "event is a number, want an object"}},
		{"element is a string", `{"batch":["x"]}`, Options{}, &Error{CodeInvalidType, "", "event is a string, want an object"}},
		{"element is null", `[null]`, Options{}, &Error{CodeInvalidType, "", "event is null, want an object"}},
		{"element is an array", `[[{"type":"track"}]]`, Options{}, &Error{CodeInvalidType, "", "event is an array, want an object"}},
		{"userId boolean", `{"type":"identify","userId":true}`, Options{},
			&Error{CodeInvalidType, "userId", "userId is a boolean, want a string or a number"}},
		{"userId object", `{"type":"identify","userId":{"id":1}}`, Options{},
			&Error{CodeInvalidType, "userId", "userId is an object, want a string or a number"}},
		{"anonymousId array", `{"type":"identify","anonymousId":["a"]}`, Options{},
			&Error{CodeInvalidType, "anonymousId", "anonymousId is an array, want a string or a number"}},
		{"groupId boolean", `{"type":"group","groupId":false}`, Options{},
			&Error{CodeInvalidType, "groupId", "groupId is a boolean, want a string or a number"}},
		{"previousId object", `{"type":"alias","previousId":{}}`, Options{},
			&Error{CodeInvalidType, "previousId", "previousId is an object, want a string or a number"}},
		{"event number", `{"type":"track","event":7}`, Options{},
			&Error{CodeInvalidType, "event", "event is a number, want a string"}},
		{"name object", `{"type":"page","name":{}}`, Options{},
			&Error{CodeInvalidType, "name", "name is an object, want a string"}},
		{"category array", `{"type":"page","category":[]}`, Options{},
			&Error{CodeInvalidType, "category", "category is an array, want a string"}},
		{"traits string", `{"type":"identify","userId":"u","traits":"x"}`, Options{},
			&Error{CodeInvalidType, "traits", "traits is a string, want an object"}},
		{"properties array", `{"type":"track","event":"E","properties":[1]}`, Options{},
			&Error{CodeInvalidType, "properties", "properties is an array, want an object"}},
		{"context number", `{"type":"track","event":"E","context":1}`, Options{},
			&Error{CodeInvalidType, "context", "context is a number, want an object"}},
		{"integrations boolean", `{"type":"track","event":"E","integrations":true}`, Options{},
			&Error{CodeInvalidType, "integrations", "integrations is a boolean, want an object"}},
		{"context.traits string", `{"type":"track","event":"E","context":{"traits":"x"}}`, Options{},
			&Error{CodeInvalidType, "context.traits", "context.traits is a string, want an object"}},
		{"track without event", `{"type":"track","userId":"u"}`, Options{},
			&Error{CodeMissingField, "event", "event is missing; a track call needs an event name"}},
		{"track with null event", `{"userId":"u","event":null}`, Options{DefaultType: TypeTrack},
			&Error{CodeMissingField, "event", "event is missing; a track call needs an event name"}},
		{"track with blank event", `{"type":"track","event":"  "}`, Options{},
			&Error{CodeMissingField, "event", "event is empty; a track call needs an event name"}},
		{"messageId over 100 characters", `{"type":"identify","messageId":"` + long + `"}`, Options{},
			&Error{CodeTooLong, "messageId", "messageId is 101 characters, over the 100-character limit"}},
		{"messageId over 100 multibyte characters", `{"type":"identify","messageId":"` + strings.Repeat("é", 101) + `"}`, Options{},
			&Error{CodeTooLong, "messageId", "messageId is 101 characters, over the 100-character limit"}},
		{"messageId number", `{"type":"identify","messageId":5}`, Options{},
			&Error{CodeInvalidType, "messageId", "messageId is a number, want a string"}},
		{"event over the size limit", `{"type":"track","event":"E","properties":{"p":"` + strings.Repeat("x", 100) + `"}}`, Options{MaxEventBytes: 64},
			&Error{CodeTooLarge, "", "event is 150 bytes, over the 64-byte limit"}},
		{"batch element over the size limit", `{"batch":[{"type":"track","event":"E","userId":"user-1"}]}`, Options{MaxEventBytes: 40},
			&Error{CodeTooLarge, "", "event is 46 bytes, over the 40-byte limit"}},
		{"bad envelope context", `{"batch":[{"type":"track","event":"E"}],"context":"x"}`, Options{},
			&Error{CodeInvalidType, "context", "the batch's context is a string, want an object"}},
		{"bad envelope integrations", `{"batch":[{"type":"track","event":"E"}],"integrations":[]}`, Options{},
			&Error{CodeInvalidType, "integrations", "the batch's integrations is an array, want an object"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Parse([]byte(tc.body), tc.opts)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d := cmp.Diff([]*Error{tc.want}, itemErrs(b)); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
			if !strings.Contains(b.Items[0].Err.Message, tc.want.Field) {
				t.Errorf("message %q does not name the field %q", b.Items[0].Err.Message, tc.want.Field)
			}
		})
	}
}

// TestParseRejectsKeepWhatWasRead: a rejected event still carries its
// messageId (so the gateway can report it) and the fields read before the
// problem.
func TestParseRejectsKeepWhatWasRead(t *testing.T) {
	b, err := Parse([]byte(`[{"type":"track","messageId":"m-1","userId":"u","properties":[]}]`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Item{
		Event: Event{Type: TypeTrack, MessageID: "m-1", UserID: "u"},
		Err:   &Error{CodeInvalidType, "properties", "properties is an array, want an object"},
	}
	if d := cmp.Diff(want, b.Items[0]); d != "" {
		t.Errorf("item (-want +got):\n%s", d)
	}
	long := strings.Repeat("m", 101)
	b, err = Parse([]byte(`{"type":"track","event":"E","messageId":"`+long+`"}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Items[0].Event.MessageID; got != long {
		t.Errorf("MessageID = %q, want the over-long id kept", got)
	}
}

// TestParseAccepts covers what Parse reads, and what it leaves to the mapping.
func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		body string
		opts Options
		want Event // MessageID is given by every body; times are not compared
	}{
		{"type from the path", `{"messageId":"m","event":"E","userId":"u"}`, Options{DefaultType: TypeTrack},
			Event{Type: TypeTrack, MessageID: "m", Event: "E", UserID: "u"}},
		{"type in the body wins over the path", `{"messageId":"m","type":"identify","userId":"u"}`, Options{DefaultType: TypeTrack},
			Event{Type: TypeIdentify, MessageID: "m", UserID: "u"}},
		{"type in any case", `{"messageId":"m","type":"Track","event":"E"}`, Options{},
			Event{Type: TypeTrack, MessageID: "m", Event: "E"}},
		{"default type in an array", `[{"messageId":"m","event":"E"}]`, Options{DefaultType: TypeTrack},
			Event{Type: TypeTrack, MessageID: "m", Event: "E"}},
		{"integer userId keeps every digit", `{"messageId":"m","type":"identify","userId":12345678901234567890}`, Options{},
			Event{Type: TypeIdentify, MessageID: "m", UserID: "12345678901234567890"}},
		{"negative and fractional ids", `{"messageId":"m","type":"identify","userId":-7,"anonymousId":1.50}`, Options{},
			Event{Type: TypeIdentify, MessageID: "m", UserID: "-7", AnonymousID: "1.5"}},
		{"exponent id", `{"messageId":"m","type":"identify","userId":1e3}`, Options{},
			Event{Type: TypeIdentify, MessageID: "m", UserID: "1000"}},
		{"numeric groupId and previousId", `[{"messageId":"m","type":"group","groupId":42,"previousId":7}]`, Options{},
			Event{Type: TypeGroup, MessageID: "m", GroupID: "42", PreviousID: "7"}},
		{"no userId or anonymousId is left to the mapping", `{"messageId":"m","type":"identify","traits":{"email":"a@b.c"}}`, Options{},
			Event{Type: TypeIdentify, MessageID: "m", Traits: obj(`{"email":"a@b.c"}`)}},
		{"group without groupId is left to the mapping", `{"messageId":"m","type":"group","userId":"u","traits":{"name":"Acme"}}`, Options{},
			Event{Type: TypeGroup, MessageID: "m", UserID: "u", Traits: obj(`{"name":"Acme"}`)}},
		{"alias without previousId is left to the mapping", `{"messageId":"m","type":"alias","userId":"u"}`, Options{},
			Event{Type: TypeAlias, MessageID: "m", UserID: "u"}},
		{"page fields", `{"messageId":"m","type":"page","anonymousId":"a","name":"Home","category":"Docs","properties":{"path":"/"}}`, Options{},
			Event{Type: TypePage, MessageID: "m", AnonymousID: "a", Name: "Home", Category: "Docs", Properties: obj(`{"path":"/"}`)}},
		{"screen", `{"messageId":"m","type":"screen","userId":"u","name":"Cart"}`, Options{},
			Event{Type: TypeScreen, MessageID: "m", UserID: "u", Name: "Cart"}},
		{"nulls are absent", `{"messageId":"m","type":"identify","userId":null,"anonymousId":null,"traits":null,"context":null,"integrations":null,"event":null,"timestamp":null}`, Options{},
			Event{Type: TypeIdentify, MessageID: "m"}},
		{"empty objects are nil", `{"messageId":"m","type":"track","event":"E","traits":{},"properties":{},"context":{},"integrations":{}}`, Options{},
			Event{Type: TypeTrack, MessageID: "m", Event: "E"}},
		{"escaped strings", `{"messageId":"m\u002d1","type":"track","event":"Caf\u00e9 \"Order\"","userId":"\u00fc"}`, Options{},
			Event{Type: TypeTrack, MessageID: "m-1", Event: `Café "Order"`, UserID: "ü"}},
		{"invalid UTF-8 is replaced", "{\"messageId\":\"m\",\"type\":\"track\",\"event\":\"a\xffb\"}", Options{},
			Event{Type: TypeTrack, MessageID: "m", Event: "a\uFFFDb"}},
		{"unknown keys are dropped", `{"messageId":"m","type":"track","event":"E","_metadata":{"x":1},"channel":"server","rudderId":"r","writeKey":"secret"}`, Options{},
			Event{Type: TypeTrack, MessageID: "m", Event: "E"}},
		{"_metadata.bundled is kept, its other keys dropped", `{"messageId":"m","type":"track","event":"E","_metadata":{"bundled":["Klaviyo",1,"Segment.io",""],"unbundled":[]}}`, Options{},
			Event{Type: TypeTrack, MessageID: "m", Event: "E", Bundled: []string{"Klaviyo", "Segment.io"}}},
		{"malformed _metadata is ignored", `{"messageId":"m","type":"track","event":"E","_metadata":{"bundled":"Klaviyo"}}`, Options{},
			Event{Type: TypeTrack, MessageID: "m", Event: "E"}},
		{"context.traits kept in context", `{"messageId":"m","type":"track","event":"E","context":{"traits":{"email":"a@b.c"},"ip":"1.2.3.4"}}`, Options{},
			Event{Type: TypeTrack, MessageID: "m", Event: "E", Context: obj(`{"traits":{"email":"a@b.c"},"ip":"1.2.3.4"}`)}},
		{"messageId of exactly 100 characters", `{"messageId":"` + strings.Repeat("m", 100) + `","type":"identify"}`, Options{},
			Event{Type: TypeIdentify, MessageID: strings.Repeat("m", 100)}},
		{"event exactly at the size limit", `{"messageId":"m","type":"track","event":"E"}`, Options{MaxEventBytes: 44},
			Event{Type: TypeTrack, MessageID: "m", Event: "E"}},
	}
	ignoreTimes := cmpopts.IgnoreFields(Event{}, "Timestamp", "OriginalTimestamp", "SentAt", "ReceivedAt")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Parse([]byte(tc.body), tc.opts)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(b.Items) != 1 {
				t.Fatalf("got %d items, want 1", len(b.Items))
			}
			if b.Items[0].Err != nil {
				t.Fatalf("rejected: %+v", b.Items[0].Err)
			}
			if d := cmp.Diff(tc.want, b.Items[0].Event, ignoreTimes); d != "" {
				t.Errorf("event (-want +got):\n%s", d)
			}
			roundTrip(t, b.Items[0].Event)
		})
	}
}

func TestParseMixedBatchKeepsOrder(t *testing.T) {
	body := `{"batch":[
		{"type":"track","event":"A","messageId":"1"},
		42,
		{"type":"nope","messageId":"3"},
		{"type":"identify","userId":"u","messageId":"4"}]}`
	b, err := Parse([]byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ids, codes []string
	for _, it := range b.Items {
		ids = append(ids, it.Event.MessageID)
		code := ""
		if it.Err != nil {
			code = it.Err.Code
		}
		codes = append(codes, code)
	}
	if d := cmp.Diff([]string{"1", "", "3", "4"}, ids); d != "" {
		t.Errorf("messageIds (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"", CodeInvalidType, CodeInvalidType, ""}, codes); d != "" {
		t.Errorf("codes (-want +got):\n%s", d)
	}
}

func TestParseEnvelope(t *testing.T) {
	body := `{"batch":[
		{"type":"identify","messageId":"1","userId":"u","context":{"traits":{"email":"a@b.c"},"ip":"9.9.9.9","library":null}},
		{"type":"track","messageId":"2","event":"E","userId":"u","integrations":{"Mixpanel":false,"Klaviyo":{"listId":"L2"}},"context":{"library":{"name":"own"}}},
		{"type":"track","messageId":"3","event":"E","userId":"u","sentAt":"2026-01-01T00:00:09Z"}],
	 "context":{"library":{"name":"analytics-go","version":"3.0.0"},"ip":"1.1.1.1"},
	 "integrations":{"All":false,"Klaviyo":true},
	 "sentAt":"2026-01-01T00:00:05Z","timestamp":"2000-01-01T00:00:00Z","messageId":"batch-id","writeKey":"WK"}`
	b, err := Parse([]byte(body), Options{ReceivedAt: ts("2026-01-01T00:00:10Z")})
	if err != nil {
		t.Fatal(err)
	}
	if b.WriteKey != "WK" {
		t.Errorf("WriteKey = %q, want WK", b.WriteKey)
	}
	want := []Item{{Event: Event{
		Type: TypeIdentify, MessageID: "1", UserID: "u",
		// own ip wins; a null own key is filled from the envelope
		Context:      obj(`{"traits":{"email":"a@b.c"},"ip":"9.9.9.9","library":{"name":"analytics-go","version":"3.0.0"}}`),
		Integrations: obj(`{"All":false,"Klaviyo":true}`),
		Timestamp:    ts("2026-01-01T00:00:10Z"), OriginalTimestamp: ts("2026-01-01T00:00:10Z"),
		SentAt: ts("2026-01-01T00:00:05Z"), ReceivedAt: ts("2026-01-01T00:00:10Z"),
	}}, {Event: Event{
		Type: TypeTrack, MessageID: "2", UserID: "u", Event: "E",
		// an own top-level key wins whole: no envelope library.version
		Context:      obj(`{"library":{"name":"own"},"ip":"1.1.1.1"}`),
		Integrations: obj(`{"All":false,"Klaviyo":{"listId":"L2"},"Mixpanel":false}`),
		Timestamp:    ts("2026-01-01T00:00:10Z"), OriginalTimestamp: ts("2026-01-01T00:00:10Z"),
		SentAt: ts("2026-01-01T00:00:05Z"), ReceivedAt: ts("2026-01-01T00:00:10Z"),
	}}, {Event: Event{
		Type: TypeTrack, MessageID: "3", UserID: "u", Event: "E",
		Context:      obj(`{"library":{"name":"analytics-go","version":"3.0.0"},"ip":"1.1.1.1"}`),
		Integrations: obj(`{"All":false,"Klaviyo":true}`),
		Timestamp:    ts("2026-01-01T00:00:10Z"), OriginalTimestamp: ts("2026-01-01T00:00:10Z"),
		SentAt: ts("2026-01-01T00:00:09Z"), ReceivedAt: ts("2026-01-01T00:00:10Z"), // own sentAt wins
	}}}
	if d := cmp.Diff(want, b.Items); d != "" {
		t.Errorf("items (-want +got):\n%s", d)
	}

	// Envelope values are copied into each event, not shared: changing one
	// event's context must not change another's.
	b.Items[0].Event.Context["library"].(map[string]any)["name"] = "changed"
	if got := b.Items[2].Event.Context["library"].(map[string]any)["name"]; got != "analytics-go" {
		t.Errorf("events share envelope maps: item 2 library.name = %v", got)
	}
}

func TestParseWriteKey(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"single event", `{"type":"track","event":"E","writeKey":"K1"}`, "K1"},
		{"envelope wins over elements", `{"batch":[{"type":"track","event":"E","writeKey":"K2"}],"writeKey":"K1"}`, "K1"},
		{"first element that has one", `{"batch":[{"type":"track","event":"E"},{"type":"track","event":"E","writeKey":"K2"},{"type":"track","event":"E","writeKey":"K3"}]}`, "K2"},
		{"array", `[{"type":"track","event":"E","writeKey":"K4"}]`, "K4"},
		{"not a string is ignored", `{"type":"track","event":"E","writeKey":5}`, ""},
		{"none", `[{"type":"track","event":"E"}]`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Parse([]byte(tc.body), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if b.WriteKey != tc.want {
				t.Errorf("WriteKey = %q, want %q", b.WriteKey, tc.want)
			}
		})
	}
}

func TestParseTimestamps(t *testing.T) {
	recv := ts("2026-11-23T12:00:10Z")
	type times struct{ Timestamp, Original, Sent, Received time.Time }
	tests := []struct {
		name      string
		fields    string // extra keys of a track event
		envSentAt string
		recv      time.Time
		want      times
	}{
		{"skew corrected from originalTimestamp and sentAt",
			`"originalTimestamp":"2026-11-23T12:00:00Z","sentAt":"2026-11-23T12:00:05Z"`, "", recv,
			times{ts("2026-11-23T12:00:05Z"), ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:00:05Z"), recv}},
		{"client clock ahead of the server",
			`"originalTimestamp":"2026-11-23T13:00:00Z","sentAt":"2026-11-23T13:00:02Z"`, "", recv,
			times{ts("2026-11-23T12:00:08Z"), ts("2026-11-23T13:00:00Z"), ts("2026-11-23T13:00:02Z"), recv}},
		{"originalTimestamp wins over timestamp",
			`"originalTimestamp":"2026-11-23T12:00:00Z","timestamp":"2020-01-01T00:00:00Z","sentAt":"2026-11-23T12:00:01Z"`, "", recv,
			times{ts("2026-11-23T12:00:09Z"), ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:00:01Z"), recv}},
		{"timestamp when there is no originalTimestamp",
			`"timestamp":"2026-11-23T12:00:00Z"`, "2026-11-23T12:00:03Z", recv,
			times{ts("2026-11-23T12:00:07Z"), ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:00:03Z"), recv}},
		{"event sentAt wins over the envelope's",
			`"timestamp":"2026-11-23T12:00:00Z","sentAt":"2026-11-23T12:00:01Z"`, "2026-11-23T12:00:03Z", recv,
			times{ts("2026-11-23T12:00:09Z"), ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:00:01Z"), recv}},
		{"no sentAt: orig as sent, no correction",
			`"timestamp":"2026-11-23T11:00:00Z"`, "", recv,
			times{ts("2026-11-23T11:00:00Z"), ts("2026-11-23T11:00:00Z"), recv, recv}},
		{"no orig: receivedAt",
			`"sentAt":"2026-11-23T12:00:05Z"`, "", recv,
			times{recv, recv, ts("2026-11-23T12:00:05Z"), recv}},
		{"nothing known: receivedAt everywhere", ``, "", recv,
			times{recv, recv, recv, recv}},
		{"unparseable originalTimestamp falls back to timestamp",
			`"originalTimestamp":"2015-2-02T00:30:08.276Z","timestamp":"2026-11-23T12:00:00Z"`, "", recv,
			times{ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:00:00Z"), recv, recv}},
		{"unparseable everything falls back to receivedAt",
			`"originalTimestamp":"yesterday","timestamp":1700000000,"sentAt":"2026-13-01T00:00:00Z"`, "", recv,
			times{recv, recv, recv, recv}},
		{"nanoseconds",
			`"originalTimestamp":"2026-11-23T12:00:00.123456789Z","sentAt":"2026-11-23T12:00:00.223456789Z"`, "", recv,
			times{ts("2026-11-23T12:00:09.9Z"), ts("2026-11-23T12:00:00.123456789Z"), ts("2026-11-23T12:00:00.223456789Z"), recv}},
		{"offsets become UTC",
			`"originalTimestamp":"2026-11-23T13:00:00+01:00","sentAt":"2026-11-23T07:00:01-05:00"`, "", recv,
			times{ts("2026-11-23T12:00:09Z"), ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:00:01Z"), recv}},
		{"a time JSON cannot hold is unparseable",
			`"originalTimestamp":"9999-12-31T23:00:00-05:00"`, "", recv,
			times{recv, recv, recv, recv}},
		{"receivedAt in another zone is given in UTC",
			`"originalTimestamp":"2026-11-23T12:00:00Z"`, "", recv.In(time.FixedZone("X", 3600)),
			times{ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:00:00Z"), recv, recv}},
		// relay transform: no ReceivedAt, no correction.
		{"transform: orig, uncorrected",
			`"originalTimestamp":"2026-11-23T12:00:00Z","sentAt":"2026-11-23T12:00:05Z"`, "", time.Time{},
			times{ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:00:05Z"), time.Time{}}},
		{"transform: the event's receivedAt is honoured",
			`"timestamp":"2026-11-23T12:00:00Z","sentAt":"2026-11-23T12:00:05Z","receivedAt":"2026-11-23T12:00:10Z"`, "", time.Time{},
			times{ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:00:05Z"), recv}},
		{"transform: only receivedAt",
			`"receivedAt":"2026-11-23T12:00:10Z"`, "", time.Time{},
			times{recv, recv, recv, recv}},
		{"transform: nothing known is zero", ``, "", time.Time{},
			times{}},
		{"server: the event's receivedAt is ignored",
			`"receivedAt":"2000-01-01T00:00:00Z"`, "", recv,
			times{recv, recv, recv, recv}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := `{"type":"track","event":"E","messageId":"m"`
			if tc.fields != "" {
				ev += "," + tc.fields
			}
			ev += "}"
			body := ev
			if tc.envSentAt != "" {
				body = `{"batch":[` + ev + `],"sentAt":"` + tc.envSentAt + `"}`
			}
			b, err := Parse([]byte(body), Options{ReceivedAt: tc.recv})
			if err != nil {
				t.Fatal(err)
			}
			it := b.Items[0]
			if it.Err != nil {
				t.Fatalf("rejected: %v", it.Err)
			}
			got := times{it.Event.Timestamp, it.Event.OriginalTimestamp, it.Event.SentAt, it.Event.ReceivedAt}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("times (-want +got):\n%s", d)
			}
			for _, tm := range []time.Time{got.Timestamp, got.Original, got.Sent, got.Received} {
				if tm.Location() != time.UTC {
					t.Errorf("time %v is not in UTC", tm)
				}
			}
			roundTrip(t, it.Event)
		})
	}
}

func TestGeneratedMessageID(t *testing.T) {
	parse := func(t *testing.T, body string, opts Options) string {
		t.Helper()
		b, err := Parse([]byte(body), opts)
		if err != nil {
			t.Fatal(err)
		}
		it := b.Items[len(b.Items)-1]
		if it.Err != nil {
			t.Fatalf("rejected: %v", it.Err)
		}
		return it.Event.MessageID
	}
	const base = `{"type":"track","event":"E","userId":"u","timestamp":"2026-11-23T12:00:00Z"}`
	id := parse(t, base, Options{})
	// Pinned (recomputed independently: SHA-256 over uvarint-length-prefixed
	// "track", then each sorted key and its compact value): changing the
	// scheme makes a retry that spans an upgrade a duplicate.
	if want := "relay-115ece155fd6a7fae7eec31505864106"; id != want {
		t.Errorf("id = %q, want %q", id, want)
	}
	if !strings.HasPrefix(id, GeneratedMessageIDPrefix) || len(id) != len(GeneratedMessageIDPrefix)+32 {
		t.Fatalf("generated id %q: want %q + 32 hex digits", id, GeneratedMessageIDPrefix)
	}

	same := []struct{ name, body string }{
		{"again", base},
		{"reordered keys and whitespace", `{ "userId" : "u", "timestamp":"2026-11-23T12:00:00Z", "event":"E", "type":"track" }`},
		{"retry with a new sentAt", `{"type":"track","event":"E","userId":"u","timestamp":"2026-11-23T12:00:00Z","sentAt":"2026-11-23T12:00:09Z"}`},
		{"writeKey and _metadata", `{"type":"track","event":"E","userId":"u","timestamp":"2026-11-23T12:00:00Z","writeKey":"k","_metadata":{"a":1}}`},
		{"empty messageId", `{"type":"track","event":"E","userId":"u","timestamp":"2026-11-23T12:00:00Z","messageId":""}`},
		{"null messageId", `{"type":"track","event":"E","userId":"u","timestamp":"2026-11-23T12:00:00Z","messageId":null}`},
		{"another place in a batch", `{"batch":[{"type":"track","event":"X","messageId":"x"},` + base + `],"sentAt":"2026-11-23T12:00:01Z"}`},
	}
	for _, tc := range same {
		t.Run("same/"+tc.name, func(t *testing.T) {
			if got := parse(t, tc.body, Options{ReceivedAt: time.Now()}); got != id {
				t.Errorf("id = %q, want %q", got, id)
			}
		})
	}
	differ := []struct {
		name, body string
		opts       Options
	}{
		{"another event name", `{"type":"track","event":"F","userId":"u","timestamp":"2026-11-23T12:00:00Z"}`, Options{}},
		{"another time", `{"type":"track","event":"E","userId":"u","timestamp":"2026-11-23T12:00:01Z"}`, Options{}},
		{"another property", `{"type":"track","event":"E","userId":"u","timestamp":"2026-11-23T12:00:00Z","properties":{"a":1}}`, Options{}},
		{"type from another path", `{"event":"E","userId":"u","timestamp":"2026-11-23T12:00:00Z"}`, Options{DefaultType: TypePage}},
	}
	seen := map[string]string{id: "base"}
	for _, tc := range differ {
		t.Run("differ/"+tc.name, func(t *testing.T) {
			got := parse(t, tc.body, tc.opts)
			if prev, dup := seen[got]; dup {
				t.Errorf("id %q equals that of %s", got, prev)
			}
			seen[got] = tc.name
		})
	}
}

// TestParseKeepsNothingFromBody: the gateway reuses its read buffers, so a
// Batch must not alias the body.
func TestParseKeepsNothingFromBody(t *testing.T) {
	const body = `{"batch":[{"type":"track","event":"Order Completed","userId":"u-1","anonymousId":42,
		"messageId":"m-1","properties":{"a":"b"},"context":{"traits":{"email":"e@x.io"}},"integrations":{"Klaviyo":{"listId":"L"}},
		"timestamp":"2026-11-23T00:00:00Z"},{"type":"identify","userId":"u-2"}],"writeKey":"WK","context":{"ip":"1.1.1.1"}}`
	opts := Options{ReceivedAt: ts("2026-11-23T00:00:01Z")}
	want, err := Parse([]byte(body), opts)
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte(body)
	got, err := Parse(buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'x'
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("batch changed with the body (-want +got):\n%s", d)
	}
}
