package klaviyo

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/spec"
)

// stdOutcome is what the appender must match: encoding/json, HTML
// characters unescaped, compact.
func stdOutcome(t *testing.T, o *Outcome) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func checkAppendOutcome(t *testing.T, a *outcomeAppender, o *Outcome) {
	t.Helper()
	got, err := a.appendOutcome(nil, o)
	if err != nil {
		t.Fatalf("appendOutcome(%s): %v", o.MessageID, err)
	}
	if want := stdOutcome(t, o); !bytes.Equal(got, want) {
		t.Fatalf("appendOutcome(%s):\n got %s\nwant %s", o.MessageID, got, want)
	}
}

// TestAppendOutcomeMatchesEncodingJSON holds the hand-written appender to
// encoding/json byte for byte: every golden case with its own settings,
// the bench corpus with and without a list (subscription and list jobs),
// and values no case holds.
func TestAppendOutcomeMatchesEncodingJSON(t *testing.T) {
	var a outcomeAppender
	for _, path := range goldenFiles(t) {
		gc := readCase(t, path)
		outs, err := Transform(gc.Input, caseOptions(t, gc), caseSettings(t, gc))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for i := range outs {
			checkAppendOutcome(t, &a, &outs[i])
		}
	}
	withList := DefaultSettings()
	withList.ListID = "L1"
	for _, s := range []Settings{DefaultSettings(), withList} {
		outs, err := Transform(benchCorpus(), spec.Options{}, s)
		if err != nil {
			t.Fatal(err)
		}
		for i := range outs {
			checkAppendOutcome(t, &a, &outs[i])
		}
	}

	odd := "a\bb\fc<>&\u2028\x00\xff\\\"é"
	value := 1e-7
	p := &Profile{Type: "profile", ID: odd, Meta: &ProfileMeta{PatchProperties: &PatchProperties{Unset: []string{odd}}},
		Attributes: ProfileAttributes{Email: odd, AnonymousID: odd, Location: &Location{City: odd, Latitude: json.Number("1.5"), Longitude: ""},
			Properties: map[string]any{odd: []any{odd, 1e21, nil, true}},
			Subscriptions: &Subscriptions{SMS: &ChannelConsent{Marketing: &Consent{Consent: "SUBSCRIBED", ConsentedAt: odd},
				Transactional: &Consent{Consent: "UNSUBSCRIBED"}}}}}
	ev := &EventAttributes{Metric: odd, Properties: map[string]any{"k": odd}, Value: &value, UniqueID: odd}
	s := DefaultSettings()
	s.PublicAPIKey = "pk"
	var reqs []Request
	for _, op := range []Op{
		{Kind: OpEvent, Profile: p, Event: ev},
		{Kind: OpEvent},
		{Kind: OpProfile, Profile: p},
		{Kind: OpClientProfile, Profile: p},
		{Kind: OpSubscribe, Profile: p, ListID: odd, HistoricalImport: true, CustomSource: odd},
		{Kind: OpUnsubscribe, Profile: p},
		{Kind: OpListAdd, Profile: p, ListID: odd},
		{Kind: OpListRemove, Profile: p, ListID: odd},
		{Kind: OpClientSubscribe, Profile: p, ListID: odd},
	} {
		reqs = append(reqs, op.Requests(s)...)
	}
	reqs = append(reqs, Request{Method: "POST", Path: odd, Body: (*EventCreateBody)(nil)},
		Request{Method: "POST", Path: "/p", Body: &ProfileBulkImportBody{}}, Request{Method: "POST", Path: "/p", Body: &SubscriptionJobBody{}})
	checkAppendOutcome(t, &a, &Outcome{MessageID: odd, Requests: reqs, Skipped: odd, Warnings: []string{odd, ""},
		Error: &OutcomeError{Code: odd, Field: odd, Message: odd}, Failures: []OutcomeError{{Code: "c", Message: ""}}})
	checkAppendOutcome(t, &a, &Outcome{MessageID: "skipped", Requests: []Request{}})

	// A number encoding/json refuses makes the appender give up too, so
	// that the caller reports encoding/json's error.
	nan := math.NaN()
	bad := eventCreateBody(nil, &EventAttributes{Value: &nan})
	if _, err := a.appendOutcome(nil, &Outcome{Requests: []Request{{Body: bad}}}); err == nil {
		t.Error("appendOutcome wrote a NaN value")
	}
}

// TestAppendMapSortsAsEncodingJSON: objects of every size, including past
// the insertion sort's reach, come out with encoding/json's key order.
func TestAppendMapSortsAsEncodingJSON(t *testing.T) {
	keys := []string{"b", "a", "ab", "A", "", "é", "a\u0000", "zz", "z", "Z9", "10", "9", "_", "-", "aa", "ba",
		"bb", "c", "C", "~", "ä", "a b", "ab ", "x", "y", "w", "v", "u", "t", "s",
		"product_id2", "product_id", "product_i", "product_", "product_id1", "\xff", "\xffa"}
	for n := 0; n <= len(keys); n++ {
		m := map[string]any{}
		for i, k := range keys[:n] {
			m[k] = map[string]any{"n": float64(i), "k": k, "l": []any{k, nil, true}}
		}
		got, err := appendMap(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d keys:\n got %s\nwant %s", n, got, want)
		}
	}
}

// FuzzAppendFloat holds appendFloat to encoding/json's float64 encoding.
func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 272, 60.67, 1e15 - 1, 1e15, -1e15, 1e21, 1e-7, 123456789.5, 1 << 53, -(1 << 60)} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFloat(nil, v); !bytes.Equal(got, want) {
			t.Fatalf("appendFloat(%v) = %s, want %s", v, got, want)
		}
	})
}

// FuzzKlaviyoTime holds klaviyoTime to time.Format with its layout.
func FuzzKlaviyoTime(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1714521600), int64(10_999_999))
	f.Add(int64(-62135596800), int64(1))
	f.Add(int64(253402300799), int64(999_999_999))
	f.Add(int64(-70000000000), int64(5))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec).In(time.FixedZone("x", 3600))
		want := ""
		if !tm.IsZero() {
			want = tm.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		}
		if got := klaviyoTime(tm); got != want {
			t.Fatalf("klaviyoTime(%v) = %s, want %s", tm, got, want)
		}
	})
}
