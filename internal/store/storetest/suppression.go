package storetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/store"
)

// testSuppressions: suppressions get ids and regulation ids, list both
// ways, change the version on every change, and are removed by regulation
// id or by an identifier hash, never by an empty one.
func testSuppressions(t *testing.T, s store.Store) {
	ctx := context.Background()
	v0, err := s.SuppressionVersion(ctx)
	if err != nil || v0 != (store.SuppressionVersion{}) {
		t.Fatalf("empty version = %+v, %v", v0, err)
	}
	ss := []store.Suppression{
		{Regulation: "del_7", Origin: "rudderstack", UserID: "hu1", Email: "he1"},
		{Origin: "segment", UserID: "hu2"},
		{Origin: "api", Phone: "hp3"},
	}
	if err := s.AddSuppressions(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if ss[0].Regulation != "del_7" || ss[1].Regulation != store.SuppressionRegulation(ss[1].ID) || ss[2].ID <= ss[1].ID || ss[0].CreatedAt.IsZero() {
		t.Fatalf("added %+v", ss)
	}
	all, err := s.ListSuppressions(ctx, store.SuppressionQuery{Limit: 10})
	if err != nil || len(all) != 3 || all[0] != ss[0] && all[0].Regulation != "del_7" || all[1].UserID != "hu2" || all[2].Phone != "hp3" {
		t.Fatalf("list = %+v, %v", all, err)
	}
	if page, _ := s.ListSuppressions(ctx, store.SuppressionQuery{After: ss[0].ID, Limit: 1}); len(page) != 1 || page[0].ID != ss[1].ID {
		t.Errorf("page after the first = %+v", page)
	}
	if newest, _ := s.ListSuppressions(ctx, store.SuppressionQuery{Newest: true, Limit: 2}); len(newest) != 2 || newest[0].ID != ss[2].ID {
		t.Errorf("newest = %+v", newest)
	}
	if older, _ := s.ListSuppressions(ctx, store.SuppressionQuery{Newest: true, After: ss[1].ID}); len(older) != 1 || older[0].ID != ss[0].ID {
		t.Errorf("older than the second = %+v", older)
	}
	v1, _ := s.SuppressionVersion(ctx)
	if v1 == v0 || v1.Count != 3 {
		t.Errorf("version after adding = %+v", v1)
	}

	if n, err := s.RemoveSuppressions(ctx, "", []string{"", ""}); err != nil || n != 0 {
		t.Errorf("empty hashes removed %d, %v", n, err)
	}
	if n, err := s.RemoveSuppressions(ctx, ss[1].Regulation, nil); err != nil || n != 1 {
		t.Errorf("by regulation removed %d, %v", n, err)
	}
	if n, err := s.RemoveSuppressions(ctx, "", []string{"hp3", "nobody"}); err != nil || n != 1 {
		t.Errorf("by phone hash removed %d, %v", n, err)
	}
	v2, _ := s.SuppressionVersion(ctx)
	if v2 == v1 || v2.Count != 1 {
		t.Errorf("version after removing = %+v", v2)
	}
	// A new suppression never reuses a removed id.
	again := []store.Suppression{{UserID: "hu4"}}
	if err := s.AddSuppressions(ctx, again); err != nil || again[0].ID <= ss[2].ID {
		t.Errorf("re-added %+v, %v", again, err)
	}
	if n, _ := s.RemoveSuppressions(ctx, "del_7", nil); n != 1 {
		t.Errorf("del_7 removed %d", n)
	}
}

func testSuppressionInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	err := s.AddSuppressions(ctx, []store.Suppression{{UserID: "h"}, {Origin: "api"}})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "suppression 1") {
		t.Errorf("no identifier: %v", err)
	}
	if list, _ := s.ListSuppressions(ctx, store.SuppressionQuery{}); len(list) != 0 {
		t.Errorf("a rejected call stored %d suppressions", len(list))
	}
	if _, err := s.RemoveSuppressions(ctx, "", nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("remove nothing: %v", err)
	}
}

// testSuppressionKey: one key, made once, the same on every call (and so
// for every node of a shared store).
func testSuppressionKey(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	keys := make([][]byte, 4)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := s.SuppressionKey(ctx)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	if len(keys[0]) != 32 {
		t.Fatalf("key of %d bytes", len(keys[0]))
	}
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("two calls returned different keys")
		}
	}
}

// testDeletionClaim: a claimed request is not claimed again while its
// lease lasts, is after it ends, and concurrent claimers split the
// requests between them without overlap.
func testDeletionClaim(t *testing.T, s store.Store) {
	ctx := context.Background()
	ds := make([]store.Deletion, 20)
	for i := range ds {
		ds[i] = store.Deletion{Subject: store.DeletionSubject{UserID: "u"}}
	}
	if err := s.CreateDeletions(ctx, ds); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
		wg   sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				got, err := s.ClaimDeletions(ctx, now, time.Minute, 3)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, d := range got {
					seen[d.ID]++
					if d.State != store.DeletionRunning || d.LeaseUntil.Before(now.Add(59*time.Second)) {
						t.Errorf("claimed %+v", d)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != len(ds) {
		t.Errorf("claimed %d of %d requests", len(seen), len(ds))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("request %d claimed %d times", id, n)
		}
	}
	if got, _ := s.DueDeletions(ctx, now, 100); len(got) != 0 {
		t.Errorf("leased requests are due: %d", len(got))
	}
	// The worker renews its lease as it saves a step; then it dies.
	d, _ := s.Deletion(ctx, ds[0].ID)
	d.LeaseUntil = now.Add(10 * time.Minute)
	if err := s.UpdateDeletion(ctx, d); err != nil {
		t.Fatal(err)
	}
	// A heartbeat moves the lease of a running request only.
	if err := s.ExtendDeletionLease(ctx, ds[1].ID, now.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Deletion(ctx, ds[1].ID); !g.LeaseUntil.Equal(time.Unix(0, now.Add(3*time.Minute).UnixNano())) {
		t.Errorf("extended lease = %v", g.LeaseUntil)
	}
	later, err := s.ClaimDeletions(ctx, now.Add(2*time.Minute), time.Minute, 100)
	if err != nil || len(later) != len(ds)-2 || later[0].ID != ds[2].ID {
		t.Fatalf("after the leases ended: %d claimed (first %+v), %v", len(later), later, err)
	}
	if got, _ := s.ClaimDeletions(ctx, now.Add(11*time.Minute), time.Minute, 100); len(got) != len(ds) {
		t.Errorf("after the renewed lease ended: %d claimed", len(got))
	}
	// A request set back to pending holds no lease and waits for NextAt.
	d.State, d.NextAt = store.DeletionPending, now.Add(time.Hour)
	if err := s.UpdateDeletion(ctx, d); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Deletion(ctx, d.ID); !g.LeaseUntil.IsZero() {
		t.Errorf("a pending request keeps a lease: %v", g.LeaseUntil)
	}
	if got, _ := s.ClaimDeletions(ctx, now.Add(30*time.Minute), time.Minute, 100); len(got) != len(ds)-1 {
		t.Errorf("the retry was claimed before its NextAt: %d", len(got))
	}
}

// testForgetUserByPhone: log rows of a user known only by phone go.
func testForgetUserByPhone(t *testing.T, s store.Store) {
	ctx := context.Background()
	record(t, s,
		store.LogEntry{MessageID: "p1", Dest: "k", Phone: "+15005550006", Status: store.StatusDelivered, Time: at(0)},
		store.LogEntry{MessageID: "p2", Dest: "k", Phone: "+15005550007", Status: store.StatusDelivered, Time: at(1)},
		store.LogEntry{MessageID: "p3", Dest: "k", Status: store.StatusDelivered, Time: at(2)},
	)
	// A later state without the phone keeps it.
	record(t, s, store.LogEntry{MessageID: "p1", Dest: "k", Status: store.StatusReplayed, Time: at(3)})
	got, err := s.ForgetUser(ctx, store.DeletionSubject{Phone: "+15005550006"}, nil, nil)
	if err != nil || got.LogRows != 1 {
		t.Fatalf("forgot %+v, %v", got, err)
	}
	if ids := messageIDs(query(t, s, store.LogQuery{})); len(ids) != 2 || strings.Contains(strings.Join(ids, ","), "p1") {
		t.Errorf("log left: %v", ids)
	}
}

// testDeletionWithSuppression: a SUPPRESS_WITH_DELETE request stores its
// suppression in its own transaction, named after the request; a rejected
// call stores neither.
func testDeletionWithSuppression(t *testing.T, s store.Store) {
	ctx := context.Background()
	bad := []store.Deletion{{Subject: store.DeletionSubject{UserID: "u1"}, Suppress: &store.Suppression{UserID: "hu1"}}, {}}
	if err := s.CreateDeletions(ctx, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("invalid batch: %v", err)
	}
	if list, _ := s.ListSuppressions(ctx, store.SuppressionQuery{}); len(list) != 0 {
		t.Fatalf("a rejected call stored suppressions: %+v", list)
	}
	ds := []store.Deletion{
		{Subject: store.DeletionSubject{UserID: "u1"}, Suppress: &store.Suppression{Origin: "segment", UserID: "hu1"}},
		{Subject: store.DeletionSubject{UserID: "u2"}},
	}
	if err := s.CreateDeletions(ctx, ds); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSuppressions(ctx, store.SuppressionQuery{})
	if err != nil || len(list) != 1 || list[0].Regulation != store.DeletionRegulation(ds[0].ID) || list[0].UserID != "hu1" || list[0].Origin != "segment" {
		t.Fatalf("suppressions = %+v, %v", list, err)
	}
}
