package deletion

import (
	"context"
	"errors"
	"fmt"

	"github.com/relaycdp/relay/internal/store"
)

// ErrNoSuppressions: the worker was built without a suppression list.
var ErrNoSuppressions = errors.New("suppression is not available in this process")

// regions are the destinations' defaultPhoneCountry values, which read
// national phone numbers.
func (w *Worker) regions() []string {
	var out []string
	for _, dest := range w.cfg.Destinations {
		if dest.Account == nil {
			continue
		}
		if _, r := dest.Account(); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// SubmitSuppressed is Submit for SUPPRESS_WITH_DELETE: each request is
// stored with the suppression of its user, in one transaction, so the
// user's future events are dropped from the moment it is answered.
func (w *Worker) SubmitSuppressed(ctx context.Context, ds []store.Deletion) error {
	sp := w.cfg.Suppressions
	if sp == nil {
		return ErrNoSuppressions
	}
	regions := w.regions()
	for i := range ds {
		s := sp.Suppression(ds[i].Subject, ds[i].Origin, regions...)
		ds[i].Suppress = &s
	}
	if err := w.Submit(ctx, ds); err != nil {
		return err
	}
	return w.reloadSuppressions(ctx)
}

// Suppress stores suppressions alone (SUPPRESS_ONLY, suppress): nothing
// is deleted, the users' events from now on are dropped. It returns the
// suppressions with their regulation ids.
func (w *Worker) Suppress(ctx context.Context, subjects []store.DeletionSubject, origin string) ([]store.Suppression, error) {
	sp := w.cfg.Suppressions
	if sp == nil {
		return nil, ErrNoSuppressions
	}
	regions := w.regions()
	ss := make([]store.Suppression, len(subjects))
	for i, s := range subjects {
		ss[i] = sp.Suppression(s, origin, regions...)
	}
	if err := w.store.AddSuppressions(ctx, ss); err != nil {
		return nil, err
	}
	return ss, w.reloadSuppressions(ctx)
}

// Unsuppress lifts the suppressions of a regulation id (sup_3, or the
// del_7 of a SUPPRESS_WITH_DELETE) and those of any of subjects'
// identifiers; it returns how many it lifted.
func (w *Worker) Unsuppress(ctx context.Context, regulation string, subjects []store.DeletionSubject) (int64, error) {
	sp := w.cfg.Suppressions
	if sp == nil {
		return 0, ErrNoSuppressions
	}
	regions := w.regions()
	var hashes []string
	for _, s := range subjects {
		u, e, p := sp.Hashes(s, regions...)
		hashes = append(hashes, u, e, p)
	}
	n, err := w.store.RemoveSuppressions(ctx, regulation, hashes)
	if err != nil {
		return 0, err
	}
	return n, w.reloadSuppressions(ctx)
}

// reloadSuppressions applies a change to this node's list at once (other
// nodes see it at their next refresh). The change is committed: a failed
// reload is reported but does not undo it.
func (w *Worker) reloadSuppressions(ctx context.Context) error {
	if err := w.cfg.Suppressions.Reload(ctx); err != nil {
		return fmt.Errorf("%w: %w", errReloaded, err)
	}
	return nil
}

// errReloaded marks an error after the change was committed.
var errReloaded = errors.New("stored, but this node's suppression list was not refreshed yet (it retries on its own)")
