package kdest

import (
	"context"
	"encoding/json"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/presink"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/usertransform"
)

// testerSource is the source name the tester's pre-sink stage sees.
const testerSource = "console-tester"

// test is the event tester's mapping: `relay transform`'s code path with
// the pre-sink stage (transformation, filter, privacy policy) between
// parsing and mapping, as delivery runs them, so the tester shows what a
// policy drops before it is turned on.
func test(input []byte, opts spec.Options, ds destination.Settings) (destination.TestResult, error) {
	s, _ := ds.(klaviyo.Settings)
	batch, err := spec.Parse(input, opts)
	if err != nil {
		return destination.TestResult{}, err
	}
	stage := presink.New("tester", "klaviyo", usertransform.Limits{VMs: 1})
	var (
		outs        []klaviyo.Outcome
		res         destination.TestResult
		transformed []spec.Event
	)
	for i := range batch.Items {
		it := &batch.Items[i]
		if it.Err != nil {
			o := klaviyo.TransformEvent(it, s)
			outs, res.Events = append(outs, o), append(res.Events, view(o))
			continue
		}
		pr, err := stage.Run(context.Background(), s.PreSink(), testerSource, &it.Event)
		var staged []klaviyo.Outcome
		switch {
		case err != nil:
			staged = []klaviyo.Outcome{{MessageID: it.Event.MessageID, Error: &klaviyo.OutcomeError{Code: presink.CodeOf(err), Message: err.Error()}}}
		case pr.Skipped != "":
			staged = []klaviyo.Outcome{{MessageID: it.Event.MessageID, Requests: []klaviyo.Request{}, Skipped: pr.Skipped}}
		default:
			transformed = append(transformed, pr.Events...)
			for _, ev := range pr.Events {
				staged = append(staged, klaviyo.TransformEvent(&spec.Item{Event: ev}, s))
			}
		}
		for j, o := range staged {
			v := view(o)
			if j == 0 {
				v.Dropped, v.Logs, v.PrivacyMode = pr.Dropped, pr.Logs, pr.Mode
			}
			outs, res.Events = append(outs, o), append(res.Events, v)
		}
	}
	if res.Output, err = klaviyo.MarshalOutcomes(outs); err != nil {
		return destination.TestResult{}, err
	}
	if transformed != nil {
		res.Transformed, _ = json.MarshalIndent(transformed, "", "  ")
	}
	return res, nil
}

// view is the console's line for one outcome.
func view(o klaviyo.Outcome) destination.TestOutcome {
	v := destination.TestOutcome{MessageID: o.MessageID, Skipped: o.Skipped, Warnings: o.Warnings}
	for _, rq := range o.Requests {
		v.Requests = append(v.Requests, rq.Method+" "+rq.Path)
	}
	if o.Error != nil {
		v.Error = o.Error.Code + ": " + o.Error.Message
	}
	return v
}
