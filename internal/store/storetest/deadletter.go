package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/relaycdp/relay/internal/store"
)

func deadLetter(messageID, dest string, created time.Duration) store.DeadLetter {
	return store.DeadLetter{
		MessageID: messageID, Source: "web", Dest: dest,
		Payload: []byte(fmt.Sprintf(`{"type":"track","messageId":%q,"event":"Order Completed"}`, messageID)),
		Error:   "Invalid input.", Status: 400, Code: "invalid", Pointer: "/data/attributes/properties",
		Attempts: 1, CreatedAt: at(created),
	}
}

// addDead adds dls, setting their IDs.
func addDead(t *testing.T, s store.Store, dls ...*store.DeadLetter) {
	t.Helper()
	batch := make([]store.DeadLetter, len(dls))
	for i, d := range dls {
		batch[i] = *d
	}
	if err := s.AddDeadLetters(context.Background(), batch); err != nil {
		t.Fatalf("AddDeadLetters: %v", err)
	}
	for i, d := range dls {
		d.ID = batch[i].ID
	}
}

// addAll adds dls, setting their IDs.
func addAll(t *testing.T, s store.Store, dls []store.DeadLetter) {
	t.Helper()
	if err := s.AddDeadLetters(context.Background(), dls); err != nil {
		t.Fatalf("AddDeadLetters: %v", err)
	}
}

// accept is an enqueue callback that accepts everything.
func accept(context.Context, []store.DeadLetter) error { return nil }

func ids(dls []store.DeadLetter) []int64 {
	out := make([]int64, len(dls))
	for i, d := range dls {
		out[i] = d.ID
	}
	return out
}

func testDeadLetterAddLookup(t *testing.T, s store.Store) {
	ctx := context.Background()
	dls := []store.DeadLetter{deadLetter("m1", "k", 0), deadLetter("m2", "k", time.Second)}
	dls[1].Status, dls[1].Code, dls[1].Pointer = 0, "", ""
	dls[1].Error = strings.Repeat("e", store.MaxDeadError+100)
	dls[1].CreatedAt = time.Time{}
	addAll(t, s, dls)
	if dls[0].ID <= 0 || dls[1].ID <= dls[0].ID {
		t.Fatalf("IDs = %v, want increasing positive IDs", ids(dls))
	}
	got, err := s.LookupDeadLetter(ctx, dls[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dls[0], got); diff != "" {
		t.Errorf("LookupDeadLetter (-want +got):\n%s", diff)
	}
	got, err = s.LookupDeadLetter(ctx, dls[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Error) > store.MaxDeadError || got.CreatedAt.IsZero() || !got.ReplayedAt.IsZero() {
		t.Errorf("second dead letter: error %d bytes (max %d), created %v, replayed %v",
			len(got.Error), store.MaxDeadError, got.CreatedAt, got.ReplayedAt)
	}
	_, err = s.LookupDeadLetter(ctx, 999999)
	wantErr(t, "LookupDeadLetter of unknown id", err, store.ErrNotFound)
}

func testDeadLetterAddIdempotent(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := deadLetter("m", "k", 0)
	addDead(t, s, &first)
	again := deadLetter("m", "k", time.Minute)
	again.Error, again.Attempts = "still invalid", 2
	other := deadLetter("m", "k2", 0) // another destination is another dead letter
	addDead(t, s, &again, &other)
	if again.ID != first.ID || other.ID == first.ID {
		t.Errorf("IDs first %d, again %d, other dest %d: want again == first != other", first.ID, again.ID, other.ID)
	}
	got, err := s.LookupDeadLetter(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Error != "still invalid" || got.Attempts != 2 || !got.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("re-added dead letter = %+v, want the new error and attempts, the first CreatedAt", got)
	}
	if n, err := s.CountDeadLetters(ctx, ""); err != nil || n != 2 {
		t.Errorf("CountDeadLetters = %d, %v; want 2", n, err)
	}
}

func testDeadLetterInvalid(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		mod  func(*store.DeadLetter)
		want string
	}{
		{"no messageId", func(d *store.DeadLetter) { d.MessageID = "" }, "messageId is empty"},
		{"no dest", func(d *store.DeadLetter) { d.Dest = "" }, "dest is empty"},
		{"no payload", func(d *store.DeadLetter) { d.Payload = nil }, "payload is empty"},
		{"payload not JSON", func(d *store.DeadLetter) { d.Payload = []byte("{") }, "payload is not JSON"},
		{"negative attempts", func(d *store.DeadLetter) { d.Attempts = -2 }, "attempts -2"},
	}
	for _, tc := range tests {
		bad := deadLetter("bad", "k", 0)
		tc.mod(&bad)
		err := s.AddDeadLetters(context.Background(), []store.DeadLetter{deadLetter("good", "k", 0), bad})
		wantErr(t, tc.name, err, store.ErrInvalid)
		if !strings.Contains(err.Error(), "dead letter 1") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not name entry 1 and %q", tc.name, err, tc.want)
		}
	}
	if n, err := s.CountDeadLetters(context.Background(), ""); err != nil || n != 0 {
		t.Errorf("CountDeadLetters after rejected batches = %d, %v; want 0", n, err)
	}
}

func testDeadLetterList(t *testing.T, s store.Store) {
	ctx := context.Background()
	var dls []store.DeadLetter
	for i := range 12 {
		dls = append(dls, deadLetter(fmt.Sprintf("m%02d", i), []string{"k", "k2"}[i%2], time.Duration(i)*time.Second))
	}
	addAll(t, s, dls)
	if _, err := s.TakeForReplay(ctx, store.ReplaySelector{ID: dls[10].ID}, accept); err != nil {
		t.Fatal(err)
	}
	list := func(q store.DeadLetterQuery) []int64 {
		t.Helper()
		got, err := s.ListDeadLetters(ctx, q)
		if err != nil {
			t.Fatalf("ListDeadLetters(%+v): %v", q, err)
		}
		return ids(got)
	}
	all := ids(dls)
	slices.Reverse(all)
	pending := slices.DeleteFunc(slices.Clone(all), func(id int64) bool { return id == dls[10].ID })
	tests := []struct {
		name string
		q    store.DeadLetterQuery
		want []int64
	}{
		{"pending, newest first", store.DeadLetterQuery{}, pending},
		{"with replayed", store.DeadLetterQuery{IncludeReplayed: true}, all},
		{"dest k2", store.DeadLetterQuery{Dest: "k2"}, []int64{dls[11].ID, dls[9].ID, dls[7].ID, dls[5].ID, dls[3].ID, dls[1].ID}},
		{"dest k with replayed", store.DeadLetterQuery{Dest: "k", IncludeReplayed: true, Limit: 2}, []int64{dls[10].ID, dls[8].ID}},
		{"page", store.DeadLetterQuery{Limit: 3, BeforeID: dls[9].ID}, []int64{dls[8].ID, dls[7].ID, dls[6].ID}},
		{"source", store.DeadLetterQuery{Source: "nobody"}, nil},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, list(tc.q), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	got, err := s.ListDeadLetters(ctx, store.DeadLetterQuery{Limit: 1})
	if err != nil || len(got) != 1 || string(got[0].Payload) != string(dls[11].Payload) {
		t.Errorf("listed dead letter = %+v, %v; want it with its payload", got, err)
	}
	for dest, want := range map[string]int64{"": 11, "k": 5, "k2": 6, "none": 0} {
		if n, err := s.CountDeadLetters(ctx, dest); err != nil || n != want {
			t.Errorf("CountDeadLetters(%q) = %d, %v; want %d", dest, n, err, want)
		}
	}
}

func testReplayOne(t *testing.T, s store.Store) {
	ctx := context.Background()
	d := deadLetter("m", "k", 0)
	record(t, s, store.LogEntry{MessageID: "m", Dest: "k", Status: store.StatusDead, Attempts: 5, Time: at(0)})
	addDead(t, s, &d)
	var got []store.DeadLetter
	n, err := s.TakeForReplay(ctx, store.ReplaySelector{ID: d.ID}, func(_ context.Context, dls []store.DeadLetter) error {
		got = append(got, dls...)
		return nil
	})
	if err != nil || n != 1 || len(got) != 1 {
		t.Fatalf("TakeForReplay = %d, %v with %d dead letters; want 1", n, err, len(got))
	}
	if got[0].ID != d.ID || string(got[0].Payload) != string(d.Payload) || got[0].ReplayedAt.IsZero() {
		t.Errorf("taken = %+v, want the dead letter with its payload and ReplayedAt", got[0])
	}
	if e := lookup(t, s, "m", "k"); e.Status != store.StatusReplayed {
		t.Errorf("log status after replay = %q, want replayed", e.Status)
	}
	// Idempotent: not taken again.
	n, err = s.TakeForReplay(ctx, store.ReplaySelector{ID: d.ID}, func(context.Context, []store.DeadLetter) error {
		t.Error("enqueue called for an already replayed dead letter")
		return nil
	})
	if err != nil || n != 0 {
		t.Errorf("second TakeForReplay = %d, %v; want 0, nil", n, err)
	}
	if l, err := s.LookupDeadLetter(ctx, d.ID); err != nil || l.ReplayedAt.IsZero() {
		t.Errorf("replayed dead letter = %+v, %v; want ReplayedAt set", l, err)
	}
	// Dead again after the replay: a new dead letter.
	again := deadLetter("m", "k", time.Hour)
	addDead(t, s, &again)
	if again.ID == d.ID {
		t.Errorf("dead letter after replay reused id %d", d.ID)
	}
	_, err = s.TakeForReplay(ctx, store.ReplaySelector{ID: 987654}, accept)
	wantErr(t, "TakeForReplay of unknown id", err, store.ErrNotFound)
	// An id with a non-matching dest is not taken.
	if n, err := s.TakeForReplay(ctx, store.ReplaySelector{ID: again.ID, Dest: "other"}, accept); err != nil || n != 0 {
		t.Errorf("TakeForReplay(id, wrong dest) = %d, %v; want 0, nil", n, err)
	}
}

func testReplayDestSince(t *testing.T, s store.Store) {
	ctx := context.Background()
	var dls []store.DeadLetter
	for i := range 6 {
		dls = append(dls, deadLetter(fmt.Sprintf("m%d", i), []string{"k", "k2"}[i%2], time.Duration(i)*time.Hour))
	}
	addAll(t, s, dls)
	var got []store.DeadLetter
	collect := func(_ context.Context, d []store.DeadLetter) error { got = append(got, d...); return nil }
	n, err := s.TakeForReplay(ctx, store.ReplaySelector{Dest: "k", Since: at(2 * time.Hour)}, collect)
	if err != nil || n != 2 {
		t.Fatalf("TakeForReplay(k, since 2h) = %d, %v; want 2", n, err)
	}
	if diff := cmp.Diff([]int64{dls[2].ID, dls[4].ID}, ids(got)); diff != "" {
		t.Errorf("taken, oldest first (-want +got):\n%s", diff)
	}
	got = nil
	if n, err = s.TakeForReplay(ctx, store.ReplaySelector{Dest: "k2", Limit: 2}, collect); err != nil || n != 2 {
		t.Fatalf("TakeForReplay(k2, limit 2) = %d, %v; want 2", n, err)
	}
	if diff := cmp.Diff([]int64{dls[1].ID, dls[3].ID}, ids(got)); diff != "" {
		t.Errorf("taken with limit (-want +got):\n%s", diff)
	}
	if n, err := s.CountDeadLetters(ctx, ""); err != nil || n != 2 {
		t.Errorf("pending after replays = %d, %v; want 2 (m0 at k, m5 at k2)", n, err)
	}
	if n, err := s.TakeForReplay(ctx, store.ReplaySelector{Dest: "none"}, accept); err != nil || n != 0 {
		t.Errorf("TakeForReplay(unknown dest) = %d, %v; want 0, nil", n, err)
	}
}

func testReplayEnqueueFails(t *testing.T, s store.Store) {
	ctx := context.Background()
	record(t, s, store.LogEntry{MessageID: "m", Dest: "k", Status: store.StatusDead, Time: at(0)})
	d := deadLetter("m", "k", 0)
	addDead(t, s, &d)
	boom := errors.New("queue full")
	n, err := s.TakeForReplay(ctx, store.ReplaySelector{Dest: "k"}, func(context.Context, []store.DeadLetter) error { return boom })
	if !errors.Is(err, boom) || n != 0 {
		t.Fatalf("TakeForReplay with failing enqueue = %d, %v; want 0 and the enqueue error", n, err)
	}
	// Nothing was marked: the dead letter is still pending, the log still dead.
	if l, err := s.LookupDeadLetter(ctx, d.ID); err != nil || !l.ReplayedAt.IsZero() {
		t.Errorf("dead letter after failed replay = %+v, %v; want pending", l, err)
	}
	if e := lookup(t, s, "m", "k"); e.Status != store.StatusDead {
		t.Errorf("log status after failed replay = %q, want dead", e.Status)
	}
	if n, err := s.TakeForReplay(ctx, store.ReplaySelector{Dest: "k"}, accept); err != nil || n != 1 {
		t.Errorf("retried TakeForReplay = %d, %v; want 1", n, err)
	}
}

func testReplayConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const total = 60
	var dls []store.DeadLetter
	for i := range total {
		dls = append(dls, deadLetter(fmt.Sprintf("m%02d", i), "k", time.Duration(i)*time.Second))
	}
	addAll(t, s, dls)
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
		wg   sync.WaitGroup
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sel := store.ReplaySelector{Dest: "k", Limit: 7}
			if w == 0 {
				sel = store.ReplaySelector{ID: dls[total/2].ID} // one racing on a single id
			}
			for {
				n, err := s.TakeForReplay(ctx, sel, func(_ context.Context, got []store.DeadLetter) error {
					mu.Lock()
					defer mu.Unlock()
					for _, d := range got {
						seen[d.ID]++
					}
					return nil
				})
				if err != nil {
					t.Errorf("TakeForReplay: %v", err)
					return
				}
				if n == 0 || w == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != total {
		t.Errorf("%d distinct dead letters replayed, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("dead letter %d replayed %d times", id, n)
		}
	}
}

func testReplayInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.TakeForReplay(ctx, store.ReplaySelector{}, accept)
	wantErr(t, "empty selector", err, store.ErrInvalid)
	_, err = s.TakeForReplay(ctx, store.ReplaySelector{Dest: "k"}, nil)
	wantErr(t, "nil enqueue", err, store.ErrInvalid)
	_, err = s.TakeForReplay(ctx, store.ReplaySelector{Dest: "k", Limit: -1}, accept)
	wantErr(t, "negative limit", err, store.ErrInvalid)
}
