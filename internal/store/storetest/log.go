package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/relaycdp/relay/internal/store"
)

func testRecordLookup(t *testing.T, s store.Store) {
	in := store.LogEntry{MessageID: "m1", Source: "web", Dest: "klaviyo", Type: "track", Event: "Order Completed",
		UserID: "u1", Email: "Ann@Example.COM", Status: store.StatusQueued, Attempts: 0, Detail: "accepted", Time: at(0)}
	record(t, s, in)
	got := lookup(t, s, "m1", "klaviyo")
	if got.ID <= 0 {
		t.Errorf("ID = %d, want > 0", got.ID)
	}
	want := in
	want.ID = got.ID
	want.Email = "ann@example.com" // stored in lower case
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("LookupLog (-want +got):\n%s", diff)
	}
	// Same message at another destination is another row.
	record(t, s, store.LogEntry{MessageID: "m1", Dest: "other", Status: store.StatusDelivered, Time: at(time.Second)})
	if other := lookup(t, s, "m1", "other"); other.ID == got.ID || other.Status != store.StatusDelivered {
		t.Errorf("row at other dest = %+v, want its own delivered row", other)
	}
	if again := lookup(t, s, "m1", "klaviyo"); again.Status != store.StatusQueued {
		t.Errorf("klaviyo row changed to %q by another dest's entry", again.Status)
	}
	_, err := s.LookupLog(context.Background(), "nope", "klaviyo")
	wantErr(t, "LookupLog of unknown message", err, store.ErrNotFound)
	// Zero Time: the store's clock.
	before := time.Now().Add(-time.Minute)
	record(t, s, store.LogEntry{MessageID: "m2", Status: store.StatusRejected, Detail: "userId or anonymousId required"})
	if e := lookup(t, s, "m2", ""); e.Time.Before(before) || e.Dest != "" {
		t.Errorf("entry without Time or Dest = %+v, want now and empty dest", e)
	}
}

type step struct {
	status   store.Status
	attempts int
	sec      int // time offset
	detail   string
}

func testRecordPrecedence(t *testing.T, s store.Store) {
	const (
		Q  = store.StatusQueued
		R  = store.StatusRetrying
		D  = store.StatusDelivered
		S  = store.StatusSkipped
		X  = store.StatusRejected
		DL = store.StatusDead
		RP = store.StatusReplayed
	)
	tests := []struct {
		name         string
		steps        []step
		want         store.Status
		wantAttempts int
		wantDetail   string
	}{
		{"normal life", []step{{Q, 0, 0, ""}, {R, 1, 1, "503"}, {R, 2, 2, "429"}, {D, 3, 3, "202 job 1"}}, D, 3, "202 job 1"},
		{"late retrying after delivered", []step{{Q, 0, 0, ""}, {D, 2, 2, "ok"}, {R, 1, 1, "503"}}, D, 2, "ok"},
		{"late retrying with more attempts after delivered", []step{{D, 1, 2, "ok"}, {R, 2, 3, "503"}}, D, 1, "ok"},
		{"late queued after delivered", []step{{D, 1, 2, "ok"}, {Q, 0, 0, ""}}, D, 1, "ok"},
		{"stale retrying", []step{{R, 3, 3, "third"}, {R, 2, 2, "second"}}, R, 3, "third"},
		{"same attempts later time wins", []step{{R, 2, 2, "a"}, {R, 2, 3, "b"}}, R, 2, "b"},
		{"same attempts earlier time loses", []step{{R, 2, 3, "b"}, {R, 2, 2, "a"}}, R, 2, "b"},
		{"dead beats delivered", []step{{D, 1, 1, "profile ok"}, {DL, 1, 1, "400 event"}}, DL, 1, "400 event"},
		{"delivered does not hide dead", []step{{DL, 3, 1, "400"}, {D, 3, 2, "ok"}}, DL, 3, "400"},
		{"rejected stays", []step{{X, 0, 0, "no identifier"}, {Q, 0, 1, ""}}, X, 0, "no identifier"},
		{"skipped beats retrying", []step{{R, 1, 1, "x"}, {S, 1, 2, "page events are skipped unless sendPageAsTrack"}}, S, 1,
			"page events are skipped unless sendPageAsTrack"},
		{"dead, replayed, delivered", []step{{DL, 5, 1, "400"}, {RP, 0, 2, "replay"}, {Q, 0, 3, ""}, {D, 1, 4, "ok"}}, D, 1, "ok"},
		{"dead, replayed, dead again", []step{{DL, 5, 1, "400"}, {RP, 0, 2, ""}, {R, 1, 3, "503"}, {DL, 2, 4, "400 again"}}, DL, 2, "400 again"},
		{"skipped, replayed after settings fix, delivered", []step{{S, 0, 1, "page"}, {RP, 0, 2, ""}, {D, 1, 3, "ok"}}, D, 1, "ok"},
		{"replayed then stale retrying applies", []step{{RP, 0, 2, ""}, {R, 1, 1, "503"}}, R, 1, "503"},
	}
	for _, mode := range []string{"one call per entry", "one batch"} {
		t.Run(mode, func(t *testing.T) {
			for i, tc := range tests {
				id := fmt.Sprintf("%s-%d", strings.ReplaceAll(mode, " ", "-"), i)
				var batch []store.LogEntry
				for _, st := range tc.steps {
					e := store.LogEntry{MessageID: id, Dest: "k", Status: st.status, Attempts: st.attempts,
						Detail: st.detail, Time: at(time.Duration(st.sec) * time.Second)}
					if mode == "one batch" {
						batch = append(batch, e)
					} else {
						record(t, s, e)
					}
				}
				if len(batch) > 0 {
					record(t, s, batch...)
				}
				got := lookup(t, s, id, "k")
				if got.Status != tc.want || got.Attempts != tc.wantAttempts || got.Detail != tc.wantDetail {
					t.Errorf("%s: got %s/%d/%q, want %s/%d/%q", tc.name, got.Status, got.Attempts, got.Detail,
						tc.want, tc.wantAttempts, tc.wantDetail)
				}
			}
		})
	}
}

func testRecordMergesFields(t *testing.T, s store.Store) {
	record(t, s, store.LogEntry{MessageID: "m", Source: "web", Dest: "k", Type: "identify", UserID: "u", Email: "a@b.c",
		Status: store.StatusQueued, Time: at(0)})
	// Delivery knows less; it must not erase what the gateway recorded.
	record(t, s, store.LogEntry{MessageID: "m", Dest: "k", Status: store.StatusDelivered, Attempts: 1, Time: at(time.Second)})
	got := lookup(t, s, "m", "k")
	if got.Source != "web" || got.Type != "identify" || got.UserID != "u" || got.Email != "a@b.c" || got.Status != store.StatusDelivered {
		t.Errorf("merged row = %+v", got)
	}
}

func testRecordHistory(t *testing.T, s store.Store) {
	record(t, s, store.LogEntry{MessageID: "m", Dest: "k", Status: store.StatusQueued, Detail: "in", Time: at(0)})
	long := strings.Repeat("x", 1000)
	for i := 1; i <= 14; i++ {
		record(t, s, store.LogEntry{MessageID: "m", Dest: "k", Status: store.StatusRetrying, Attempts: i,
			Detail: fmt.Sprintf("attempt %d %s", i, long), Time: at(time.Duration(i) * time.Second)})
	}
	// Ignored entries leave no trace.
	record(t, s, store.LogEntry{MessageID: "m", Dest: "k", Status: store.StatusRetrying, Attempts: 3, Time: at(time.Hour)})
	got := lookup(t, s, "m", "k")
	if got.Attempts != 14 {
		t.Fatalf("attempts = %d, want 14", got.Attempts)
	}
	if len(got.History) != store.MaxHistory {
		t.Fatalf("history has %d steps, want %d", len(got.History), store.MaxHistory)
	}
	// 15 states, the current one and the 10 before it: attempts 4…13.
	for i, h := range got.History {
		want := 4 + i
		if h.Status != store.StatusRetrying || h.Attempts != want || !h.Time.Equal(at(time.Duration(want)*time.Second)) {
			t.Errorf("history[%d] = %s/%d at %v, want retrying/%d", i, h.Status, h.Attempts, h.Time, want)
		}
		if n := len([]rune(h.Detail)); n > 256 || !strings.HasPrefix(h.Detail, fmt.Sprintf("attempt %d ", want)) {
			t.Errorf("history[%d] detail has %d characters (want ≤ 256) or wrong prefix: %.20q", i, n, h.Detail)
		}
	}
}

func testRecordTruncatesDetail(t *testing.T, s store.Store) {
	huge := strings.Repeat("é", store.MaxDetail) // 2 bytes each
	record(t, s, store.LogEntry{MessageID: "m", Dest: "k", Status: store.StatusDead, Detail: huge, Time: at(0)})
	got := lookup(t, s, "m", "k")
	if len(got.Detail) > store.MaxDetail || !strings.HasPrefix(huge, strings.TrimSuffix(got.Detail, "…")) {
		t.Errorf("detail of %d bytes stored as %d bytes, want a prefix of at most %d", len(huge), len(got.Detail), store.MaxDetail)
	}
}

func testRecordInvalid(t *testing.T, s store.Store) {
	ok := store.LogEntry{MessageID: "good", Dest: "k", Status: store.StatusQueued, Time: at(0)}
	tests := []struct {
		name string
		bad  store.LogEntry
		want string
	}{
		{"empty messageId", store.LogEntry{Dest: "k", Status: store.StatusQueued}, "entry 1: messageId is empty"},
		{"unknown status", store.LogEntry{MessageID: "x", Status: "lost"}, `unknown status "lost"`},
		{"no status", store.LogEntry{MessageID: "x"}, `unknown status ""`},
		{"negative attempts", store.LogEntry{MessageID: "x", Status: store.StatusRetrying, Attempts: -1}, "attempts -1"},
	}
	for _, tc := range tests {
		err := s.Record(context.Background(), []store.LogEntry{ok, tc.bad})
		wantErr(t, tc.name, err, store.ErrInvalid)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.want)
		}
	}
	// The valid entry of a rejected batch was not written either.
	_, err := s.LookupLog(context.Background(), "good", "k")
	wantErr(t, "entry of a rejected batch", err, store.ErrNotFound)
	if err := s.Record(context.Background(), nil); err != nil {
		t.Errorf("Record(nil) = %v, want nil", err)
	}
}

func testQueryLogSearch(t *testing.T, s store.Store) {
	record(t, s,
		store.LogEntry{MessageID: "msg-100", Dest: "k", UserID: "user-1", Email: "ann@example.com", Status: store.StatusDelivered, Time: at(1 * time.Second)},
		store.LogEntry{MessageID: "msg-101", Dest: "k", UserID: "user-2", Email: "bob@example.com", Status: store.StatusDead, Time: at(2 * time.Second)},
		store.LogEntry{MessageID: "msg-101", Dest: "k2", UserID: "user-2", Email: "bob@example.com", Status: store.StatusDelivered, Time: at(3 * time.Second)},
		store.LogEntry{MessageID: "abc", Dest: "k", UserID: "msg-9", Email: "Msg@Example.com", Status: store.StatusRetrying, Attempts: 1, Time: at(4 * time.Second)},
		store.LogEntry{MessageID: "jöhn-1", Dest: "k", UserID: "jörg", Status: store.StatusQueued, Time: at(5 * time.Second)},
		store.LogEntry{MessageID: "zz", Source: "app", Dest: "k", Status: store.StatusSkipped, Time: at(6 * time.Second)},
	)
	tests := []struct {
		name string
		q    store.LogQuery
		want []string
	}{
		{"all, newest first", store.LogQuery{}, []string{"zz", "jöhn-1", "abc", "msg-101", "msg-101", "msg-100"}},
		{"exact messageId", store.LogQuery{Text: "msg-100"}, []string{"msg-100"}},
		{"messageId prefix, userId prefix, email prefix", store.LogQuery{Text: "msg"}, []string{"abc", "msg-101", "msg-101", "msg-100"}},
		{"exact userId", store.LogQuery{Text: "user-1"}, []string{"msg-100"}},
		{"userId prefix", store.LogQuery{Text: "user-"}, []string{"msg-101", "msg-101", "msg-100"}},
		{"email, any case", store.LogQuery{Text: "BOB@example.com"}, []string{"msg-101", "msg-101"}},
		{"email prefix", store.LogQuery{Text: "ann@"}, []string{"msg-100"}},
		{"non-ASCII prefix", store.LogQuery{Text: "jö"}, []string{"jöhn-1"}},
		{"no match", store.LogQuery{Text: "nobody"}, nil},
		{"no match past the prefix", store.LogQuery{Text: "msg-1000"}, nil},
		{"status", store.LogQuery{Status: store.StatusDelivered}, []string{"msg-101", "msg-100"}},
		{"status and dest", store.LogQuery{Status: store.StatusDelivered, Dest: "k"}, []string{"msg-100"}},
		{"text and dest", store.LogQuery{Text: "msg-101", Dest: "k2"}, []string{"msg-101"}},
		{"source", store.LogQuery{Source: "app"}, []string{"zz"}},
		{"limit", store.LogQuery{Limit: 2}, []string{"zz", "jöhn-1"}},
	}
	for _, tc := range tests {
		got := messageIDs(query(t, s, tc.q))
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	_, err := s.QueryLog(context.Background(), store.LogQuery{Status: "nope"})
	wantErr(t, "QueryLog with unknown status", err, store.ErrInvalid)
}

func testQueryLogPaging(t *testing.T, s store.Store) {
	// 25 entries sharing 3 timestamps: paging must neither skip nor repeat
	// entries with equal times.
	var batch []store.LogEntry
	for i := range 25 {
		batch = append(batch, store.LogEntry{MessageID: fmt.Sprintf("m%02d", i), Dest: "k", Status: store.StatusQueued,
			Time: at(time.Duration(i/10) * time.Second)})
	}
	record(t, s, batch...)
	seen := map[string]bool{}
	q := store.LogQuery{Limit: 4}
	var last time.Time
	for page := 0; ; page++ {
		got := query(t, s, q)
		if len(got) == 0 {
			break
		}
		if page > 10 {
			t.Fatal("paging does not end")
		}
		for _, e := range got {
			if seen[e.MessageID] {
				t.Errorf("%s returned twice", e.MessageID)
			}
			seen[e.MessageID] = true
			if !last.IsZero() && e.Time.After(last) {
				t.Errorf("%s at %v after an entry at %v: not newest first", e.MessageID, e.Time, last)
			}
			last = e.Time
		}
		end := got[len(got)-1]
		q.Before, q.BeforeID = end.Time, end.ID
	}
	if len(seen) != 25 {
		t.Errorf("paging returned %d distinct entries, want 25", len(seen))
	}
}

func testCountLog(t *testing.T, s store.Store) {
	record(t, s,
		store.LogEntry{MessageID: "a", Dest: "k", Status: store.StatusDelivered, Time: at(0)},
		store.LogEntry{MessageID: "b", Dest: "k", Status: store.StatusDelivered, Time: at(0)},
		store.LogEntry{MessageID: "c", Dest: "k", Status: store.StatusDead, Time: at(0)},
		store.LogEntry{MessageID: "c", Dest: "k2", Status: store.StatusQueued, Time: at(0)},
		store.LogEntry{MessageID: "a", Dest: "k", Status: store.StatusRetrying, Attempts: 9, Time: at(time.Hour)}, // ignored
	)
	got, err := s.CountLog(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[store.Status]int64{store.StatusDelivered: 2, store.StatusDead: 1, store.StatusQueued: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CountLog all (-want +got):\n%s", diff)
	}
	got, err = s.CountLog(context.Background(), "k2")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[store.Status]int64{store.StatusQueued: 1}, got); diff != "" {
		t.Errorf("CountLog k2 (-want +got):\n%s", diff)
	}
}

func testPruneLog(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var batch []store.LogEntry
	for i := range 30 { // m00 is the oldest, 30 days ago; m29 is now
		batch = append(batch, store.LogEntry{MessageID: fmt.Sprintf("m%02d", i), Dest: "k", Status: store.StatusDelivered,
			Time: now.Add(-time.Duration(29-i) * 24 * time.Hour)})
	}
	record(t, s, batch...)
	got, err := s.Prune(ctx, store.Retention{LogMaxAge: 20*24*time.Hour - time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got.LogRows != 10 {
		t.Errorf("age pruning removed %d rows, want 10", got.LogRows)
	}
	if got, err = s.Prune(ctx, store.Retention{LogMaxRows: 15}); err != nil {
		t.Fatal(err)
	}
	if got.LogRows != 5 {
		t.Errorf("count pruning removed %d rows, want 5", got.LogRows)
	}
	left := messageIDs(query(t, s, store.LogQuery{Limit: 100}))
	var want []string
	for i := 29; i >= 15; i-- {
		want = append(want, fmt.Sprintf("m%02d", i))
	}
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("rows left (-want +got):\n%s", diff)
	}
	if got, err = s.Prune(ctx, store.Retention{LogMaxRows: 15, LogMaxAge: 365 * 24 * time.Hour}); err != nil || got.LogRows != 0 {
		t.Errorf("second prune = %+v, %v; want nothing removed", got, err)
	}
	_, err = s.Prune(ctx, store.Retention{LogMaxRows: -1})
	wantErr(t, "negative retention", err, store.ErrInvalid)
}

func testPruneReplayed(t *testing.T, s store.Store) {
	ctx := context.Background()
	dls := []store.DeadLetter{deadLetter("a", "k", 0), deadLetter("b", "k", 0)}
	addAll(t, s, dls)
	if _, err := s.TakeForReplay(ctx, store.ReplaySelector{ID: dls[0].ID}, accept); err != nil {
		t.Fatal(err)
	}
	// A day's retention keeps the one replayed just now.
	if got, err := s.Prune(ctx, store.Retention{ReplayedMaxAge: 24 * time.Hour}); err != nil || got.DeadLetters != 0 {
		t.Fatalf("Prune(1 day) = %+v, %v; want nothing removed", got, err)
	}
	deadline := time.Now().Add(time.Second)
	var got store.Pruned
	for got.DeadLetters == 0 && time.Now().Before(deadline) { // poll: ReplayedAt must fall behind the store's clock
		var err error
		if got, err = s.Prune(ctx, store.Retention{ReplayedMaxAge: time.Nanosecond}); err != nil {
			t.Fatal(err)
		}
	}
	if got.DeadLetters != 1 {
		t.Fatalf("Prune(1ns) removed %d dead letters, want the replayed one", got.DeadLetters)
	}
	if _, err := s.LookupDeadLetter(ctx, dls[1].ID); err != nil {
		t.Errorf("pending dead letter pruned: %v", err)
	}
}
