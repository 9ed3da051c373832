package kdest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/delivery"
	"github.com/relaycdp/relay/internal/delivery/deliverytest"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/sim"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
	"github.com/relaycdp/relay/internal/testutil"
)

const testKey = "pk_delivery_test"

type env struct {
	sim *sim.Sim
	q   *deliverytest.FakeQueue
	log *deliverytest.FakeLog
	w   *delivery.Worker
}

func newEnv(t *testing.T, settings klaviyo.Settings, faults sim.Faults, events ...string) *env {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := sim.New(sim.Config{Keys: []string{testKey}, Faults: faults, JobDelay: -1}, discard)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close() })
	c, err := kapi.New(kapi.Config{BaseURL: srv.URL, MaxAttempts: 1, Timeout: 5 * time.Second}, discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if settings.PublicAPIKey == "" || settings.PrivateAPIKey != "" {
		settings.PrivateAPIKey = testKey
	}
	e := &env{sim: s, q: &deliverytest.FakeQueue{}, log: &deliverytest.FakeLog{}}
	e.q.Jobs = jobs(t, events...)
	current := func() klaviyo.Settings { return settings }
	late := delivery.NewLate(delivery.Config{Dest: "klaviyo"}, e.log, nil)
	in := &instance{Sink: NewSink(Config{Settings: current, ImportJobTimeout: 5 * time.Second, Late: late}, c, discard, nil), settings: current}
	t.Cleanup(in.Close)
	e.w = delivery.New(delivery.Config{Dest: "klaviyo", Title: "Klaviyo", Sink: in, Stages: in.Stages(), Waiting: in.Waiting}, e.q, e.log, discard, nil)
	return e
}

// jobs parses events as the gateway does and wraps them as claimed jobs.
func jobs(t *testing.T, events ...string) []queue.Job {
	t.Helper()
	b, err := spec.Parse([]byte("["+strings.Join(events, ",")+"]"), spec.Options{ReceivedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var out []queue.Job
	for i, it := range b.Items {
		if it.Err != nil {
			t.Fatalf("event %d: %v", i, it.Err)
		}
		payload, _ := json.Marshal(it.Event)
		out = append(out, queue.Job{ID: int64(i + 1), Message: queue.Message{
			Source: "web", Dest: "klaviyo", Key: it.Event.Key(), MessageID: it.Event.MessageID,
			Payload: payload, ReceivedAt: time.Now(),
		}})
	}
	return out
}

func track(id, user, email string) string {
	return fmt.Sprintf(`{"type":"track","messageId":%q,"userId":%q,"event":"Clicked","context":{"traits":{"email":%q}}}`, id, user, email)
}

func (e *env) run(t *testing.T) {
	t.Helper()
	if _, err := e.w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// events waits for the simulator's bulk jobs (applied asynchronously) to
// settle and returns the stored events.
func (e *env) events(t *testing.T, want int) []sim.EventState {
	t.Helper()
	var evs []sim.EventState
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%d events stored", want), func() bool {
		evs = e.sim.State().Events
		return len(evs) >= want
	})
	return evs
}

// settled waits until the simulator has applied every bulk job it accepted
// (it applies them asynchronously, in order) and returns its state.
func (e *env) settled(t *testing.T) sim.State {
	t.Helper()
	var st sim.State
	testutil.EventuallyWhy(t, 5*time.Second, "simulator jobs complete", func() (bool, string) {
		st = e.sim.State()
		return !slices.ContainsFunc(st.Jobs, func(j sim.JobState) bool { return j.Status != "complete" }), fmt.Sprintf("%+v", st.Jobs)
	})
	return st
}

func (e *env) status(id string) store.Status { return e.log.Entries[id].Status }

func TestBulkDelivery(t *testing.T) {
	var evs []string
	for i := range 30 {
		evs = append(evs, track(fmt.Sprintf("m%d", i), fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@example.com", i)))
	}
	e := newEnv(t, klaviyo.DefaultSettings(), sim.Faults{}, evs...)
	e.run(t)
	if got := len(e.events(t, 30)); got != 30 {
		t.Fatalf("Klaviyo holds %d events, want 30", got)
	}
	st := e.sim.State()
	if st.Requests["POST /api/event-bulk-create-jobs"] != 1 || st.Requests["POST /api/events"] != 0 {
		t.Fatalf("requests = %v, want one bulk job", st.Requests)
	}
	if len(e.q.Succeeded) != 30 || len(e.q.Aborted) != 0 || len(e.q.Retried) != 0 {
		t.Fatalf("queue outcome: %d ok, %d aborted, %d retried", len(e.q.Succeeded), len(e.q.Aborted), len(e.q.Retried))
	}
	if e.status("m7") != store.StatusDelivered || e.log.Entries["m7"].Email != "u7@example.com" {
		t.Fatalf("log entry = %+v", e.log.Entries["m7"])
	}
}

// One item Klaviyo rejects fails alone; the rest of the bulk job is sent
// again and delivered.
func TestBadItemIsolated(t *testing.T) {
	// The mapping accepts a 1980 timestamp; Klaviyo refuses events before 1990.
	old := `{"type":"track","messageId":"bad","userId":"ub","event":"Clicked","timestamp":"1980-01-01T00:00:00Z","context":{"traits":{"email":"b@example.com"}}}`
	evs := []string{track("a", "ua", "a@example.com"), old, track("c", "uc", "c@example.com")}
	e := newEnv(t, klaviyo.DefaultSettings(), sim.Faults{}, evs...)
	e.run(t)
	if got := len(e.events(t, 2)); got != 2 {
		t.Fatalf("Klaviyo holds %d events, want 2", got)
	}
	if e.status("a") != store.StatusDelivered || e.status("c") != store.StatusDelivered || e.status("bad") != store.StatusDead {
		t.Fatalf("statuses a=%s bad=%s c=%s", e.status("a"), e.status("bad"), e.status("c"))
	}
	dl := e.log.Dead["bad"]
	if dl.Status != 400 || !strings.Contains(dl.Pointer, "/data/attributes/events-bulk-create/data/1") {
		t.Fatalf("dead letter = %+v, want Klaviyo's 400 with the item's pointer", dl)
	}
	if !slices.Equal(e.q.Aborted, []int64{2}) {
		t.Fatalf("aborted %v", e.q.Aborted)
	}
}

func TestMappingErrorsAndSkips(t *testing.T) {
	e := newEnv(t, klaviyo.DefaultSettings(), sim.Faults{},
		`{"type":"group","messageId":"nogroup","userId":"u1","traits":{"subscribe":true},"context":{"traits":{"email":"u1@example.com"}}}`,
		`{"type":"page","messageId":"page","userId":"u1","name":"Home"}`,
		`{"type":"track","messageId":"off","userId":"u1","event":"X","integrations":{"Klaviyo":false}}`,
		track("ok", "u2", "u2@example.com"),
	)
	e.run(t)
	if e.status("nogroup") != store.StatusDead || !strings.Contains(e.log.Dead["nogroup"].Error, "groupId") {
		t.Fatalf("group without groupId: %s %+v", e.status("nogroup"), e.log.Dead["nogroup"])
	}
	for _, id := range []string{"page", "off"} {
		if e.status(id) != store.StatusSkipped || e.log.Entries[id].Detail == "" {
			t.Errorf("%s: %+v, want skipped with a reason", id, e.log.Entries[id])
		}
	}
	if e.status("ok") != store.StatusDelivered {
		t.Fatalf("ok: %s", e.status("ok"))
	}
}

// Server errors are retried later through the queue, never dead-lettered
// while young.
func TestRetryableFailures(t *testing.T) {
	e := newEnv(t, klaviyo.DefaultSettings(), sim.Faults{ErrorRate: 1}, track("a", "ua", "a@example.com"), track("b", "ub", "b@example.com"))
	before := time.Now()
	e.run(t)
	if len(e.q.Retried) != 2 || len(e.q.Aborted) != 0 || len(e.log.Dead) != 0 {
		t.Fatalf("retried %v aborted %v dead %v", e.q.Retried, e.q.Aborted, e.log.Dead)
	}
	for id, at := range e.q.Retried {
		if !at.After(before) {
			t.Errorf("job %d retry at %v, not in the future", id, at)
		}
	}
	if e.status("a") != store.StatusRetrying {
		t.Fatalf("status %s", e.status("a"))
	}
}

func TestRetryGivesUpAfterMaxAge(t *testing.T) {
	e := newEnv(t, klaviyo.DefaultSettings(), sim.Faults{ErrorRate: 1}, track("a", "ua", "a@example.com"))
	e.q.Jobs[0].ReceivedAt = time.Now().Add(-48 * time.Hour)
	e.run(t)
	if e.status("a") != store.StatusDead || !strings.Contains(e.log.Dead["a"].Error, "gave up") {
		t.Fatalf("status %s dead %+v", e.status("a"), e.log.Dead["a"])
	}
}

// One profile's subscribe then unsubscribe in one batch must end
// unsubscribed: they go out in separate rounds, in order.
func TestProfileChangesKeepOrder(t *testing.T) {
	s := klaviyo.DefaultSettings()
	s.ListID = "L1"
	ident := func(id string, sub bool) string {
		return fmt.Sprintf(`{"type":"identify","messageId":%q,"userId":"u1","traits":{"email":"u1@example.com","properties":{"subscribe":%t}}}`, id, sub)
	}
	e := newEnv(t, s, sim.Faults{}, ident("i1", true), track("t1", "u1", "u1@example.com"), ident("i2", false))
	e.run(t)
	st := e.settled(t)
	if len(st.Profiles) != 1 {
		t.Fatalf("%d profiles", len(st.Profiles))
	}
	sub := st.Profiles[0].Subscriptions.Email
	if sub == nil || sub.Marketing == nil || sub.Marketing.Consent != "UNSUBSCRIBED" {
		t.Fatalf("email consent = %+v, want UNSUBSCRIBED (the later call)", sub)
	}
	for _, id := range []string{"i1", "t1", "i2"} {
		if e.status(id) != store.StatusDelivered {
			t.Errorf("%s: %s %s", id, e.status(id), e.log.Entries[id].Detail)
		}
	}
}

// A repeated messageId (an SDK retry that was committed twice) must not
// fail the bulk job: Klaviyo rejects a job that repeats a unique_id.
func TestRepeatedUniqueIDInOneBatch(t *testing.T) {
	e := newEnv(t, klaviyo.DefaultSettings(), sim.Faults{}, track("same", "u1", "u1@example.com"), track("same", "u1", "u1@example.com"), track("other", "u2", "u2@example.com"))
	e.run(t)
	if len(e.q.Succeeded) != 3 || len(e.q.Aborted) != 0 {
		t.Fatalf("succeeded %v aborted %v (%v)", e.q.Succeeded, e.q.Aborted, e.log.Dead)
	}
	if got := len(e.events(t, 2)); got != 2 {
		t.Fatalf("Klaviyo holds %d events, want 2", got)
	}
}

func TestRoundsSplitOnlyOrderSensitiveChanges(t *testing.T) {
	patch := &klaviyo.Profile{Meta: &klaviyo.ProfileMeta{}}
	job := func(key string, kind klaviyo.OpKind, p *klaviyo.Profile) item {
		return item{job: queue.Job{Message: queue.Message{Key: key}}, ops: []klaviyo.Op{{Kind: kind, Profile: p}}}
	}
	b := &batch{items: []item{
		job("a", klaviyo.OpSubscribe, nil),
		job("a", klaviyo.OpProfile, nil), // a plain import commutes: same round, merged
		job("a", klaviyo.OpEvent, nil),
		job("b", klaviyo.OpSubscribe, nil),
		job("a", klaviyo.OpUnsubscribe, nil), // after a's subscribe: next round
		job("a", klaviyo.OpEvent, nil),
		job("b", klaviyo.OpProfile, patch), // a patch after b's subscribe: next round
	}}
	got := b.rounds()
	want := [][]int{{0, 1, 2, 3}, {4, 5, 6}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rounds = %v, want %v", got, want)
	}
}

// Two identifies of one user in a batch go out as one import carrying
// both, later values winning: what importing them in turn would leave.
func TestProfileImportsMerged(t *testing.T) {
	e := newEnv(t, klaviyo.DefaultSettings(), sim.Faults{},
		`{"type":"identify","messageId":"i1","userId":"u1","traits":{"email":"u1@example.com","firstName":"Ann","plan":"free","city":"Oslo"}}`,
		`{"type":"identify","messageId":"i2","userId":"u2","traits":{"email":"u2@example.com"}}`,
		`{"type":"identify","messageId":"i3","userId":"u1","traits":{"lastName":"Lee","plan":"pro"}}`,
	)
	e.run(t)
	st := e.sim.State()
	if n := st.Requests["POST /api/profile-bulk-import-jobs"]; n != 1 {
		t.Fatalf("%d profile import jobs, want 1 (requests %v)", n, st.Requests)
	}
	var p *sim.ProfileState
	testutil.EventuallyWhy(t, 5*time.Second, "profile u1 imported with the later plan", func() (bool, string) {
		p = nil
		for _, pr := range e.sim.State().Profiles {
			if pr.ExternalID == "u1" {
				p = &pr
			}
		}
		return p != nil && p.Properties["plan"] == "pro", fmt.Sprintf("%+v", p)
	})
	if p.Attributes["first_name"] != "Ann" || p.Attributes["last_name"] != "Lee" || p.Email != "u1@example.com" {
		t.Fatalf("merged profile = %+v", p)
	}
	for _, id := range []string{"i1", "i2", "i3"} {
		if e.status(id) != store.StatusDelivered {
			t.Errorf("%s: %s %s", id, e.status(id), e.log.Entries[id].Detail)
		}
	}
}

// Under load a batch's last, partly filled events request is held back to
// fill the next batch's requests; the held jobs go out in the next batch
// and nothing is lost or settled twice.
func TestPartialRequestHeldForNextBatch(t *testing.T) {
	var evs []string
	for i := range 1500 {
		evs = append(evs, track(fmt.Sprintf("m%d", i), fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@example.com", i)))
	}
	e := newEnv(t, klaviyo.DefaultSettings(), sim.Faults{}, evs...)
	first := e.q.Jobs[:1200]
	rest := e.q.Jobs[1200:]
	e.q.Jobs = first
	n, err := e.w.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 1000 || len(e.q.Succeeded) != 1000 {
		t.Fatalf("settled %d (%d succeeded); want 1000 sent in one full request and 200 held", n, len(e.q.Succeeded))
	}
	if got := e.sim.State().Requests["POST /api/event-bulk-create-jobs"]; got != 1 {
		t.Fatalf("%d bulk requests, want 1", got)
	}
	e.q.Jobs = rest // 300 more arrive: 200 held + 300 = 500, below a full request: all sent
	if n, err := e.w.RunOnce(context.Background()); err != nil || n != 500 {
		t.Fatalf("second batch settled %d (%v), want the 200 held and 300 new", n, err)
	}
	if got := len(e.events(t, 1500)); got != 1500 {
		t.Fatalf("Klaviyo holds %d events, want 1500", got)
	}
	if len(e.q.Succeeded) != 1500 || len(e.log.Entries) != 1500 {
		t.Fatalf("succeeded %d, logged %d", len(e.q.Succeeded), len(e.log.Entries))
	}
}

// A product without an id fails only its Ordered Product event: the order
// and the other products are delivered, and the log names the product.
func TestOrderProductFailureDelivered(t *testing.T) {
	e := newEnv(t, klaviyo.DefaultSettings(), sim.Faults{},
		`{"type":"track","messageId":"order","userId":"u1","event":"Order Completed","context":{"traits":{"email":"u1@example.com"}},`+
			`"properties":{"order_id":"O1","revenue":20,"products":[{"sku":"S1","price":10},{"name":"no id","price":10}]}}`)
	e.run(t)
	if got := len(e.events(t, 2)); got != 2 {
		t.Fatalf("Klaviyo holds %d events, want Placed Order and one Ordered Product", got)
	}
	entry := e.log.Entries["order"]
	if entry.Status != store.StatusDelivered || !strings.Contains(entry.Detail, "properties.products[1]") {
		t.Fatalf("log entry = %+v, want delivered naming the failed product", entry)
	}
	if len(e.q.Aborted) != 0 {
		t.Fatalf("aborted %v", e.q.Aborted)
	}
}

// removeFromList ends list membership (profile lookup, then DELETE on the
// list relationship) without touching consent.
func TestListRemoval(t *testing.T) {
	add := klaviyo.DefaultSettings()
	add.ListMode, add.ListID = klaviyo.ListModeAdd, "L1"
	e := newEnv(t, add, sim.Faults{},
		`{"type":"identify","messageId":"add1","userId":"u1","traits":{"email":"u1@example.com"}}`,
		`{"type":"identify","messageId":"add2","userId":"u2","traits":{"email":"u2@example.com"}}`)
	e.run(t)
	if got := len(e.settled(t).Lists["L1"]); got != 2 {
		t.Fatalf("list L1 has %d members after the adds, want 2", got)
	}
	e.q.Jobs = jobs(t,
		`{"type":"track","messageId":"rm1","userId":"u1","event":"Left","context":{"traits":{"email":"u1@example.com"}},"integrations":{"Klaviyo":{"removeFromList":"L1"}}}`,
		`{"type":"track","messageId":"rm3","userId":"u3","event":"Left","context":{"traits":{"email":"nobody@example.com"}},"integrations":{"Klaviyo":{"removeFromList":"L1"}}}`)
	e.run(t)
	st := e.settled(t)
	if got := len(st.Lists["L1"]); got != 1 {
		t.Fatalf("list L1 has %d members after the removal, want 1: %v", got, st.Lists)
	}
	if st.Requests["DELETE /api/lists/{id}/relationships/profiles"] != 1 || st.Requests["GET /api/profiles"] != 2 {
		t.Fatalf("requests = %v, want 2 lookups and one DELETE", st.Requests)
	}
	for _, id := range []string{"rm1", "rm3"} {
		if e.status(id) != store.StatusDelivered {
			t.Errorf("%s: %+v", id, e.log.Entries[id])
		}
	}
}

// Without any key nothing is claimed: the jobs wait in the queue for a
// key instead of failing attempts until maxRetryAge.
func TestNoKeyLeavesJobsQueued(t *testing.T) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	q := &deliverytest.FakeQueue{Jobs: jobs(t, track("m1", "u1", "u1@example.com"))}
	in := &instance{settings: klaviyo.DefaultSettings}
	w := delivery.New(delivery.Config{Dest: "klaviyo", Title: "Klaviyo", Sink: nil, Waiting: in.Waiting}, q, &deliverytest.FakeLog{}, discard, nil)
	n, err := w.RunOnce(context.Background())
	if err != nil || n != 0 || len(q.Jobs) != 1 || len(q.Retried) != 0 || len(q.Aborted) != 0 {
		t.Fatalf("RunOnce = %d, %v; queue %d jobs, %d retried, %d aborted", n, err, len(q.Jobs), len(q.Retried), len(q.Aborted))
	}
}

// A destination with only a public key delivers through the client API.
func TestPublicKeyOnly(t *testing.T) {
	s := klaviyo.DefaultSettings()
	s.PublicAPIKey, s.ListID = "AbC123", "L1"
	e := newEnv(t, s, sim.Faults{},
		`{"type":"identify","messageId":"id1","userId":"u1","traits":{"email":"u1@example.com"}}`,
		track("tr1", "u1", "u1@example.com"))
	e.run(t)
	st := e.settled(t)
	if st.Requests["POST /client/profiles"] != 1 || st.Requests["POST /client/subscriptions"] != 1 || st.Requests["POST /client/events"] != 1 {
		t.Fatalf("requests = %v, want the client endpoints", st.Requests)
	}
	for _, id := range []string{"id1", "tr1"} {
		if e.status(id) != store.StatusDelivered {
			t.Errorf("%s: %+v", id, e.log.Entries[id])
		}
	}
}

// TestDeviceModeSkipsBrowserEvents: with device mode on, events the
// browser already sent to Klaviyo (analytics-next's _metadata.bundled,
// RudderStack's JS SDK) are skipped; server-side events still go.
func TestDeviceModeSkipsBrowserEvents(t *testing.T) {
	s := klaviyo.DefaultSettings()
	s.PublicAPIKey, s.DeviceMode = "PUB1", klaviyo.DeviceModeOn
	e := newEnv(t, s, sim.Faults{},
		`{"type":"track","messageId":"seg","userId":"u1","event":"X","_metadata":{"bundled":["Klaviyo","Segment.io"]},"properties":{"email":"u1@example.com"}}`,
		`{"type":"track","messageId":"rs","userId":"u1","event":"X","context":{"library":{"name":"RudderLabs JavaScript SDK","version":"3.34.1"}},"properties":{"email":"u1@example.com"}}`,
		track("server", "u2", "u2@example.com"),
	)
	e.run(t)
	for _, id := range []string{"seg", "rs"} {
		if e.status(id) != store.StatusSkipped || !strings.Contains(e.log.Entries[id].Detail, "device mode") {
			t.Errorf("%s: %s %+v, want skipped as sent by the browser", id, e.status(id), e.log.Entries[id])
		}
	}
	if e.status("server") != store.StatusDelivered {
		t.Fatalf("server: %s", e.status("server"))
	}
}

// A profile import job Klaviyo accepted is followed after its batch: the
// batch delivers at once, and the item the finished job refuses (its
// identifiers belong to two profiles) is then dead-lettered with its
// payload and marked dead in the log; the job's other item stays
// delivered.
func TestImportJobItemFailuresRecordedLate(t *testing.T) {
	e := newEnv(t, klaviyo.DefaultSettings(), sim.Faults{},
		`{"type":"identify","messageId":"seed-a","userId":"u-a","traits":{"email":"a@example.com"}}`,
		`{"type":"identify","messageId":"seed-b","userId":"u-b","traits":{"email":"b@example.com"}}`,
	)
	e.run(t)
	e.settled(t)
	conflict := `{"type":"identify","messageId":"clash","userId":"u-a","traits":{"email":"b@example.com","plan":"pro"}}`
	e.q.Jobs = append(e.q.Jobs, jobs(t, conflict,
		`{"type":"identify","messageId":"fine","userId":"u-c","traits":{"email":"c@example.com"}}`,
		// Merged into the clash's import item: refused with it.
		`{"type":"identify","messageId":"clash-2","userId":"u-a","traits":{"lastName":"Lee"}}`)...)
	for i := range e.q.Jobs {
		e.q.Jobs[i].ID = int64(10 + i)
	}
	e.run(t)
	if st := e.sim.State(); st.Requests["POST /api/profile-bulk-import-jobs"] != 2 {
		t.Fatalf("requests %v: want the second batch in one import job", st.Requests)
	}
	testutil.EventuallyWhy(t, 10*time.Second, "the refused item dead-lettered", func() (bool, string) {
		entry, _, dead := e.log.Latest("clash")
		return dead && entry.Status == store.StatusDead, fmt.Sprintf("%+v", entry)
	})
	entry, dl, _ := e.log.Latest("clash")
	if dl.Code != "duplicate_profile" || !strings.HasPrefix(dl.Pointer, "/data/attributes/profiles/data/") ||
		!strings.Contains(dl.Error, "profile import job") || !strings.Contains(string(dl.Payload), `"plan":"pro"`) {
		t.Errorf("dead letter %+v", dl)
	}
	if !strings.Contains(entry.Detail, "duplicate_profile") {
		t.Errorf("log detail %q", entry.Detail)
	}
	if entry, _, dead := e.log.Latest("fine"); dead || entry.Status != store.StatusDelivered {
		t.Errorf("fine: %+v (dead letter %v)", entry, dead)
	}
	if entry, dl, dead := e.log.Latest("clash-2"); !dead || entry.Status != store.StatusDead || !strings.Contains(string(dl.Payload), `"Lee"`) {
		t.Errorf("clash-2 (merged into the refused item): %+v, dead letter %v", entry, dead)
	}
}
