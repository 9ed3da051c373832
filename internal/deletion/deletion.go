// Package deletion owns forgetting a user: it takes durable deletion
// requests, drops the user's undelivered events from the queue, removes
// them from the delivery log and dead letters, and asks each Klaviyo
// destination to delete the profile (data-privacy deletion jobs), retrying
// like delivery does and resuming unfinished requests after a restart.
package deletion

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/relaycdp/relay/internal/klaviyo/kapi"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/store"
)

// Store is what the worker needs of the store.
type Store interface {
	store.DeletionStore
	store.SuppressionStore
}

// Queue is what the worker needs of the queue.
type Queue interface {
	Drop(ctx context.Context, dest string, match func(queue.Message) bool) (queue.Dropped, error)
}

// Klaviyo is the destination's client (*kapi.Client).
type Klaviyo interface {
	RequestProfileDeletion(ctx context.Context, apiKey string, t kapi.DeletionTarget) error
	LookupProfiles(ctx context.Context, apiKey, field, value string) ([]string, error)
}

// Destination is one configured destination.
type Destination struct {
	Name   string
	Client Klaviyo
	// Account returns the live private API key and the region used to
	// read national phone numbers (defaultPhoneCountry; may be empty).
	Account func() (apiKey, phoneRegion string)
}

// Config tunes a Worker. Zero values mean the defaults.
type Config struct {
	Destinations []Destination
	Poll         time.Duration // how often due requests are looked for (default 5 s)
	MaxAttempts  int           // attempts before a request fails for good (default 12)
	BackoffBase  time.Duration // first retry delay (default 5 s), doubling
	BackoffMax   time.Duration // longest retry delay (default 10 min)
	InFlightWait time.Duration // wait for events being delivered (default 2 s)
	CallTimeout  time.Duration // one Klaviyo call, waits for rate limits included (default 2 min)
	// Lease is how long a claimed request belongs to this worker before
	// another node (or this one, restarted) takes it as abandoned
	// (default 30 s); a heartbeat renews it every third of that while the
	// request is worked.
	Lease time.Duration
	// Suppressions is the suppression list the API adds to and lifts
	// (nil: suppression requests fail with ErrNoSuppressions).
	Suppressions *Suppressions
	// SuppressionRefresh is how often Run re-reads the suppression list
	// when the store's changed (default 2 s): how long another node's
	// suppression takes to apply here.
	SuppressionRefresh time.Duration
	Now                func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Poll, 5*time.Second)
	def(&c.BackoffBase, 5*time.Second)
	def(&c.BackoffMax, 10*time.Minute)
	def(&c.InFlightWait, 2*time.Second)
	def(&c.CallTimeout, 2*time.Minute)
	def(&c.Lease, 30*time.Second)
	def(&c.SuppressionRefresh, 2*time.Second)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 12
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Worker processes deletion requests. Run it once per process; several
// processes sharing a store may each run one: a request is claimed with a
// lease (store.ClaimDeletions), so one node works it at a time, and every
// step is idempotent should a lease run out mid-step.
type Worker struct {
	cfg   Config
	store Store
	queue Queue
	log   *slog.Logger
	wake  chan struct{}
}

// New builds a Worker.
func New(cfg Config, s Store, q Queue, log *slog.Logger) *Worker {
	return &Worker{cfg: cfg.withDefaults(), store: s, queue: q, log: log.With(slog.String("component", "deletion")), wake: make(chan struct{}, 1)}
}

// ErrUnknownDestination: a request names a destination that is not
// configured.
var ErrUnknownDestination = errors.New("unknown destination")

// Submit validates and stores requests (one transaction) and wakes the
// worker. It returns once they are committed, with their IDs set.
func (w *Worker) Submit(ctx context.Context, ds []store.Deletion) error {
	for i := range ds {
		for _, name := range ds[i].Dests {
			if !w.hasDest(name) {
				return fmt.Errorf("destination %q: %w", name, ErrUnknownDestination)
			}
		}
		if err := w.checkPhone(i, ds[i]); err != nil {
			return err
		}
	}
	if err := w.store.CreateDeletions(ctx, ds); err != nil {
		return err
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// SubjectError is a request's identifier that cannot be used: Index is
// the request's position in the Submit call.
type SubjectError struct {
	Index  int
	Field  string
	Reason string
}

func (e *SubjectError) Error() string { return e.Field + ": " + e.Reason }

// checkPhone refuses, when it is asked, a phone number that a destination
// asked to delete it could not read: the request would only fail in the
// worker, after it was accepted.
func (w *Worker) checkPhone(i int, d store.Deletion) error {
	if d.Subject.Phone == "" || d.LocalOnly {
		return nil
	}
	for _, dest := range w.cfg.Destinations {
		if dest.Account == nil || (len(d.Dests) > 0 && !slices.Contains(d.Dests, dest.Name)) {
			continue
		}
		_, region := dest.Account()
		if _, ok := e164(d.Subject.Phone, region); !ok {
			return &SubjectError{Index: i, Field: "phone", Reason: fmt.Sprintf("%q is not a valid phone number for destination %s (E.164, or national in its defaultPhoneCountry %q)",
				d.Subject.Phone, dest.Name, region)}
		}
	}
	return nil
}

func (w *Worker) hasDest(name string) bool {
	for _, d := range w.cfg.Destinations {
		if d.Name == name {
			return true
		}
	}
	return false
}

// Run works on due requests until ctx ends. Requests left running by a
// crash are due at once, so a restart resumes them.
func (w *Worker) Run(ctx context.Context) error {
	if sp := w.cfg.Suppressions; sp != nil {
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { _ = sp.Run(ctx, w.cfg.SuppressionRefresh) })
	}
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		w.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-w.wake:
		}
	}
}

// RunOnce works on every request due now, oldest first, claiming one at
// a time so a lease never runs while the request waits behind others.
func (w *Worker) RunOnce(ctx context.Context) {
	for ctx.Err() == nil {
		due, err := w.store.ClaimDeletions(ctx, w.cfg.Now(), w.cfg.Lease, 1)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("claim due deletions", slog.Any("err", err))
			}
			return
		}
		if len(due) == 0 {
			return
		}
		w.process(ctx, due[0])
	}
}

// heartbeat extends request id's lease every third of it until stop is
// called, so a long step (Klaviyo's rate limits) keeps the request.
func (w *Worker) heartbeat(ctx context.Context, id int64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := w.store.ExtendDeletionLease(ctx, id, w.cfg.Now().Add(w.cfg.Lease)); err != nil && ctx.Err() == nil {
				w.log.Warn("extend deletion lease", slog.Int64("id", id), slog.Any("err", err))
			}
		}
	}()
	return func() { cancel(); <-done }
}

// save stores d, renewing the lease of a running request.
func (w *Worker) save(ctx context.Context, d store.Deletion) error {
	if d.State == store.DeletionRunning {
		d.LeaseUntil = w.cfg.Now().Add(w.cfg.Lease)
	}
	return w.store.UpdateDeletion(ctx, d)
}

// outcome of one attempt of one step.
type outcome struct {
	retryAfter time.Duration // > 0: come back then
	permanent  bool          // the request cannot succeed
	waiting    bool          // not a failure: come back after retryAfter without counting an attempt
	err        error
}

// process runs a request's unfinished steps in order and saves its state
// after each one, so a crash repeats at most one step.
func (w *Worker) process(ctx context.Context, d store.Deletion) {
	d.State = store.DeletionRunning
	d.Steps = w.plan(d)
	if err := w.save(ctx, d); err != nil {
		w.log.Error("start deletion", slog.Int64("id", d.ID), slog.Any("err", err))
		return
	}
	stop := w.heartbeat(ctx, d.ID)
	defer stop()
	m := newMatcher(d.Subject, w.regions()...)
	for i := range d.Steps {
		if d.Steps[i].Done {
			continue
		}
		detail, out := w.step(ctx, d, d.Steps[i].Name, m)
		if ctx.Err() != nil {
			return // shutting down: the request stays running and resumes
		}
		if out.err != nil || out.retryAfter > 0 {
			w.setback(ctx, d, out)
			return
		}
		d.Steps[i].Done, d.Steps[i].Detail = true, detail
		if err := w.save(ctx, d); err != nil {
			w.log.Error("save deletion step", slog.Int64("id", d.ID), slog.Any("err", err))
			return
		}
	}
	d.State, d.LastError, d.NextAt = store.DeletionDone, "", time.Time{}
	if err := w.save(ctx, d); err != nil {
		w.log.Error("finish deletion", slog.Int64("id", d.ID), slog.Any("err", err))
		return
	}
	w.log.Info("user deleted", slog.Int64("id", d.ID), slog.String("origin", d.Origin))
}

// Step names: the queue and the store first (Relay forgets before Klaviyo,
// so no queued event re-creates the deleted profile), then one per
// destination asked.
const (
	stepQueue   = "drop queued events"
	stepStore   = "remove from delivery log and dead letters"
	stepKlaviyo = "klaviyo deletion: "
)

// plan keeps the steps already recorded (a resumed request) or lays
// them out.
func (w *Worker) plan(d store.Deletion) []store.DeletionStep {
	if len(d.Steps) > 0 {
		return d.Steps
	}
	steps := []store.DeletionStep{{Name: stepQueue}, {Name: stepStore}}
	if d.LocalOnly {
		return steps
	}
	for _, dest := range w.cfg.Destinations {
		if len(d.Dests) == 0 || slices.Contains(d.Dests, dest.Name) {
			steps = append(steps, store.DeletionStep{Name: stepKlaviyo + dest.Name})
		}
	}
	return steps
}

func (w *Worker) step(ctx context.Context, d store.Deletion, name string, m matcher) (string, outcome) {
	switch {
	case name == stepQueue:
		return w.dropQueued(ctx, m)
	case name == stepStore:
		return w.forget(ctx, d, m)
	case strings.HasPrefix(name, stepKlaviyo):
		for _, dest := range w.cfg.Destinations {
			if dest.Name == strings.TrimPrefix(name, stepKlaviyo) {
				return w.askKlaviyo(ctx, d, dest)
			}
		}
		return "", outcome{permanent: true, err: fmt.Errorf("destination %q is no longer configured", strings.TrimPrefix(name, stepKlaviyo))}
	}
	return "", outcome{permanent: true, err: fmt.Errorf("unknown step %q", name)}
}

// dropQueued drops the user's undelivered events at every destination
// (whichever destinations Klaviyo is asked at, a queued event would send
// the user's data on). Events being delivered right now are waited for.
func (w *Worker) dropQueued(ctx context.Context, m matcher) (string, outcome) {
	total, inFlight := 0, 0
	for _, dest := range w.cfg.Destinations {
		got, err := w.queue.Drop(ctx, dest.Name, func(msg queue.Message) bool { return m.payload(msg.Payload) })
		if err != nil {
			return "", outcome{err: fmt.Errorf("drop queued events of %s: %w", dest.Name, err)}
		}
		total += got.Dropped
		inFlight += got.InFlight
	}
	if inFlight > 0 {
		return "", outcome{waiting: true, retryAfter: w.cfg.InFlightWait, err: fmt.Errorf("%d of the user's events are being delivered; dropped %d, waiting for the rest", inFlight, total)}
	}
	return fmt.Sprintf("%d queued events dropped", total), outcome{}
}

func (w *Worker) forget(ctx context.Context, d store.Deletion, m matcher) (string, outcome) {
	subj := d.Subject
	subj.Phone = m.phone // as delivery logs it (identity.Phone)
	got, err := w.store.ForgetUser(ctx, subj, nil, func(dl store.DeadLetter) bool { return m.payload(dl.Payload) })
	if err != nil {
		return "", outcome{err: err}
	}
	return fmt.Sprintf("%d delivery log rows, %d dead letters removed; %d audit entries kept without the user's identifiers",
		got.LogRows, got.DeadLetters, got.AuditEntries), outcome{}
}

// askKlaviyo creates one deletion job per identifier: email and phone
// directly, a userId through the profiles whose external_id it is
// (Klaviyo's deletion takes no external_id).
func (w *Worker) askKlaviyo(ctx context.Context, d store.Deletion, dest Destination) (string, outcome) {
	key, region := dest.Account()
	if key == "" {
		return "", outcome{permanent: true, err: fmt.Errorf("destination %s has no privateApiKey", dest.Name)}
	}
	var targets []kapi.DeletionTarget
	if d.Subject.Email != "" {
		targets = append(targets, kapi.DeletionTarget{Email: strings.TrimSpace(d.Subject.Email)})
	}
	if d.Subject.Phone != "" {
		e164, ok := e164(d.Subject.Phone, region)
		if !ok {
			return "", outcome{permanent: true, err: fmt.Errorf("phone number is not a valid number (E.164, or national with the destination's defaultPhoneCountry)")}
		}
		targets = append(targets, kapi.DeletionTarget{PhoneNumber: e164})
	}
	byUserID := 0
	if d.Subject.UserID != "" {
		cctx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
		ids, err := dest.Client.LookupProfiles(cctx, key, "external_id", d.Subject.UserID)
		cancel()
		if err != nil {
			return "", klaviyoOutcome(fmt.Errorf("%s: find profiles by userId: %w", dest.Name, err))
		}
		for _, id := range ids {
			targets = append(targets, kapi.DeletionTarget{ProfileID: id})
		}
		byUserID = len(ids)
	}
	for _, t := range targets {
		cctx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
		err := dest.Client.RequestProfileDeletion(cctx, key, t)
		cancel()
		if err != nil {
			return "", klaviyoOutcome(fmt.Errorf("%s: %w", dest.Name, err))
		}
	}
	return fmt.Sprintf("%d deletion jobs created (%d profiles found by userId)", len(targets), byUserID), outcome{}
}

// klaviyoOutcome classifies a Klaviyo failure as delivery does: 429 waits
// Retry-After, 5xx and network errors retry with backoff, other 4xx fail.
func klaviyoOutcome(err error) outcome {
	var kerr *kapi.Error
	retryAfter := time.Duration(0)
	if errors.As(err, &kerr) {
		retryAfter = kerr.RetryAfter
	}
	switch kapi.ClassOf(err) {
	case kapi.Throttled:
		return outcome{retryAfter: max(retryAfter, time.Second), err: err}
	case kapi.Retryable:
		return outcome{retryAfter: retryAfter, err: err}
	}
	return outcome{permanent: true, err: err}
}

func e164(p, region string) (string, bool) {
	num, err := phonenumbers.Parse(strings.TrimSpace(p), strings.ToUpper(region))
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", false
	}
	return phonenumbers.Format(num, phonenumbers.E164), true
}

// setback records a failed attempt: pending again after a backoff (or the
// server's Retry-After), or failed for good.
func (w *Worker) setback(ctx context.Context, d store.Deletion, out outcome) {
	if !out.waiting {
		d.Attempts++
	}
	if out.err != nil {
		d.LastError = out.err.Error()
	}
	switch {
	case out.waiting:
		d.State, d.NextAt = store.DeletionPending, w.cfg.Now().Add(out.retryAfter)
	case out.permanent || d.Attempts >= w.cfg.MaxAttempts:
		d.State, d.NextAt = store.DeletionFailed, time.Time{}
		w.log.Error("user deletion failed", slog.Int64("id", d.ID), slog.Int("attempts", d.Attempts), slog.Any("err", out.err))
	default:
		d.State, d.NextAt = store.DeletionPending, w.cfg.Now().Add(max(out.retryAfter, w.backoff(d.Attempts)))
		w.log.Warn("user deletion will retry", slog.Int64("id", d.ID), slog.Int("attempts", d.Attempts),
			slog.Time("next", d.NextAt), slog.Any("err", out.err))
	}
	if err := w.save(ctx, d); err != nil {
		w.log.Error("save deletion attempt", slog.Int64("id", d.ID), slog.Any("err", err))
	}
}

// backoff is full jitter over an exponential ceiling, as delivery's.
func (w *Worker) backoff(attempt int) time.Duration {
	ceil := w.cfg.BackoffBase << min(attempt-1, 20)
	if ceil <= 0 || ceil > w.cfg.BackoffMax {
		ceil = w.cfg.BackoffMax
	}
	return ceil/2 + rand.N(ceil/2+1)
}
