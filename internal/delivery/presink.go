package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

// PreSinkResult is what Config.PreSink made of one event: the events to
// map (none: skipped, with the reason), and the keys its privacy policy
// let through and dropped (names only, never values).
type PreSinkResult struct {
	Events        []spec.Event
	Skipped       string
	Sent, Dropped []string
	// Audit: record the delivered event in the audit log (Config.Audit).
	Audit bool
}

// preSink runs Config.PreSink on the item: the job then carries the
// events to deliver, or the item is settled (dropped, or dead on error).
func (b *batch) preSink(ctx context.Context, it *item, job *destination.Job) {
	res, err := b.w.cfg.PreSink(ctx, it.job.Source, &it.ev)
	if err != nil {
		r := &destination.Result{Outcome: destination.Dead, Code: "transformation_error", Detail: err.Error()}
		var ce interface{ ErrorCode() string }
		if errors.As(err, &ce) {
			r.Code = ce.ErrorCode()
		}
		it.res = r
		return
	}
	it.policy = &res
	if res.Skipped != "" {
		it.res = &destination.Result{Outcome: destination.Skipped, Detail: res.Skipped}
		return
	}
	job.Events = res.Events
}

// policyNote is the delivery log's account of what the policy dropped.
func policyNote(p *PreSinkResult) string {
	if p == nil || len(p.Dropped) == 0 {
		return ""
	}
	const show = 20
	keys := p.Dropped
	more := ""
	if len(keys) > show {
		keys, more = keys[:show], fmt.Sprintf(" and %d more", len(keys)-show)
	}
	return fmt.Sprintf("; privacy policy dropped %d key(s): %s%s", len(p.Dropped), strings.Join(keys, ", "), more)
}

// auditEntry is the audit log's row of a delivered item.
func (b *batch) auditEntry(it *item, e store.LogEntry) store.AuditEntry {
	return store.AuditEntry{
		MessageID: e.MessageID,
		Dest:      e.Dest,
		Source:    e.Source,
		UserID:    e.UserID,
		Email:     e.Email,
		Time:      e.Time,
		Sent:      it.policy.Sent,
		Dropped:   it.policy.Dropped,
	}
}
