package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/presink"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/usertransform"
)

// Type is the Webhook destination type for the registry.
func Type() *destination.Type {
	return &destination.Type{
		Name:   "webhook",
		Title:  "Webhook",
		Fields: Fields(),
		Parse:  func(raw []byte) (destination.Settings, error) { return ParseSettings(raw) },
		Open:   open,
		Test:   test,
	}
}

type instance struct {
	*Sink
}

func open(env destination.Env) (destination.Instance, error) {
	if _, ok := env.Settings().(Settings); !ok {
		return nil, fmt.Errorf("webhook destination %s: settings of type %T", env.Name, env.Settings())
	}
	settings := func() Settings { s, _ := env.Settings().(Settings); return s }
	// Timeouts are per request (Settings.Timeout); redirects are not
	// followed, a moved endpoint is a settings change.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &instance{NewSink(settings, client, env.Log, env.Metrics)}, nil
}

// Ping sends a HEAD to the URL: harmless, and any HTTP answer proves the
// receiver is reachable (many answer HEAD with 405).
func (in *instance) Ping(ctx context.Context, ds destination.Settings) (bool, string) {
	s, _ := ds.(Settings)
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.URL, nil)
	if err != nil {
		return false, "The URL cannot be requested: " + err.Error()
	}
	for k, v := range s.Headers {
		req.Header.Set(k, v)
	}
	if s.Authorization != "" {
		req.Header.Set("Authorization", s.Authorization)
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return false, "The receiver could not be reached: " + describeErr(err, s) + "."
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return false, fmt.Sprintf("The receiver answered HEAD with %d.", resp.StatusCode)
	}
	return true, fmt.Sprintf("Connected: the receiver answered HEAD with %d.", resp.StatusCode)
}

// testRequest is one request the event tester shows.
type testRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

type testOutcome struct {
	MessageID string        `json:"messageId"`
	Requests  []testRequest `json:"requests,omitzero"`
	Skipped   string        `json:"skipped,omitempty"`
	Error     *testError    `json:"error,omitempty"`
}

type testError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// test shows the request each event becomes, one per event (in batch mode
// the events of a delivery batch share one body, {"batch": [...]}).
func test(input []byte, opts spec.Options, ds destination.Settings) (destination.TestResult, error) {
	s, _ := ds.(Settings)
	batch, err := spec.Parse(input, opts)
	if err != nil {
		return destination.TestResult{}, err
	}
	now := time.Now()
	var (
		outs        []testOutcome
		res         destination.TestResult
		transformed []spec.Event
	)
	stage := testStage(s)
	for i := range batch.Items {
		it := &batch.Items[i]
		o := testOutcome{MessageID: it.Event.MessageID}
		tv := destination.TestOutcome{MessageID: it.Event.MessageID}
		if it.Err != nil {
			o.Error = &testError{it.Err.Code, it.Err.Message}
			tv.Error = it.Err.Code + ": " + it.Err.Message
		} else {
			if it.Event.ReceivedAt.IsZero() {
				it.Event.ReceivedAt = now
			}
			events, err := stage(&o, &tv, &it.Event)
			if err != nil {
				return res, err
			}
			transformed = append(transformed, events...)
			for k := range events {
				if err := testRequest1(&o, &tv, s, &events[k]); err != nil {
					return res, err
				}
			}
		}
		outs = append(outs, o)
		res.Events = append(res.Events, tv)
	}
	if presink.Applies(s.PreSink()) {
		res.Transformed, _ = json.MarshalIndent(transformed, "", "  ")
	}
	res.Output, err = json.MarshalIndent(outs, "", "  ")
	return res, err
}

// testStage runs the settings' transformation, filter and privacy policy
// on one event as delivery will (internal/presink), noting on the outcome
// what they did; it returns the events that would be sent.
func testStage(s Settings) func(o *testOutcome, tv *destination.TestOutcome, ev *spec.Event) ([]spec.Event, error) {
	if !presink.Applies(s.PreSink()) {
		return func(_ *testOutcome, _ *destination.TestOutcome, ev *spec.Event) ([]spec.Event, error) {
			return []spec.Event{*ev}, nil
		}
	}
	st := presink.New("tester", "webhook", usertransform.Limits{VMs: 1})
	return func(o *testOutcome, tv *destination.TestOutcome, ev *spec.Event) ([]spec.Event, error) {
		pr, err := st.Run(context.Background(), s.PreSink(), "console-tester", ev)
		tv.Dropped, tv.Logs, tv.PrivacyMode = pr.Dropped, pr.Logs, pr.Mode
		switch {
		case err != nil:
			o.Error = &testError{Code: presink.CodeOf(err), Message: err.Error()}
			tv.Error = o.Error.Code + ": " + o.Error.Message
			return nil, nil
		case pr.Skipped != "":
			o.Skipped, tv.Skipped = pr.Skipped, pr.Skipped
		}
		return pr.Events, nil
	}
}

// testRequest1 adds the request one event becomes to the outcome.
func testRequest1(o *testOutcome, tv *destination.TestOutcome, s Settings, ev *spec.Event) error {
	sink := &Sink{now: time.Now}
	job := []destination.Job{{Event: ev}}
	job[0].MessageID = ev.MessageID
	body, err := sink.body(s, job, []int{0})
	if err != nil {
		return err
	}
	req, err := Request(context.Background(), s, body, ev.MessageID)
	if err != nil {
		return err
	}
	headers := map[string]string{}
	for k := range req.Header {
		headers[k] = req.Header.Get(k)
	}
	if s.Authorization != "" {
		headers["Authorization"] = "[secret]"
	}
	o.Requests = append(o.Requests, testRequest{Method: req.Method, URL: s.URL, Headers: headers, Body: body})
	tv.Requests = append(tv.Requests, req.Method+" "+req.URL.Path)
	if s.Mode == ModeBatch && len(tv.Warnings) == 0 {
		tv.Warnings = []string{"batch mode: delivery puts up to maxBatchSize events in one body"}
	}
	return nil
}
