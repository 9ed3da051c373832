package console

import (
	"context"
	"net/http"

	"github.com/relaycdp/relay/internal/store"
)

// Deletions is the view of user deletion requests (optional in Deps: a
// console without it says the page is not available).
type Deletions interface {
	ListDeletions(ctx context.Context, q store.DeletionQuery) ([]store.Deletion, error)
}

// Suppressions lists the suppression list; the console shows it when its
// Deletions also implement it (the store does).
type Suppressions interface {
	ListSuppressions(ctx context.Context, q store.SuppressionQuery) ([]store.Suppression, error)
}

type deletionsData struct {
	pageData
	State        string
	Deletions    []store.Deletion
	Counts       map[store.DeletionState]int
	HasSupp      bool
	Suppressions []store.Suppression
	SuppError    string
}

// deletionsPage lists user deletion requests with their progress, newest
// first. Finished requests show fingerprints, never the identifiers.
func (c *Console) deletionsPage(w http.ResponseWriter, r *http.Request) {
	d := &deletionsData{pageData: pageData{Title: "User deletions", Nav: "deletions"}, State: r.URL.Query().Get("state")}
	if c.deps.Deletions == nil {
		d.Error = "User deletion is not available in this build of the console."
		c.render(w, r, http.StatusOK, "deletions", d)
		return
	}
	q := store.DeletionQuery{State: store.DeletionState(d.State), Limit: 200}
	if q.State != "" && !q.State.Valid() {
		d.Error = "Unknown state " + d.State + ": pick pending, running, done or failed."
		q.State = ""
	}
	var err error
	if d.Deletions, err = c.deps.Deletions.ListDeletions(r.Context(), q); err != nil {
		d.Error = "Could not list deletions: " + err.Error()
	}
	d.Counts = map[store.DeletionState]int{}
	for _, x := range d.Deletions {
		d.Counts[x.State]++
	}
	if sl, ok := c.deps.Deletions.(Suppressions); ok {
		d.HasSupp = true
		if d.Suppressions, err = sl.ListSuppressions(r.Context(), store.SuppressionQuery{Newest: true, Limit: 200}); err != nil {
			d.SuppError = "Could not list suppressions: " + err.Error()
		}
	}
	c.render(w, r, http.StatusOK, "deletions", d)
}
