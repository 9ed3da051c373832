package console

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

// The event tester shows what an event maps to with the same code path as
// `relay transform` (klaviyo.Transform and MarshalOutcomes), with the
// destination's settings or edited ones, and can send the event through
// the real queue to a destination, then follows its delivery log entry.

// testerSource is the Source of events the tester enqueues, so the
// delivery log tells them apart from SDK traffic.
const testerSource = "console-tester"

// maxEventBytes is Segment's per-event limit, as at ingest.
const maxEventBytes = 32 << 10

type sampleEvent struct {
	ID, Label, JSON string
}

type testerData struct {
	pageData
	Dest         string
	Samples      []sampleEvent
	Event        string
	SettingsText string
}

type outcomeView = destination.TestOutcome

type transformData struct {
	pageData
	SettingsWarnings []string
	SettingsError    string
	InputError       string
	Outcomes         []outcomeView
	Output           string
	Transformed      string // the events after the transformation (editor)
}

type sentView struct {
	pageData
	Dest      string
	MessageID string
	Rejected  string
	Entry     *store.LogEntry
	Waiting   bool
	Delay     string
}

type sendData struct {
	pageData
	Error string
	Sent  []sentView
}

func (c *Console) testerPage(w http.ResponseWriter, r *http.Request) {
	dest := r.URL.Query().Get("dest")
	if !c.hasDest(dest) && len(c.deps.Destinations) > 0 {
		dest = c.deps.Destinations[0]
	}
	d := &testerData{pageData: pageData{Title: "Event tester", Nav: "tester"}, Dest: dest}
	s, _ := c.deps.Settings.Settings(dest)
	doc := settingsDoc(s)
	listID, _ := doc["listId"].(string)
	d.Samples = samples(c.cfg.Now(), listID)
	d.Event = d.Samples[1].JSON
	if typ, ok := c.deps.Settings.DestType(dest); ok {
		d.SettingsText = settingsForTest(typ, doc)
	}
	c.render(w, r, http.StatusOK, "tester", d)
}

// settingsForTest renders settings as editable JSON without the secrets
// (the test fills in the destination's own when they are left out).
func settingsForTest(typ *destination.Type, doc map[string]any) string {
	for _, f := range typ.Fields {
		if f.Kind == destination.KindSecret {
			delete(doc, f.Name)
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil || doc == nil {
		return "{}"
	}
	return string(b)
}

func jsonOf(doc map[string]any) ([]byte, error) {
	if doc == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(doc)
}

func (c *Console) testerTransform(w http.ResponseWriter, r *http.Request) {
	d := &transformData{}
	dest := r.PostFormValue("dest")
	typ, ok := c.deps.Settings.DestType(dest)
	if !ok {
		d.InputError = fmt.Sprintf("No destination named %q.", dest)
		c.renderPartial(w, r, "tester", "result", d)
		return
	}
	live, _ := c.deps.Settings.Settings(dest)
	liveDoc := settingsDoc(live)
	doc := liveDoc
	if text := strings.TrimSpace(r.PostFormValue("settings")); text != "" {
		edited, err := destination.DecodeDocument(typ.Name, []byte(text))
		if err != nil {
			d.SettingsError = err.Error()
		}
		// Secrets left out are the destination's own.
		for _, f := range typ.Fields {
			if v, ok := liveDoc[f.Name]; ok && f.Kind == destination.KindSecret && !hasSetting(edited, f) {
				edited[f.Name] = v
			}
		}
		doc = edited
	}
	var s destination.Settings
	if d.SettingsError == "" {
		raw, _ := jsonOf(doc)
		var err error
		if s, err = typ.Parse(raw); err != nil {
			d.SettingsError = err.Error()
		}
	}
	if d.SettingsError != "" {
		d.SettingsError = redactSecrets(d.SettingsError, typ, doc, liveDoc)
		c.renderPartial(w, r, "tester", "result", d)
		return
	}
	d.SettingsWarnings = s.Warnings()
	res, err := typ.Test([]byte(r.PostFormValue("event")), spec.Options{MaxEventBytes: maxEventBytes}, s)
	if err != nil {
		d.InputError = "Unreadable input: " + err.Error()
		c.renderPartial(w, r, "tester", "result", d)
		return
	}
	d.Output = redactSecrets(string(res.Output), typ, doc, liveDoc)
	for _, o := range res.Events {
		d.Outcomes = append(d.Outcomes, outcomeView(o))
	}
	c.renderPartial(w, r, "tester", "result", d)
}

// hasSetting reports whether doc sets f under its name or an alias.
func hasSetting(doc map[string]any, f destination.Field) bool {
	for k := range doc {
		for _, n := range append([]string{f.Name}, f.Aliases...) {
			if strings.EqualFold(k, n) {
				return true
			}
		}
	}
	return false
}

// testerSend enqueues the events to the destination's real queue, exactly
// as the gateway would after a successful ingest request.
func (c *Console) testerSend(w http.ResponseWriter, r *http.Request) {
	d := &sendData{}
	dest := r.PostFormValue("dest")
	if !c.hasDest(dest) {
		d.Error = fmt.Sprintf("No destination named %q.", dest)
		c.renderPartial(w, r, "tester", "sent", d)
		return
	}
	now := c.cfg.Now().UTC()
	batch, err := spec.Parse([]byte(r.PostFormValue("event")), spec.Options{ReceivedAt: now, MaxEventBytes: maxEventBytes})
	if err != nil {
		d.Error = "Unreadable input: " + err.Error()
		c.renderPartial(w, r, "tester", "sent", d)
		return
	}
	var msgs []queue.Message
	for i := range batch.Items {
		it := &batch.Items[i]
		sv := sentView{Dest: dest, MessageID: it.Event.MessageID}
		if it.Err != nil {
			sv.Rejected = it.Err.Message
			d.Sent = append(d.Sent, sv)
			continue
		}
		payload, err := json.Marshal(&it.Event)
		if err != nil {
			sv.Rejected = "cannot encode the event: " + err.Error()
			d.Sent = append(d.Sent, sv)
			continue
		}
		msgs = append(msgs, queue.Message{Source: testerSource, Dest: dest, Key: it.Event.Key(),
			MessageID: it.Event.MessageID, Payload: payload, ReceivedAt: now})
		sv.Waiting, sv.Delay = true, "300ms"
		d.Sent = append(d.Sent, sv)
	}
	for i := range d.Sent {
		d.Sent[i].Prefix = c.cfg.Prefix
	}
	if len(msgs) > 0 {
		if err := c.deps.Queue.Enqueue(r.Context(), msgs); err != nil {
			d.Error = "Could not enqueue: " + err.Error()
			d.Sent = nil
		}
	}
	c.renderPartial(w, r, "tester", "sent", d)
}

// testerStatus is one poll of a sent event's delivery log entry.
func (c *Console) testerStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sv := &sentView{Dest: q.Get("dest"), MessageID: q.Get("id")}
	e, err := c.deps.Log.LookupLog(r.Context(), sv.MessageID, sv.Dest)
	switch {
	case errors.Is(err, store.ErrNotFound):
		sv.Waiting, sv.Delay = true, "700ms"
	case err != nil:
		sv.Rejected = "Could not read the delivery log: " + err.Error()
	default:
		sv.Entry = &e
		if !e.Status.Terminal() {
			sv.Waiting, sv.Delay = true, "2s"
		}
	}
	c.renderPartial(w, r, "tester", "status", sv)
}

// sampleTemplates are the tester's sample events, written out so they
// read like a real call (type first). {id}, {ts} and {list} are filled in.
func sampleTemplates() []struct{ id, label, json string } {
	return []struct{ id, label, json string }{
		{"identify", "identify", `{
  "type": "identify",
  "messageId": "console-identify-{id}",
  "userId": "user-42",
  "traits": {
    "email": "jane@example.com",
    "firstName": "Jane",
    "lastName": "Doe",
    "phone": "+14155550123",
    "address": {"city": "San Francisco", "country": "US"},
    "plan": "pro"
  },
  "timestamp": "{ts}"
}`},
		{"track", "track: Signed Up", `{
  "type": "track",
  "messageId": "console-track-{id}",
  "userId": "user-42",
  "event": "Signed Up",
  "properties": {"plan": "pro", "source": "landing"},
  "context": {"traits": {"email": "jane@example.com"}},
  "timestamp": "{ts}"
}`},
		{"order", "track: Order Completed", `{
  "type": "track",
  "messageId": "console-order-{id}",
  "userId": "user-42",
  "event": "Order Completed",
  "properties": {
    "order_id": "order-{id}",
    "revenue": 25,
    "currency": "USD",
    "products": [
      {"product_id": "p-1", "sku": "MUG-1", "name": "Mug", "price": 12.5, "quantity": 2}
    ]
  },
  "context": {"traits": {"email": "jane@example.com"}},
  "timestamp": "{ts}"
}`},
		{"group", "group", `{
  "type": "group",
  "messageId": "console-group-{id}",
  "userId": "user-42",
  "groupId": "{list}",
  "traits": {"name": "Newsletter"},
  "context": {"traits": {"email": "jane@example.com"}},
  "timestamp": "{ts}"
}`},
		{"page", "page", `{
  "type": "page",
  "messageId": "console-page-{id}",
  "userId": "user-42",
  "name": "Home",
  "properties": {"url": "https://shop.example.com/", "path": "/"},
  "context": {"traits": {"email": "jane@example.com"}},
  "timestamp": "{ts}"
}`},
	}
}

// samples are the events offered in the tester, with fresh messageIds so
// sending one twice shows two deliveries. The group sample uses the
// destination's list (a group's groupId is the Klaviyo list).
func samples(now time.Time, listID string) []sampleEvent {
	if listID == "" {
		listID = "YourListId"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	listJSON, _ := json.Marshal(listID)
	r := strings.NewReplacer("{id}", hex.EncodeToString(b[:]), "{ts}", now.UTC().Format("2006-01-02T15:04:05.000Z"),
		`"{list}"`, string(listJSON))
	out := make([]sampleEvent, 0, 5)
	for _, t := range sampleTemplates() {
		out = append(out, sampleEvent{ID: t.id, Label: t.label, JSON: r.Replace(t.json)})
	}
	return out
}
