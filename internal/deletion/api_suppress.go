package deletion

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/store"
)

// suppress stores suppressions of the requests' subjects alone; it
// answers the error itself.
func (a *API) suppress(w http.ResponseWriter, r *http.Request, ds []store.Deletion) ([]store.Suppression, bool) {
	subjects := make([]store.DeletionSubject, len(ds))
	for i := range ds {
		subjects[i] = ds[i].Subject
	}
	ss, err := a.w.Suppress(r.Context(), subjects, ds[0].Origin)
	return ss, a.regulated(w, err, "store suppressions")
}

// unsuppress lifts suppressions; it answers the error itself.
func (a *API) unsuppress(w http.ResponseWriter, r *http.Request, regulation string, subjects []store.DeletionSubject) (int64, bool) {
	n, err := a.w.Unsuppress(r.Context(), regulation, subjects)
	return n, a.regulated(w, err, "lift suppressions")
}

// regulated answers a suppression call's error, if any, and says whether
// the call succeeded.
func (a *API) regulated(w http.ResponseWriter, err error, what string) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, errReloaded):
		a.log.Warn("suppression list refresh", slog.Any("err", err))
		return true
	case errors.Is(err, ErrNoSuppressions):
		writeError(w, 501, err.Error())
	case errors.Is(err, store.ErrInvalid):
		writeError(w, 400, err.Error())
	default:
		a.log.Error(what, slog.Any("err", err))
		writeError(w, 503, what+" failed, nothing was changed; retry")
	}
	return false
}

// DELETE /v2/regulations/{id} (RudderStack's "cancel a user suppression")
// and DELETE /admin/api/suppressions/{id}: lift the suppression of a
// regulation. A deletion already made is not undone.
func (a *API) cancelRegulation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !strings.HasPrefix(id, "sup_") && !strings.HasPrefix(id, "del_") {
		writeError(w, 400, fmt.Sprintf("id %q: want a regulation id such as sup_3 or del_7", id))
		return
	}
	n, ok := a.unsuppress(w, r, id, nil)
	if !ok {
		return
	}
	if n == 0 {
		writeError(w, 404, fmt.Sprintf("regulation %s: no suppression (a deletion alone cannot be cancelled)", id))
		return
	}
	writeJSON(w, 200, map[string]any{"id": id, "unsuppressed": n})
}

// POST /admin/api/suppressions {"userId","email","phone"}: suppress one
// user without deleting anything.
func (a *API) createSuppression(w http.ResponseWriter, r *http.Request) {
	subj, ok := decodeSubject(w, r)
	if !ok {
		return
	}
	ss, ok := a.suppress(w, r, []store.Deletion{{Subject: subj, Origin: "api"}})
	if ok {
		writeJSON(w, http.StatusCreated, map[string]any{"suppression": suppressionViewOf(ss[0])})
	}
}

// POST /admin/api/suppressions/remove {"userId","email","phone"}: lift
// every suppression of any of the identifiers.
func (a *API) removeSuppression(w http.ResponseWriter, r *http.Request) {
	subj, ok := decodeSubject(w, r)
	if !ok {
		return
	}
	if n, ok := a.unsuppress(w, r, "", []store.DeletionSubject{subj}); ok {
		writeJSON(w, 200, map[string]any{"unsuppressed": n})
	}
}

func decodeSubject(w http.ResponseWriter, r *http.Request) (store.DeletionSubject, bool) {
	var body struct {
		UserID string `json:"userId"`
		Email  string `json:"email"`
		Phone  string `json:"phone"`
	}
	if !decode(w, r, &body, true) {
		return store.DeletionSubject{}, false
	}
	subj := store.DeletionSubject{UserID: strings.TrimSpace(body.UserID), Email: strings.TrimSpace(body.Email), Phone: strings.TrimSpace(body.Phone)}
	if msg := checkSubject(subj); msg != "" {
		writeError(w, 400, msg)
		return subj, false
	}
	return subj, true
}

// GET /admin/api/suppressions[?before=ID]: newest first, 100 a page.
func (a *API) listSuppressions(w http.ResponseWriter, r *http.Request) {
	var before int64
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, 400, fmt.Sprintf("before %q: want a positive suppression number", v))
			return
		}
		before = n
	}
	ss, err := a.store.ListSuppressions(r.Context(), store.SuppressionQuery{Newest: true, After: before, Limit: 100})
	if err != nil {
		a.log.Error("list suppressions", slog.Any("err", err))
		writeError(w, 500, "listing suppressions failed; see the server log")
		return
	}
	out := make([]SuppressionView, 0, len(ss))
	for _, s := range ss {
		out = append(out, suppressionViewOf(s))
	}
	writeJSON(w, 200, map[string]any{"suppressions": out})
}

// suppressionStatus answers GET /regulations/sup_N in Segment's shape.
func (a *API) suppressionStatus(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(strings.TrimPrefix(r.PathValue("id"), "sup_"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, 400, fmt.Sprintf("id %q: want a regulation id such as sup_3", r.PathValue("id")))
		return
	}
	ss, err := a.store.ListSuppressions(r.Context(), store.SuppressionQuery{After: id - 1, Limit: 1})
	if err != nil {
		a.log.Error("look up suppression", slog.Any("err", err))
		writeError(w, 500, "looking up the suppression failed; see the server log")
		return
	}
	if len(ss) == 0 || ss[0].ID != id {
		writeError(w, 404, fmt.Sprintf("regulation %s: not found (or lifted)", r.PathValue("id")))
		return
	}
	writeJSON(w, 200, map[string]any{"data": map[string]any{"regulation": map[string]any{
		"id": ss[0].Regulation, "overallStatus": "FINISHED", "regulateType": "SUPPRESS_ONLY",
		"createdAt": ss[0].CreatedAt.UTC().Format(time.RFC3339), "suppression": suppressionViewOf(ss[0])}}})
}

// SuppressionView is a suppression as the API and console show it: which
// identifiers it holds and a short fingerprint of each (the stored keyed
// hash's first 12 hex digits), never the identifiers.
type SuppressionView struct {
	Regulation string            `json:"regulation"`
	Origin     string            `json:"origin,omitempty"`
	Hashes     map[string]string `json:"identifiers"`
	CreatedAt  time.Time         `json:"createdAt"`
}

func suppressionViewOf(s store.Suppression) SuppressionView {
	v := SuppressionView{Regulation: s.Regulation, Origin: s.Origin, Hashes: map[string]string{}, CreatedAt: s.CreatedAt.UTC()}
	for k, h := range map[string]string{"userId": s.UserID, "email": s.Email, "phone": s.Phone} {
		if len(h) >= 12 {
			v.Hashes[k] = "hmac:" + h[:12]
		}
	}
	return v
}

func regulationsOf(ss []store.Suppression) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Regulation
	}
	return out
}
