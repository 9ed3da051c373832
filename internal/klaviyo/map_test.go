package klaviyo

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaycdp/relay/internal/spec"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123_000_000, time.UTC)

// Map on spec.Event values built directly (no parser in the way).
func TestMapDirect(t *testing.T) {
	tests := []struct {
		name     string
		ev       *spec.Event
		mod      func(*Settings)
		kinds    []OpKind
		skipped  string
		errCode  string
		errField string
	}{
		{name: "nil event", ev: nil, errCode: CodeMissingField},
		{name: "no type", ev: &spec.Event{MessageID: "m"}, errCode: CodeMissingField, errField: "type"},
		{name: "unknown type", ev: &spec.Event{Type: "merge", MessageID: "m"}, errCode: CodeUnsupportedType, errField: "type"},
		{name: "track", ev: &spec.Event{Type: "track", MessageID: "m", UserID: "u", Event: "E", Timestamp: t0}, kinds: []OpKind{OpEvent}},
		{name: "track without properties has {} properties", ev: &spec.Event{Type: "track", MessageID: "m", UserID: "u", Event: "E"}, kinds: []OpKind{OpEvent}},
		{name: "track blank event", ev: &spec.Event{Type: "track", MessageID: "m", UserID: "u", Event: "  "}, errCode: CodeMissingField, errField: "event"},
		{name: "identify with list", ev: &spec.Event{Type: "identify", MessageID: "m", UserID: "u", Traits: map[string]any{"email": "a@b.co"}},
			mod: func(s *Settings) { s.ListID = "L" }, kinds: []OpKind{OpProfile, OpSubscribe}},
		{name: "identify add mode", ev: &spec.Event{Type: "identify", MessageID: "m", UserID: "u", Traits: map[string]any{"email": "a@b.co"}},
			mod: func(s *Settings) { s.ListID, s.ListMode = "L", ListModeAdd }, kinds: []OpKind{OpProfile, OpListAdd}},
		{name: "identify anonymous", ev: &spec.Event{Type: "identify", MessageID: "m", AnonymousID: "a"},
			mod: func(s *Settings) { s.FallbackOnAnonymousID, s.PublicAPIKey = true, "PK" }, kinds: []OpKind{OpClientProfile}},
		{name: "identify anonymous with explicit list", ev: &spec.Event{Type: "identify", MessageID: "m", AnonymousID: "a",
			Integrations: map[string]any{"Klaviyo": map[string]any{"listId": "L"}}},
			mod: func(s *Settings) { s.FallbackOnAnonymousID, s.PublicAPIKey = true, "PK" }, errCode: CodeMissingIdentifier, errField: "traits.email"},
		{name: "historical import needs a time", ev: &spec.Event{Type: "identify", MessageID: "m", UserID: "u", Traits: map[string]any{"email": "a@b.co"}},
			mod: func(s *Settings) { s.ListID, s.ConfirmOptin = "L", false }, errCode: CodeMissingField, errField: "timestamp"},
		{name: "bad listId type", ev: &spec.Event{Type: "identify", MessageID: "m", UserID: "u",
			Integrations: map[string]any{"Klaviyo": map[string]any{"listId": []any{"L"}}}}, errCode: CodeInvalidType, errField: "integrations.Klaviyo.listId"},
		{name: "bad confirmOptin type", ev: &spec.Event{Type: "identify", MessageID: "m", UserID: "u", Traits: map[string]any{"email": "a@b.co"},
			Integrations: map[string]any{"Klaviyo": map[string]any{"listId": "L", "confirmOptin": "no"}}}, errCode: CodeInvalidType, errField: "integrations.Klaviyo.confirmOptin"},
		{name: "bad fieldsToUnset", ev: &spec.Event{Type: "identify", MessageID: "m", UserID: "u",
			Integrations: map[string]any{"Klaviyo": map[string]any{"fieldsToUnset": 3.0}}}, errCode: CodeInvalidType, errField: "integrations.Klaviyo.fieldsToUnset"},
		{name: "trait of wrong type", ev: &spec.Event{Type: "identify", MessageID: "m", UserID: "u", Traits: map[string]any{"city": map[string]any{}}},
			errCode: CodeInvalidType, errField: "traits.city"},
		{name: "latitude not a number", ev: &spec.Event{Type: "identify", MessageID: "m", UserID: "u", Traits: map[string]any{"latitude": "north"}},
			errCode: CodeInvalidType, errField: "traits.latitude"},
		{name: "email of wrong type", ev: &spec.Event{Type: "track", MessageID: "m", UserID: "u", Event: "E", Properties: map[string]any{"email": true}},
			errCode: CodeInvalidType, errField: "properties.email"},
		{name: "currency of wrong type", ev: &spec.Event{Type: "track", MessageID: "m", UserID: "u", Event: "E", Properties: map[string]any{"currency": 1.0}},
			errCode: CodeInvalidType, errField: "properties.currency"},
		{name: "products not a list", ev: &spec.Event{Type: "track", MessageID: "m", UserID: "u", Event: "Order Completed", Properties: map[string]any{"products": "x"}},
			errCode: CodeInvalidType, errField: "properties.products"},
		{name: "disabled", ev: &spec.Event{Type: "track", MessageID: "m", Integrations: map[string]any{"Klaviyo": false}}, skipped: "integrations.Klaviyo is false"},
		{name: "alias", ev: &spec.Event{Type: "alias", MessageID: "m", UserID: "u", PreviousID: "p"}, skipped: "alias"},
		{name: "page off", ev: &spec.Event{Type: "page", MessageID: "m", UserID: "u"}, skipped: "sendPageAsTrack"},
		{name: "group missing id", ev: &spec.Event{Type: "group", MessageID: "m", UserID: "u"}, errCode: CodeMissingField, errField: "groupId"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := DefaultSettings()
			if tc.mod != nil {
				tc.mod(&s)
			}
			res, err := Map(tc.ev, s)
			if tc.errCode != "" {
				var me *MapError
				if !errors.As(err, &me) {
					t.Fatalf("err = %v, want a *MapError", err)
				}
				if me.Code != tc.errCode || me.Field != tc.errField || !strings.Contains(me.Message, tc.errField) {
					t.Errorf("MapError = %+v, want code %q field %q named in the message", me, tc.errCode, tc.errField)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.skipped != "" {
				if !strings.Contains(res.Skipped, tc.skipped) || len(res.Ops) != 0 {
					t.Errorf("result = %+v, want skipped containing %q", res, tc.skipped)
				}
				return
			}
			var kinds []OpKind
			for _, op := range res.Ops {
				kinds = append(kinds, op.Kind)
				if op.Kind == OpEvent && op.Event.Properties == nil {
					t.Errorf("event op with nil properties")
				}
			}
			if diff := cmp.Diff(tc.kinds, kinds); diff != "" {
				t.Errorf("op kinds (-want +got):\n%s", diff)
			}
		})
	}
}

// Map must not change the event it reads (the queue may hold it).
func TestMapDoesNotMutateEvent(t *testing.T) {
	ev := &spec.Event{Type: "track", MessageID: "m", UserID: "u", Event: "Checkout Started", Timestamp: t0,
		Properties: map[string]any{"order_id": "o", "value": 3.0, "items": []any{map[string]any{"product_id": "p", "total": 1.0}},
			"nested": map[string]any{"a": 1.0}, "email": "a@b.co"},
		Context: map[string]any{"traits": map[string]any{"firstName": "A", "prefs": map[string]any{"x": 1.0}}}}
	before, _ := json.Marshal(ev)
	s := DefaultSettings()
	s.FlattenProperties = true
	if _, err := Map(ev, s); err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(ev)
	if string(before) != string(after) {
		t.Errorf("Map changed the event:\n%s\n%s", before, after)
	}
}

// An Op survives a JSON round trip (queue, dead letters) with its metric.
func TestOpJSONRoundTrip(t *testing.T) {
	v := 25.0
	op := Op{Kind: OpEvent, Profile: &Profile{Type: "profile", Attributes: ProfileAttributes{Email: "a@b.co"}},
		Event: &EventAttributes{Metric: "Placed Order", Properties: map[string]any{"k": "v"}, Time: "2026-03-01T12:00:00.123Z",
			Value: &v, ValueCurrency: "USD", UniqueID: "o-1"}}
	data, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"metric":{"data":{"type":"metric","attributes":{"name":"Placed Order"}}}`) {
		t.Errorf("metric not rendered: %s", data)
	}
	var back Op
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(op, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestItemIndex(t *testing.T) {
	tests := []struct {
		ptr  string
		want int
		ok   bool
	}{
		{"/data/attributes/events-bulk-create/data/3/attributes/events/data/0/attributes/value", 3, true},
		{"/data/attributes/events-bulk-create/data/0", 0, true},
		{"/data/attributes/profiles/data/12/attributes/email", 12, true},
		{"data/attributes/profiles/data/7", 7, true},
		{"#/data/attributes/profiles/data/7", 7, true},
		{"/data/attributes/profiles/data/-1", 0, false},
		{"/data/attributes/profiles/data/+1", 0, false},
		{"/data/attributes/profiles/data/x", 0, false},
		{"/data/attributes/profiles", 0, false},
		{"/data/attributes/custom_source", 0, false},
		{"/data/relationships/list/data/id", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, ok := ItemIndex(tc.ptr)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ItemIndex(%q) = %d, %v; want %d, %v", tc.ptr, got, ok, tc.want, tc.ok)
		}
	}
}

// The bulk builders, fed with the ops of every golden case: every job
// validates against the OpenAPI spec, and item i of each job is ops[i]
// (the pointer ItemIndex reads back names the op it was built from).
func TestBulkJobsFromGoldenOps(t *testing.T) {
	v := klaviyoValidator(t)
	var events, profiles []Op
	lists := map[string][]Op{}
	subs := map[string][]Op{}
	unsubs := map[string][]Op{}
	for _, path := range goldenFiles(t) {
		gc := readCase(t, path)
		s := caseSettings(t, gc)
		b, err := spec.Parse(gc.Input, caseOptions(t, gc))
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range b.Items {
			if it.Err != nil {
				continue
			}
			res, err := Map(&it.Event, s)
			if err != nil {
				continue
			}
			for _, op := range res.Ops {
				switch op.Kind {
				case OpEvent:
					events = append(events, op)
				case OpProfile:
					profiles = append(profiles, op)
				case OpListAdd:
					lists[op.ListID] = append(lists[op.ListID], op)
				case OpSubscribe:
					k := fmt.Sprintf("%s|%v|%s", op.ListID, op.HistoricalImport, op.CustomSource)
					subs[k] = append(subs[k], op)
				case OpUnsubscribe:
					unsubs[op.ListID] = append(unsubs[op.ListID], op)
				}
			}
		}
	}
	if len(events) < 50 || len(profiles) < 20 || len(lists) == 0 || len(subs) == 0 || len(unsubs) == 0 {
		t.Fatalf("too few ops: %d events, %d profiles, %d lists, %d subs, %d unsubs", len(events), len(profiles), len(lists), len(subs), len(unsubs))
	}
	var reqs []Request
	var opsOf [][]Op
	add := func(r Request, ops []Op) { reqs = append(reqs, r); opsOf = append(opsOf, ops) }
	add(EventBulkJob(events), events)
	add(ProfileBulkImportJob(profiles, ""), profiles)
	for id, ops := range lists {
		add(ProfileBulkImportJob(ops, id), ops)
	}
	for _, ops := range subs {
		add(SubscribeJob(ops[0].ListID, ops[0].HistoricalImport, ops[0].CustomSource, ops), ops)
	}
	for id, ops := range unsubs {
		add(UnsubscribeJob(id, ops), ops)
	}
	anySubs := subs[firstKey(subs)]
	add(SubscribeJob("L1", anySubs[0].HistoricalImport, "Checkout opt-in", anySubs), anySubs)
	for ri, r := range reqs {
		checkRequest(t, v, "bulk", ri, r)
		raw, err := json.Marshal(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		var body any
		_ = json.Unmarshal(raw, &body)
		container := "profiles"
		if r.Path == "/api/event-bulk-create-jobs" {
			container = "events-bulk-create"
		}
		items := asList(dig(body, "data", "attributes", container, "data"))
		if len(items) != len(opsOf[ri]) {
			t.Fatalf("%s: %d items for %d ops", r.Path, len(items), len(opsOf[ri]))
		}
		for i, op := range opsOf[ri] {
			idx, ok := ItemIndex(fmt.Sprintf("/data/attributes/%s/data/%d/attributes", container, i))
			if !ok || idx != i {
				t.Fatalf("ItemIndex round trip: %d, %v", idx, ok)
			}
			item := items[idx]
			if container == "events-bulk-create" {
				ev := asList(dig(item, "attributes", "events", "data"))
				if len(ev) != 1 || dig(ev[0], "attributes", "unique_id") != op.Event.UniqueID {
					t.Fatalf("event item %d is not ops[%d]", idx, i)
				}
				if op.Profile.Attributes.AnonymousID != "" && dig(item, "attributes", "profile", "data", "attributes", "anonymous_id") != op.Profile.Attributes.AnonymousID {
					t.Errorf("event item %d lost anonymous_id", idx)
				}
				continue
			}
			a := op.Profile.Attributes
			want := a.Email + "|" + a.PhoneNumber
			got := fmt.Sprint(dig(item, "attributes", "email")) + "|" + fmt.Sprint(dig(item, "attributes", "phone_number"))
			got = strings.ReplaceAll(got, "<nil>", "")
			if got != want {
				t.Fatalf("%s item %d = %s, want ops[%d] %s", r.Path, idx, got, i, want)
			}
		}
	}
	// A subscription job with a custom source renders it.
	raw, _ := json.Marshal(reqs[len(reqs)-1].Body)
	if !strings.Contains(string(raw), `"custom_source":"Checkout opt-in"`) || !strings.Contains(string(raw), `"id":"L1"`) {
		t.Errorf("custom source job: %s", raw)
	}
}

func firstKey(m map[string][]Op) string {
	for k := range m {
		return k
	}
	return ""
}

// Ops a caller builds by hand (nil profile or event, unknown kind) render
// without panicking.
func TestRequestRobustness(t *testing.T) {
	s := DefaultSettings()
	if r := (Op{Kind: "nope"}).Request(s); r.Method != "" || r.Path != "" {
		t.Errorf("unknown kind = %+v", r)
	}
	for _, k := range []OpKind{OpEvent, OpProfile, OpSubscribe, OpUnsubscribe, OpListAdd, OpClientProfile} {
		r := Op{Kind: k}.Request(s)
		raw, err := json.Marshal(r.Body)
		if err != nil || !json.Valid(raw) {
			t.Errorf("%s with nil parts: %v %s", k, err, raw)
		}
	}
}

// TestOrderProductFailure: a bad product fails only its own Ordered
// Product event; the order and the other products are mapped.
func TestOrderProductFailure(t *testing.T) {
	ev := &spec.Event{Type: "track", MessageID: "m", UserID: "u", Event: "Order Completed",
		Properties: map[string]any{"order_id": "o1", "products": []any{1.0, map[string]any{"name": "no id"}, map[string]any{"sku": "s2"}}}}
	res, err := Map(ev, DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ops) != 2 || res.Ops[0].Event.Metric != "Placed Order" || res.Ops[1].Event.UniqueID != "o1_s2" {
		t.Fatalf("ops = %+v", res.Ops)
	}
	if len(res.Failures) != 2 || res.Failures[0].Field != "properties.products[0]" || res.Failures[1].Field != "properties.products[1]" ||
		res.Failures[0].Code != CodeInvalidType || res.Failures[1].Code != CodeMissingField {
		t.Errorf("failures = %+v", res.Failures)
	}
}

// TestPhoneCache: a cached answer is normalizePhone's, per region, and the
// cache stays within its bound.
func TestPhoneCache(t *testing.T) {
	var c phoneCache
	for range 2 {
		for _, tc := range []struct{ raw, region string }{
			{"+14155552671", ""}, {"4155552671", "US"}, {"4155552671", ""}, {"020 7946 0018", "GB"}, {"020 7946 0018", "US"}, {"nope", "US"},
		} {
			wantE, wantOK := normalizePhone(tc.raw, tc.region)
			if e, ok := c.normalize(tc.raw, tc.region); e != wantE || ok != wantOK {
				t.Errorf("normalize(%q, %q) = %q, %v; want %q, %v", tc.raw, tc.region, e, ok, wantE, wantOK)
			}
		}
	}
	for i := range phoneCacheMax + 10 {
		c.normalize(fmt.Sprintf("+1415555%04d", i), "")
	}
	if len(c.m) > phoneCacheMax {
		t.Errorf("cache holds %d numbers, over its bound %d", len(c.m), phoneCacheMax)
	}
}
