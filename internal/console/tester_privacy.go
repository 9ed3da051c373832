package console

import (
	"context"
	"errors"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/presink"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/usertransform"
)

// stagedOutcome is one input event's way through the destination's
// pre-sink stage (transformation, filter, privacy policy) and the
// mapping, as delivery runs them: the tester shows what a policy drops
// before it is turned on.
type stagedOutcome struct {
	outcomes []klaviyo.Outcome // one per event the stage passed on
	events   []spec.Event      // the events the stage passed on
	dropped  []string          // keys the policy dropped (names only)
	logs     []string          // the transformation's console.log lines
	mode     string
}

// transformStaged is klaviyo.Transform with the pre-sink stage between
// parsing and mapping.
func transformStaged(ctx context.Context, body []byte, opts spec.Options, dest string, s klaviyo.Settings) ([]stagedOutcome, error) {
	batch, err := spec.Parse(body, opts)
	if err != nil {
		return nil, err
	}
	stage := presink.New(dest, usertransform.Limits{VMs: 1})
	out := make([]stagedOutcome, len(batch.Items))
	for i := range batch.Items {
		it := &batch.Items[i]
		if it.Err != nil {
			out[i].outcomes = []klaviyo.Outcome{klaviyo.TransformEvent(it, s)}
			continue
		}
		res, err := stage.Run(ctx, s, testerSource, &it.Event)
		out[i].dropped, out[i].logs, out[i].mode = res.Dropped, res.Logs, res.Mode
		switch {
		case err != nil:
			code := "transformation_error"
			var pe *presink.Error
			if errors.As(err, &pe) {
				code = pe.Code
			}
			out[i].outcomes = []klaviyo.Outcome{{MessageID: it.Event.MessageID, Error: &klaviyo.OutcomeError{Code: code, Message: err.Error()}}}
		case res.Skipped != "":
			out[i].outcomes = []klaviyo.Outcome{{MessageID: it.Event.MessageID, Requests: []klaviyo.Request{}, Skipped: res.Skipped}}
		default:
			out[i].events = res.Events
			for _, ev := range res.Events {
				out[i].outcomes = append(out[i].outcomes, klaviyo.TransformEvent(&spec.Item{Event: ev}, s))
			}
		}
	}
	return out, nil
}

// flatten lists the outcomes for `relay transform`-shaped output and the
// views, each view carrying its input event's policy report.
func flatten(staged []stagedOutcome) ([]klaviyo.Outcome, []outcomeView) {
	var outs []klaviyo.Outcome
	var views []outcomeView
	for _, st := range staged {
		for j, o := range st.outcomes {
			outs = append(outs, o)
			ov := outcomeView{MessageID: o.MessageID, Skipped: o.Skipped, Warnings: o.Warnings}
			if j == 0 {
				ov.Dropped, ov.Logs, ov.PrivacyMode = st.dropped, st.logs, st.mode
			}
			for _, rq := range o.Requests {
				ov.Requests = append(ov.Requests, rq.Method+" "+rq.Path)
			}
			if o.Error != nil {
				ov.Error = o.Error.Code + ": " + o.Error.Message
			}
			views = append(views, ov)
		}
	}
	return outs, views
}
