package deletion

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/store"
)

const simKey = "pk_deletion_test"

type fixture struct {
	t      *testing.T
	sim    *sim.Sim
	store  *store.SQLite
	queue  *queue.SQLite
	worker *Worker
	clock  *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	s, err := sim.New(sim.Config{Keys: []string{simKey}, RateLimits: true, JobDelay: -1}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	client, err := kapi.New(kapi.Config{BaseURL: srv.URL, BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond, MaxAttempts: 1}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "state.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.OpenSQLite(ctx, filepath.Join(t.TempDir(), "queue.db"), queue.SQLiteOptions{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		q.Close()
		st.Close()
		client.CloseIdleConnections()
		srv.Close()
		s.Close()
	})
	c := &clock{t: time.Now()}
	sup, err := NewSuppressions(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	w := New(Config{Now: c.now, Suppressions: sup, Destinations: []Destination{{Name: "klaviyo", Client: client,
		Account: func() (string, string) { return simKey, "US" }}}}, st, q, log)
	return &fixture{t: t, sim: s, store: st, queue: q, worker: w, clock: c}
}

// deliver sends an event straight to the simulator, as delivery had done.
func (f *fixture) deliver(uniqueID string, profile map[string]any) {
	f.t.Helper()
	req := klaviyo.Request{Method: "POST", Path: "/api/events", Body: map[string]any{"data": map[string]any{"type": "event", "attributes": map[string]any{
		"properties": map[string]any{}, "unique_id": uniqueID,
		"metric":  map[string]any{"data": map[string]any{"type": "metric", "attributes": map[string]any{"name": "Viewed"}}},
		"profile": map[string]any{"data": map[string]any{"type": "profile", "attributes": profile}},
	}}}}
	for _, d := range f.worker.cfg.Destinations {
		if _, err := d.Client.(*kapi.Client).Do(context.Background(), simKey, req); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) submit(d store.Deletion) store.Deletion {
	f.t.Helper()
	ds := []store.Deletion{d}
	if err := f.worker.Submit(context.Background(), ds); err != nil {
		f.t.Fatal(err)
	}
	return ds[0]
}

func (f *fixture) get(id int64) store.Deletion {
	f.t.Helper()
	d, err := f.store.Deletion(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func TestDeletionEndToEnd(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.deliver("e1", map[string]any{"external_id": "u1", "email": "gone@example.com"})
	f.deliver("e2", map[string]any{"phone_number": "+15005550006"}) // the same user, another profile
	f.deliver("e3", map[string]any{"email": "keep@example.com"})
	msg := func(id, payload string) queue.Message {
		return queue.Message{Source: "web", Dest: "klaviyo", Key: "k-" + id, MessageID: id, Payload: []byte(payload), ReceivedAt: time.Now()}
	}
	if err := f.queue.Enqueue(ctx, []queue.Message{
		msg("q1", `{"type":"track","userId":"u1","event":"A"}`),
		msg("q2", `{"type":"identify","traits":{"phone":"+1 500 555 0006"}}`),
		msg("q3", `{"type":"track","userId":"u2","event":"A"}`),
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Record(ctx, []store.LogEntry{
		{MessageID: "e1", Dest: "klaviyo", UserID: "u1", Email: "gone@example.com", Status: store.StatusDelivered},
		{MessageID: "e3", Dest: "klaviyo", Email: "keep@example.com", Status: store.StatusDelivered},
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.AddDeadLetters(ctx, []store.DeadLetter{
		{MessageID: "d1", Dest: "klaviyo", Payload: []byte(`{"userId":"u1","type":"track"}`), Error: "x"},
		{MessageID: "d2", Dest: "klaviyo", Payload: []byte(`{"userId":"u2","type":"track"}`), Error: "x"},
	}); err != nil {
		t.Fatal(err)
	}

	d := f.submit(store.Deletion{Subject: store.DeletionSubject{UserID: "u1", Phone: "(500) 555-0006"}, Origin: "test"})
	f.worker.RunOnce(ctx)

	got := f.get(d.ID)
	if got.State != store.DeletionDone {
		t.Fatalf("state %s, last error %q", got.State, got.LastError)
	}
	details := []string{}
	for _, s := range got.Steps {
		if !s.Done {
			t.Errorf("step %q not done", s.Name)
		}
		details = append(details, s.Name+": "+s.Detail)
	}
	joined := strings.Join(details, "\n")
	for _, w := range []string{"2 queued events dropped", "1 delivery log rows, 1 dead letters removed", "2 deletion jobs created (1 profiles found by userId)"} {
		if !strings.Contains(joined, w) {
			t.Errorf("steps lack %q:\n%s", w, joined)
		}
	}
	if got.Subject.UserID == "u1" || strings.Contains(got.Subject.Phone, "555") {
		t.Errorf("a done request keeps identifiers: %+v", got.Subject)
	}
	jobs, _ := f.queue.List(ctx, queue.ListFilter{Dest: "klaviyo"})
	if len(jobs) != 1 || jobs[0].MessageID != "q3" {
		t.Errorf("queue left: %+v", jobs)
	}
	st := f.sim.State()
	if len(st.Profiles) != 1 || st.Profiles[0].Email != "keep@example.com" || len(st.Events) != 1 || len(st.Deleted) != 2 {
		t.Errorf("sim: profiles %+v, events %d, deleted %+v", st.Profiles, len(st.Events), st.Deleted)
	}
	if st.Rejected != 0 {
		t.Errorf("sim rejected: %+v", st.Rejections)
	}
	if rows, _ := f.store.QueryLog(ctx, store.LogQuery{}); len(rows) != 1 || rows[0].MessageID != "e3" {
		t.Errorf("log left: %+v", rows)
	}
	if n, _ := f.store.CountDeadLetters(ctx, ""); n != 1 {
		t.Errorf("dead letters left: %d", n)
	}
}

// A 5xx from Klaviyo puts the request back to pending with a backoff; it
// finishes once Klaviyo answers, without repeating the finished steps.
func TestDeletionRetries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.deliver("e1", map[string]any{"email": "gone@example.com"})
	f.sim.SetFaults(sim.Faults{ErrorRate: 1, Endpoints: []string{"POST /api/data-privacy-deletion-jobs"}})
	d := f.submit(store.Deletion{Subject: store.DeletionSubject{Email: "gone@example.com"}, Origin: "test"})
	f.worker.RunOnce(ctx)
	got := f.get(d.ID)
	if got.State != store.DeletionPending || got.Attempts != 1 || !strings.Contains(got.LastError, "klaviyo") ||
		!got.NextAt.After(f.clock.now()) || !got.Steps[0].Done || !got.Steps[1].Done || got.Steps[2].Done {
		t.Fatalf("after a 5xx: %+v", got)
	}
	f.worker.RunOnce(ctx) // not due yet
	if f.get(d.ID).Attempts != 1 {
		t.Fatal("retried before its backoff")
	}
	f.sim.SetFaults(sim.Faults{})
	f.clock.add(time.Hour)
	f.worker.RunOnce(ctx)
	if got := f.get(d.ID); got.State != store.DeletionDone || len(f.sim.State().Profiles) != 0 {
		t.Fatalf("after recovery: %+v, sim %+v", got, f.sim.State().Profiles)
	}
}

func TestDeletionPermanentFailure(t *testing.T) {
	f := newFixture(t)
	// Submit refuses this phone; a request stored without a server
	// (relay forget) or before defaultPhoneCountry changed is not checked.
	ds := []store.Deletion{{Subject: store.DeletionSubject{Phone: "12"}, Origin: "test"}}
	if err := f.store.CreateDeletions(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	d := ds[0]
	f.worker.RunOnce(context.Background())
	got := f.get(d.ID)
	if got.State != store.DeletionFailed || !strings.Contains(got.LastError, "phone number") {
		t.Fatalf("got %+v", got)
	}
	if !got.Steps[0].Done || !got.Steps[1].Done {
		t.Errorf("Relay's own data must be forgotten even when Klaviyo cannot be asked: %+v", got.Steps)
	}
}

func TestDeletionLocalOnlyAndUnknownDest(t *testing.T) {
	f := newFixture(t)
	f.deliver("e1", map[string]any{"email": "gone@example.com"})
	d := f.submit(store.Deletion{Subject: store.DeletionSubject{Email: "gone@example.com"}, LocalOnly: true})
	f.worker.RunOnce(context.Background())
	if got := f.get(d.ID); got.State != store.DeletionDone || len(got.Steps) != 2 || len(f.sim.State().Profiles) != 1 {
		t.Errorf("local only: %+v", got)
	}
	err := f.worker.Submit(context.Background(), []store.Deletion{{Subject: store.DeletionSubject{UserID: "x"}, Dests: []string{"nope"}}})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown destination: %v", err)
	}
}

// A request left running (the process died mid-way) resumes at its first
// unfinished step.
func TestDeletionResumes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.deliver("e1", map[string]any{"email": "gone@example.com"})
	d := f.submit(store.Deletion{Subject: store.DeletionSubject{Email: "gone@example.com"}})
	d.State = store.DeletionRunning
	d.Steps = []store.DeletionStep{{Name: stepQueue, Done: true, Detail: "before the crash"}, {Name: stepStore}, {Name: stepKlaviyo + "klaviyo"}}
	if err := f.store.UpdateDeletion(ctx, d); err != nil {
		t.Fatal(err)
	}
	f.worker.RunOnce(ctx)
	got := f.get(d.ID)
	if got.State != store.DeletionDone || got.Steps[0].Detail != "before the crash" || len(f.sim.State().Profiles) != 0 {
		t.Errorf("resumed: %+v", got)
	}
}

// TestWorkersShareRequests: two workers (two nodes) on one store claim
// each request once: every request is done and Klaviyo got exactly one
// deletion job per request.
func TestWorkersShareRequests(t *testing.T) {
	f := newFixture(t)
	other := New(f.worker.cfg, f.store, f.queue, slog.New(slog.DiscardHandler))
	const n = 6
	for i := range n {
		f.submit(store.Deletion{Subject: store.DeletionSubject{Email: fmt.Sprintf("p%d@example.com", i)}})
	}
	var wg sync.WaitGroup
	for _, w := range []*Worker{f.worker, other} {
		wg.Go(func() { w.RunOnce(context.Background()) })
	}
	wg.Wait()
	ds, _ := f.store.ListDeletions(context.Background(), store.DeletionQuery{State: store.DeletionDone})
	if len(ds) != n {
		t.Fatalf("%d of %d requests done", len(ds), n)
	}
	if got := f.sim.State().Requests["POST /api/data-privacy-deletion-jobs"]; got != n {
		t.Errorf("%d deletion jobs for %d requests: a request was worked twice", got, n)
	}
}

// TestHeartbeatKeepsLease: while a request is worked its lease moves
// forward, so no other node claims it however long a step takes.
func TestHeartbeatKeepsLease(t *testing.T) {
	f := newFixture(t)
	f.worker.cfg.Lease = 60 * time.Millisecond
	d := f.submit(store.Deletion{Subject: store.DeletionSubject{UserID: "u1"}})
	ctx := context.Background()
	if got, err := f.store.ClaimDeletions(ctx, f.clock.now(), f.worker.cfg.Lease, 1); err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	f.clock.add(time.Hour) // the claim's lease has long run out
	stop := f.worker.heartbeat(ctx, d.ID)
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, _ := f.store.Deletion(ctx, d.ID)
		if g.LeaseUntil.After(f.clock.now()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the heartbeat never extended the lease")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, _ := f.store.ClaimDeletions(ctx, f.clock.now(), time.Minute, 1); len(got) != 0 {
		t.Errorf("another node claimed a request being worked")
	}
	stop()
	f.clock.add(time.Minute)
	if got, _ := f.store.ClaimDeletions(ctx, f.clock.now(), time.Minute, 1); len(got) != 1 {
		t.Errorf("the request is not claimable after its worker stopped")
	}
}
