package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/store"
)

// testUnsafeText: a NUL or invalid UTF-8 in any string (an SDK sent
// "userId":"a\u0000b") is stored, in the delivery log and the dead
// letters, without failing the rest of the batch, and found again by its
// messageId. A store that cannot keep the character (PostgreSQL's text)
// keeps U+FFFD in its place.
func testUnsafeText(t *testing.T, s store.Store) {
	ctx := context.Background()
	odd := "a\x00b\xffc"
	norm := func(s string) string { return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD") }
	same := func(got, want string) bool {
		return got == want || got == norm(want) || norm(got) == norm(want) && got != ""
	}
	entries := []store.LogEntry{
		{MessageID: "plain", Dest: "hook", Status: store.StatusDelivered, Time: at(0)},
		{MessageID: "m" + odd, Dest: "hook", Source: "web" + odd, Type: "track", Event: "E" + odd, UserID: odd, Email: odd + "@x.io",
			Status: store.StatusDead, Detail: "refused " + odd, Time: at(0)},
	}
	if err := s.Record(ctx, entries); err != nil {
		t.Fatalf("Record with a NUL in a string: %v", err)
	}
	lookup(t, s, "plain", "hook")
	got := lookup(t, s, "m"+odd, "hook")
	for name, pair := range map[string][2]string{
		"userId": {got.UserID, odd}, "event": {got.Event, "E" + odd}, "source": {got.Source, "web" + odd},
		"email": {got.Email, odd + "@x.io"}, "detail": {got.Detail, "refused " + odd},
	} {
		if !same(pair[0], pair[1]) {
			t.Errorf("%s stored as %q, want %q (or with U+FFFD for the NUL and the bad byte)", name, pair[0], pair[1])
		}
	}
	if res, err := s.QueryLog(ctx, store.LogQuery{Text: odd}); err != nil || len(res) != 1 {
		t.Errorf("QueryLog by the user id = %d entries, %v; want 1", len(res), err)
	}
	dls := []store.DeadLetter{
		{MessageID: "d-plain", Dest: "hook", Payload: []byte(`{"type":"track"}`)},
		{MessageID: "d" + odd, Source: "web" + odd, Dest: "hook", Payload: []byte(`{"userId":"a\u0000b"}`),
			Error: "refused " + odd, Code: "c" + odd, Pointer: "/p" + odd},
	}
	if err := s.AddDeadLetters(ctx, dls); err != nil {
		t.Fatalf("AddDeadLetters with a NUL in a string: %v", err)
	}
	list, err := s.ListDeadLetters(ctx, store.DeadLetterQuery{Dest: "hook"})
	if err != nil || len(list) != 2 {
		t.Fatalf("ListDeadLetters = %d, %v; want 2", len(list), err)
	}
	for _, d := range list {
		if d.MessageID == "d-plain" {
			continue
		}
		if !same(d.Error, "refused "+odd) || !same(d.Code, "c"+odd) || string(d.Payload) != `{"userId":"a\u0000b"}` {
			t.Errorf("dead letter stored as %+v", d)
		}
	}
}
