package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/identity"
	"github.com/relaycdp/relay/internal/store"
)

// finish settles every job of the batch in the queue, the dead-letter store
// and the delivery log. Dead letters are written before the queue forgets
// the job, so a crash in between re-delivers (and re-dead-letters, which
// the store makes idempotent) rather than losing it.
func (b *batch) finish(ctx context.Context) error {
	now := b.w.now()
	var (
		done    []int64
		dead    []int64
		dls     []store.DeadLetter
		entries []store.LogEntry
		audit   []store.AuditEntry
		retries = map[time.Time][]int64{}
		reasons = map[time.Time]string{}
	)
	for i := range b.items {
		it := &b.items[i]
		r := it.res
		if r == nil {
			r = &destination.Result{Outcome: destination.Retry, Code: "no_result", Detail: "not delivered"}
		}
		if r.Outcome == destination.Held {
			continue
		}
		e := b.logEntry(it, now)
		switch {
		case r.Outcome == destination.Dead:
			dead = append(dead, it.job.ID)
			dls = append(dls, b.deadLetter(it, r))
			e.Status, e.Detail = store.StatusDead, describe(r)
		case r.Outcome == destination.Retry && now.Sub(it.job.ReceivedAt) > b.w.cfg.MaxRetryAge:
			f := *r
			f.Detail = fmt.Sprintf("gave up after %d attempts over %s: %s", it.job.Attempts+1, b.w.cfg.MaxRetryAge, f.Detail)
			dead = append(dead, it.job.ID)
			dls = append(dls, b.deadLetter(it, &f))
			e.Status, e.Detail = store.StatusDead, describe(&f)
		case r.Outcome == destination.Retry:
			wait := max(b.w.backoff(it.job.Attempts+1), r.RetryAfter)
			// Rounded up to the millisecond the queue keeps, so a retry
			// never comes before a Retry-After.
			at := now.Add(wait + time.Millisecond - 1).Truncate(time.Millisecond)
			retries[at] = append(retries[at], it.job.ID)
			reasons[at] = describe(r)
			e.Status, e.Detail = store.StatusRetrying, describe(r)
		case r.Outcome == destination.Skipped:
			done = append(done, it.job.ID)
			e.Status, e.Detail = store.StatusSkipped, r.Detail
		default:
			done = append(done, it.job.ID)
			e.Status, e.Detail = store.StatusDelivered, r.Detail+policyNote(it.policy)
			if it.policy != nil && it.policy.Audit {
				audit = append(audit, b.auditEntry(it, e))
			}
		}
		entries = append(entries, e)
		b.w.metrics.outcome(b.w.cfg.Dest, e.Status, now.Sub(it.job.ReceivedAt))
	}
	var errs []error
	if len(dls) > 0 {
		if err := b.w.log.AddDeadLetters(ctx, dls); err != nil {
			// Without the dead letter the job must stay in the queue: leave
			// it claimed; its lease expires and it is tried again.
			errs = append(errs, fmt.Errorf("store dead letters: %w", err))
			dead = nil
		}
	}
	if err := b.settleQueue(ctx, done, dead, retries, reasons); err != nil {
		errs = append(errs, err)
	}
	if err := b.w.log.Record(ctx, entries); err != nil {
		errs = append(errs, fmt.Errorf("record delivery log: %w", err))
	}
	if len(audit) > 0 && b.w.cfg.Audit != nil {
		if err := b.w.cfg.Audit(ctx, audit); err != nil {
			errs = append(errs, fmt.Errorf("record audit log: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (b *batch) settleQueue(ctx context.Context, done, dead []int64, retries map[time.Time][]int64, reasons map[time.Time]string) error {
	var errs []error
	if len(done) > 0 {
		if err := b.w.q.Succeed(ctx, done); err != nil {
			errs = append(errs, fmt.Errorf("mark delivered: %w", err))
		}
	}
	if len(dead) > 0 {
		if err := b.w.q.Abort(ctx, dead, "dead-lettered"); err != nil {
			errs = append(errs, fmt.Errorf("mark dead-lettered: %w", err))
		}
	}
	for at, ids := range retries {
		if err := b.w.q.Retry(ctx, ids, at, reasons[at]); err != nil {
			errs = append(errs, fmt.Errorf("schedule retry: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (b *batch) logEntry(it *item, now time.Time) store.LogEntry {
	e := store.LogEntry{
		MessageID: it.job.MessageID,
		Source:    it.job.Source,
		Dest:      b.w.cfg.Dest,
		Type:      it.ev.Type,
		UserID:    it.ev.UserID,
		Attempts:  it.job.Attempts + 1,
		Time:      now,
	}
	if e.MessageID == "" {
		e.MessageID = it.ev.MessageID
	}
	switch it.ev.Type {
	case "track":
		e.Event = it.ev.Event
	case "page", "screen":
		e.Event = it.ev.Name
	}
	if email, ok := it.ev.UserTraits()["email"].(string); ok {
		e.Email = strings.ToLower(email)
	} else if strings.Contains(it.ev.UserID, "@") {
		e.Email = strings.ToLower(it.ev.UserID)
	}
	// The phone, normalised as user deletion looks it up, so a user known
	// only by phone can be removed from the log.
	if phones := identity.Of(&it.ev).Phones; len(phones) > 0 {
		region := ""
		if b.w.cfg.PhoneRegion != nil {
			region = b.w.cfg.PhoneRegion()
		}
		e.Phone = identity.Phone(phones[0], region)
	}
	return e
}

func (b *batch) deadLetter(it *item, r *destination.Result) store.DeadLetter {
	return store.DeadLetter{
		MessageID: it.job.MessageID,
		Source:    it.job.Source,
		Dest:      b.w.cfg.Dest,
		Payload:   it.job.Payload,
		Error:     describe(r),
		Status:    r.Status,
		Code:      r.Code,
		Pointer:   r.Pointer,
		Attempts:  it.job.Attempts + 1,
	}
}
