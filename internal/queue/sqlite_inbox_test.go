package queue

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestInboxRoundTrip(t *testing.T) {
	at := time.Unix(1_700_000_000, 123).UTC()
	msgs := []Message{
		{Source: "web", Dest: "k", Key: "u1", MessageID: "m1", Payload: []byte(`{"a":1}`), ReceivedAt: at},
		{Source: "", Dest: "k", Key: "", MessageID: "", Payload: nil},
		{Source: "ios", Dest: "k", Key: "ü", MessageID: "m3", Payload: bytes.Repeat([]byte("x"), 70_000), ReceivedAt: at.Add(-time.Hour)},
	}
	got, err := decodeInbox(encodeInbox(msgs), len(msgs))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		g := got[i]
		var recv int64
		if !m.ReceivedAt.IsZero() {
			recv = m.ReceivedAt.UnixNano()
		}
		if g.Source != m.Source || g.Key != m.Key || g.MessageID != m.MessageID || !bytes.Equal(g.Payload, m.Payload) || g.ReceivedAt != recv {
			t.Errorf("message %d: got %+v, want %+v", i, g, m)
		}
	}
}

// A blob that does not decode to exactly the count its row claims is an
// error, never a panic or a partial result.
func TestInboxRejectsDamage(t *testing.T) {
	good := encodeInbox([]Message{{Dest: "k", Key: "u", MessageID: "m", Payload: []byte("{}")}})
	for name, tc := range map[string]struct {
		blob []byte
		n    int
	}{
		"empty":         {nil, 1},
		"wrong version": {append([]byte{9}, good[1:]...), 1},
		"truncated":     {good[:len(good)-1], 1},
		"count too big": {good, 2},
		"count too low": {good, 0},
		"negative":      {good, -1},
		"not s2":        {[]byte{inboxVersion, 0xff, 0xff, 0xff, 0xff, 0xff}, 1},
	} {
		if _, err := decodeInbox(tc.blob, tc.n); !errors.Is(err, errInboxCorrupt) {
			t.Errorf("%s: %v, want errInboxCorrupt", name, err)
		}
	}
}

func FuzzDecodeInbox(f *testing.F) {
	f.Add(encodeInbox([]Message{{Dest: "k", Key: "u", MessageID: "m", Payload: []byte(`{"x":1}`)}}), 1)
	f.Add(encodeInbox([]Message{{Dest: "k"}, {Dest: "k", Source: "s"}}), 2)
	f.Add([]byte{inboxVersion}, 0)
	f.Fuzz(func(t *testing.T, blob []byte, n int) {
		msgs, err := decodeInbox(blob, n)
		if err != nil {
			if !errors.Is(err, errInboxCorrupt) {
				t.Fatalf("error not errInboxCorrupt: %v", err)
			}
			return
		}
		if len(msgs) != n {
			t.Fatalf("%d messages, want %d", len(msgs), n)
		}
		// What decodes re-encodes to a blob that decodes the same.
		in := make([]Message, n)
		for i, m := range msgs {
			in[i] = Message{Source: m.Source, Key: m.Key, MessageID: m.MessageID, Payload: m.Payload}
			if m.ReceivedAt != 0 {
				in[i].ReceivedAt = time.Unix(0, m.ReceivedAt)
			}
		}
		again, err := decodeInbox(encodeInbox(in), n)
		if err != nil {
			t.Fatalf("re-encoded blob: %v", err)
		}
		for i := range again {
			a, b := again[i], msgs[i]
			if a.Source != b.Source || a.Key != b.Key || a.MessageID != b.MessageID || a.ReceivedAt != b.ReceivedAt || !bytes.Equal(a.Payload, b.Payload) {
				t.Fatalf("message %d: %+v after re-encoding, was %+v", i, a, b)
			}
		}
	})
}
