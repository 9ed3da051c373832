package console

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/relaycdp/relay/internal/delivery"
	"github.com/relaycdp/relay/internal/store"
)

const (
	deadPageSize = 50
	// replayChunk is how many dead letters one TakeForReplay transaction
	// re-enqueues when replaying all.
	replayChunk = 1000
)

type deadData struct {
	pageData
	Dest     string
	Replayed bool
	Pending  int64
	Letters  []store.DeadLetter
	Older    string
}

func (c *Console) deadLettersPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := &deadData{pageData: pageData{Title: "Dead letters", Nav: "deadletters"}, Dest: q.Get("dest"), Replayed: q.Get("replayed") != ""}
	if n := q.Get("done"); n != "" {
		d.Notice = fmt.Sprintf("Replayed %s dead letter(s): they are back in the queue and will be delivered with the current settings.", n)
	}
	if q.Get("none") != "" {
		d.Notice = "Nothing to replay: it was replayed already."
	}
	dq := store.DeadLetterQuery{Dest: d.Dest, IncludeReplayed: d.Replayed, Limit: deadPageSize}
	dq.BeforeID, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	var err error
	if d.Letters, err = c.deps.DeadLetters.ListDeadLetters(r.Context(), dq); err != nil {
		d.Error = "Could not list dead letters: " + err.Error()
	}
	if d.Pending, err = c.deps.DeadLetters.CountDeadLetters(r.Context(), d.Dest); err != nil {
		d.Error = "Could not count dead letters: " + err.Error()
	}
	if n := len(d.Letters); n == deadPageSize {
		v := url.Values{"before": {strconv.FormatInt(d.Letters[n-1].ID, 10)}}
		if d.Dest != "" {
			v.Set("dest", d.Dest)
		}
		if d.Replayed {
			v.Set("replayed", "1")
		}
		d.Older = c.cfg.Prefix + "/deadletters?" + v.Encode()
	}
	c.render(w, r, http.StatusOK, "deadletters", d)
}

// replayDeadLetters re-enqueues one dead letter (id) or every pending one
// of a destination (dest).
func (c *Console) replayDeadLetters(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PostFormValue("id"), 10, 64)
	dest := r.PostFormValue("dest")
	total := 0
	switch {
	case id > 0:
		n, err := c.deps.DeadLetters.TakeForReplay(r.Context(), store.ReplaySelector{ID: id}, c.enqueueReplays)
		if err != nil {
			c.renderError(w, r, http.StatusInternalServerError, "Replay failed, nothing was replayed: "+err.Error())
			return
		}
		total = n
	case c.hasDest(dest):
		n, err := c.replayAll(r.Context(), store.ReplaySelector{Dest: dest})
		if err != nil {
			c.renderError(w, r, http.StatusInternalServerError,
				fmt.Sprintf("Replay stopped after %d dead letter(s): %v", n, err))
			return
		}
		total = n
	default:
		c.renderError(w, r, http.StatusBadRequest, "Say which dead letter (id) or destination (dest) to replay.")
		return
	}
	target := c.cfg.Prefix + "/deadletters?done=" + strconv.Itoa(total)
	if total == 0 {
		target = c.cfg.Prefix + "/deadletters?none=1"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// replayAll re-enqueues every pending dead letter sel selects (a
// destination, optionally since a time), a chunk per transaction; n
// counts those re-enqueued before any error.
func (c *Console) replayAll(ctx context.Context, sel store.ReplaySelector) (int, error) {
	sel.Limit = replayChunk
	total := 0
	for {
		n, err := c.deps.DeadLetters.TakeForReplay(ctx, sel, c.enqueueReplays)
		total += n
		if err != nil || n < replayChunk {
			return total, err
		}
	}
}

// replayRequest is the body of POST /admin/api/replay, what `relay
// replay` sends to a running server: one dead letter (id), or every
// pending one of a destination (dest), optionally created since a time.
type replayRequest struct {
	ID    int64     `json:"id"`
	Dest  string    `json:"dest"`
	Since time.Time `json:"since"`
}

// apiReplay is replayDeadLetters for scripts and `relay replay`: JSON in,
// {"replayed": n} or {"error": "…"} out. The server's own queue takes the
// messages, so no second process ever opens it.
func (c *Console) apiReplay(w http.ResponseWriter, r *http.Request) {
	var rq replayRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rq); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "body: " + err.Error()})
		return
	}
	var (
		n   int
		err error
	)
	switch {
	case (rq.ID > 0) == (rq.Dest != ""):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "give exactly one of id and dest"})
		return
	case rq.ID > 0:
		n, err = c.deps.DeadLetters.TakeForReplay(r.Context(), store.ReplaySelector{ID: rq.ID}, c.enqueueReplays)
	case !c.hasDest(rq.Dest):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": fmt.Sprintf("dest: %q is not a configured destination", rq.Dest)})
		return
	default:
		n, err = c.replayAll(r.Context(), store.ReplaySelector{Dest: rq.Dest, Since: rq.Since})
	}
	if err != nil {
		c.log.Warn("replay failed", slog.Int("replayed", n), slog.Any("err", err))
		writeJSON(w, http.StatusInternalServerError, map[string]any{"replayed": n, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"replayed": n})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// enqueueReplays turns dead letters back into queue messages. It runs
// inside the store's replay transaction: if it fails, nothing is marked
// replayed.
func (c *Console) enqueueReplays(ctx context.Context, dls []store.DeadLetter) error {
	for _, dl := range dls {
		if !c.hasDest(dl.Dest) {
			return fmt.Errorf("dead letter %d is for destination %q, which is not configured", dl.ID, dl.Dest)
		}
	}
	msgs := delivery.ReplayMessages(dls, c.cfg.Now().UTC())
	if err := c.deps.Queue.Enqueue(ctx, msgs); err != nil {
		return fmt.Errorf("enqueue replays: %w", err)
	}
	return nil
}
