package delivery

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/delivery/deliverytest"
	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

// A late Dead result dead-letters the event with its payload and marks it
// dead in the log; a late Delivered changes nothing.
func TestLateDeadLetters(t *testing.T) {
	var log deliverytest.FakeLog
	late := NewLate(Config{Dest: "klaviyo"}, &log, nil)
	var jobs []destination.Job
	for i, id := range []string{"m1", "m2"} {
		j := job(int64(i+1), id, track(id), time.Now().Add(-time.Minute))
		var ev spec.Event
		if err := json.Unmarshal(j.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, destination.Job{Job: j, Event: &ev})
		if i == 0 {
			jobs[0].Event = nil // described from the payload
		}
	}
	results := []destination.Result{
		{Outcome: destination.Dead, Status: 400, Code: "invalid", Pointer: "/data/attributes/profiles/data/1/attributes/email",
			Detail: "profile import job J1: identifiers belong to two profiles"},
		{Outcome: destination.Delivered},
	}
	if err := late(context.Background(), jobs, results); err != nil {
		t.Fatal(err)
	}
	if len(log.DeadLetters) != 1 || len(log.Records) != 1 {
		t.Fatalf("dead letters %+v, log %+v; want m1 in each", log.DeadLetters, log.Records)
	}
	dl, e := log.DeadLetters[0], log.Records[0]
	if dl.MessageID != "m1" || dl.Dest != "klaviyo" || string(dl.Payload) != track("m1") || dl.Code != "invalid" || dl.Status != 400 ||
		dl.Pointer != results[0].Pointer || !strings.Contains(dl.Error, "identifiers belong to two profiles") {
		t.Errorf("dead letter %+v", dl)
	}
	if e.MessageID != "m1" || e.Status != store.StatusDead || e.Email != "u1@example.com" || e.Event != "Clicked" || !strings.Contains(e.Detail, "HTTP 400") {
		t.Errorf("log entry %+v", e)
	}
	if err := late(context.Background(), jobs, results[:1]); err == nil {
		t.Error("mismatched results accepted")
	}
}
