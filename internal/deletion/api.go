package deletion

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/authlimit"
	"github.com/relaycdp/relay/internal/forwarded"
	"github.com/relaycdp/relay/internal/store"
)

// API is the HTTP side of user deletion: RudderStack's regulation API
// (POST /v2/regulations), Segment's Public API regulations (POST
// /regulations, POST /sources/{sourceId}/regulations, GET
// /regulations/{id}) and Relay's own (POST and GET /admin/api/deletions),
// all behind a Bearer token: the admin token or the deletion key.
type API struct {
	w      *Worker
	store  Store
	tokens [][sha256.Size]byte
	limit  *authlimit.Limiter
	log    *slog.Logger
}

// MaxUsers bounds the users of one call (Segment's Public API takes up to
// 5,000 subject ids per call).
const MaxUsers = 5000

const maxBody = 2 << 20

// NewAPI builds the API; empty tokens are ignored (a deletion key need not
// be configured). limit throttles failed authentications per client
// address; pass the one the console uses, so guesses count on both (nil:
// the API's own).
func NewAPI(w *Worker, s Store, limit *authlimit.Limiter, log *slog.Logger, tokens ...string) *API {
	if limit == nil {
		limit = authlimit.New(nil, forwarded.Trusted{})
	}
	a := &API{w: w, store: s, limit: limit, log: log.With(slog.String("component", "deletion-api"))}
	for _, t := range tokens {
		if t != "" {
			a.tokens = append(a.tokens, sha256.Sum256([]byte(t)))
		}
	}
	return a
}

// Register mounts the routes on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("POST /v2/regulations", a.authed(a.rudderstack))
	mux.Handle("POST /regulations", a.authed(a.segment))
	mux.Handle("POST /sources/{sourceId}/regulations", a.authed(a.segment))
	mux.Handle("GET /regulations/{id}", a.authed(a.segmentStatus))
	mux.Handle("POST /admin/api/deletions", a.authed(a.create))
	mux.Handle("GET /admin/api/deletions", a.authed(a.list))
	mux.Handle("GET /admin/api/deletions/{id}", a.authed(a.get))
	mux.Handle("DELETE /v2/regulations/{id}", a.authed(a.cancelRegulation))
	mux.Handle("GET /admin/api/suppressions", a.authed(a.listSuppressions))
	mux.Handle("POST /admin/api/suppressions", a.authed(a.createSuppression))
	mux.Handle("DELETE /admin/api/suppressions/{id}", a.authed(a.cancelRegulation))
	mux.Handle("POST /admin/api/suppressions/remove", a.authed(a.removeSuppression))
}

// authed checks "Authorization: Bearer <token>" (or Basic with the token
// as user name, as RudderStack's older API took its workspace token).
// Wrong tokens count against the client address as on the console: past
// authlimit.Failures a minute, 429 with Retry-After.
func (a *API) authed(h func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			tok, _, ok = r.BasicAuth()
		}
		if !ok {
			// No credentials is not a guess: nothing to count.
			a.unauthorized(w)
			return
		}
		addr := a.limit.ClientAddr(r)
		if allowed, wait := a.limit.Allow(addr); !allowed {
			w.Header().Set("Retry-After", authlimit.RetryAfter(wait))
			writeError(w, http.StatusTooManyRequests, "too many failed authentications from this address; retry after the Retry-After delay")
			return
		}
		if !a.valid(strings.TrimSpace(tok)) {
			a.limit.Failed(addr)
			a.log.Warn("admin authentication failed", slog.String("via", "deletion-api"), slog.String("remote", addr),
				slog.String("path", r.URL.Path))
			a.unauthorized(w)
			return
		}
		a.limit.Succeeded(addr)
		h(w, r)
	})
}

func (a *API) unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="relay deletion"`)
	writeError(w, http.StatusUnauthorized, "authorization: send the admin token or the deletion key as \"Authorization: Bearer <token>\"")
}

func (a *API) valid(tok string) bool {
	if tok == "" {
		return false
	}
	h := sha256.Sum256([]byte(tok))
	ok := 0
	for _, t := range a.tokens {
		ok |= subtle.ConstantTimeCompare(h[:], t[:])
	}
	return ok == 1
}

// rudderUser is one user of a RudderStack regulation.
type rudderUser struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
	Phone  string `json:"phone"`
}

// POST /v2/regulations, RudderStack's shape:
// {"regulationType":"suppress_with_delete","destinationIds":[…],"users":[{"userId","email","phone"}]}.
func (a *API) rudderstack(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RegulationType string       `json:"regulationType"`
		DestinationIDs []string     `json:"destinationIds"`
		Users          []rudderUser `json:"users"`
	}
	if !decode(w, r, &body, false) {
		return
	}
	switch body.RegulationType {
	case "suppress_with_delete", "suppress":
	case "":
		writeError(w, 400, `regulationType: required; "suppress" or "suppress_with_delete"`)
		return
	default:
		writeError(w, 400, fmt.Sprintf(`regulationType %q: want "suppress" or "suppress_with_delete"`, body.RegulationType))
		return
	}
	if len(body.Users) == 0 || len(body.Users) > MaxUsers {
		writeError(w, 400, fmt.Sprintf("users: want 1 to %d users, got %d", MaxUsers, len(body.Users)))
		return
	}
	ds := make([]store.Deletion, len(body.Users))
	for i, u := range body.Users {
		subj := store.DeletionSubject{UserID: strings.TrimSpace(u.UserID), Email: strings.TrimSpace(u.Email), Phone: strings.TrimSpace(u.Phone)}
		if msg := checkSubject(subj); msg != "" {
			writeError(w, 400, fmt.Sprintf("users[%d]: %s", i, msg))
			return
		}
		ds[i] = store.Deletion{Subject: subj, Origin: "rudderstack", Dests: body.DestinationIDs}
	}
	var ids []string
	if body.RegulationType == "suppress" {
		ss, ok := a.suppress(w, r, ds)
		if !ok {
			return
		}
		ids = regulationsOf(ss)
	} else {
		if !a.submit(w, r, ds, true, "destinationIds", func(i int) string { return fmt.Sprintf("users[%d].", i) }) {
			return
		}
		ids = idsOf(ds)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": ids[0], "ids": ids, "regulationType": body.RegulationType})
}

// POST /regulations and /sources/{sourceId}/regulations, Segment's Public
// API shape: {"regulationType":"DELETE_ONLY","subjectType":"USER_ID","subjectIds":[…]}.
func (a *API) segment(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RegulationType string   `json:"regulationType"`
		SubjectType    string   `json:"subjectType"`
		SubjectIDs     []string `json:"subjectIds"`
	}
	if !decode(w, r, &body, false) {
		return
	}
	const types = "DELETE_ONLY, DELETE_INTERNAL, SUPPRESS_ONLY, SUPPRESS_WITH_DELETE, SUPPRESS_WITH_DELETE_INTERNAL or UNSUPPRESS"
	local, suppress := false, false
	switch body.RegulationType {
	case "DELETE_ONLY":
	case "SUPPRESS_WITH_DELETE":
		suppress = true
	case "DELETE_INTERNAL":
		local = true
	case "SUPPRESS_WITH_DELETE_INTERNAL":
		local, suppress = true, true
	case "SUPPRESS_ONLY", "UNSUPPRESS":
	case "":
		writeError(w, 400, "regulationType: required; one of "+types)
		return
	default:
		writeError(w, 400, fmt.Sprintf("regulationType %q: want one of %s", body.RegulationType, types))
		return
	}
	if body.SubjectType != "USER_ID" {
		writeError(w, 400, fmt.Sprintf("subjectType %q: Relay supports USER_ID", body.SubjectType))
		return
	}
	if len(body.SubjectIDs) == 0 || len(body.SubjectIDs) > MaxUsers {
		writeError(w, 400, fmt.Sprintf("subjectIds: want 1 to %d ids, got %d", MaxUsers, len(body.SubjectIDs)))
		return
	}
	ds := make([]store.Deletion, len(body.SubjectIDs))
	for i, id := range body.SubjectIDs {
		subj := store.DeletionSubject{UserID: strings.TrimSpace(id)}
		if subj.UserID == "" {
			writeError(w, 400, fmt.Sprintf("subjectIds[%d]: empty; want a userId", i))
			return
		}
		if msg := checkSubject(subj); msg != "" {
			writeError(w, 400, fmt.Sprintf("subjectIds[%d]: %s", i, msg))
			return
		}
		ds[i] = store.Deletion{Subject: subj, Origin: "segment", LocalOnly: local}
	}
	switch body.RegulationType {
	case "UNSUPPRESS":
		subjects := make([]store.DeletionSubject, len(ds))
		for i := range ds {
			subjects[i] = ds[i].Subject
		}
		n, ok := a.unsuppress(w, r, "", subjects)
		if ok {
			writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"unsuppressed": n}})
		}
	case "SUPPRESS_ONLY":
		if ss, ok := a.suppress(w, r, ds); ok {
			ids := regulationsOf(ss)
			writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"regulateId": ids[0], "regulateIds": ids}})
		}
	default:
		if a.submit(w, r, ds, suppress, "destinations", func(i int) string { return fmt.Sprintf("subjectIds[%d].", i) }) {
			writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"regulateId": idOf(ds[0].ID), "regulateIds": idsOf(ds)}})
		}
	}
}

// GET /regulations/{id}: Segment's status names for one request. A
// suppression alone is FINISHED once stored.
func (a *API) segmentStatus(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.PathValue("id"), "sup_") {
		a.suppressionStatus(w, r)
		return
	}
	d, ok := a.lookup(w, r)
	if !ok {
		return
	}
	status := map[store.DeletionState]string{store.DeletionPending: "INITIALIZED", store.DeletionRunning: "RUNNING",
		store.DeletionDone: "FINISHED", store.DeletionFailed: "FAILED"}[d.State]
	if d.State == store.DeletionPending && d.Attempts > 0 {
		status = "RUNNING"
	}
	writeJSON(w, 200, map[string]any{"data": map[string]any{"regulation": map[string]any{
		"id": idOf(d.ID), "overallStatus": status, "createdAt": d.CreatedAt.UTC().Format(time.RFC3339),
		"deletion": view(d)}}})
}

// POST /admin/api/deletions {"userId","email","phone","destinations":[…],"localOnly"}.
func (a *API) create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UserID       string   `json:"userId"`
		Email        string   `json:"email"`
		Phone        string   `json:"phone"`
		Destinations []string `json:"destinations"`
		LocalOnly    bool     `json:"localOnly"`
		Suppress     bool     `json:"suppress"`
		Origin       string   `json:"origin"`
	}
	if !decode(w, r, &body, true) {
		return
	}
	subj := store.DeletionSubject{UserID: strings.TrimSpace(body.UserID), Email: strings.TrimSpace(body.Email), Phone: strings.TrimSpace(body.Phone)}
	if msg := checkSubject(subj); msg != "" {
		writeError(w, 400, msg)
		return
	}
	origin := "api"
	if body.Origin == "cli" {
		origin = "cli"
	}
	ds := []store.Deletion{{Subject: subj, Origin: origin, Dests: body.Destinations, LocalOnly: body.LocalOnly}}
	if !a.submit(w, r, ds, body.Suppress, "destinations", func(int) string { return "" }) {
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"deletion": view(ds[0])})
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	if d, ok := a.lookup(w, r); ok {
		writeJSON(w, 200, map[string]any{"deletion": view(d)})
	}
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := store.DeletionQuery{State: store.DeletionState(r.URL.Query().Get("state"))}
	if q.State != "" && !q.State.Valid() {
		writeError(w, 400, fmt.Sprintf("state %q: want pending, running, done or failed", q.State))
		return
	}
	ds, err := a.store.ListDeletions(r.Context(), q)
	if err != nil {
		a.log.Error("list deletions", slog.Any("err", err))
		writeError(w, 500, "listing deletions failed; see the server log")
		return
	}
	out := make([]deletionView, 0, len(ds))
	for _, d := range ds {
		out = append(out, view(d))
	}
	writeJSON(w, 200, map[string]any{"deletions": out})
}

func (a *API) lookup(w http.ResponseWriter, r *http.Request) (store.Deletion, bool) {
	raw := strings.TrimPrefix(r.PathValue("id"), "del_")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		writeError(w, 400, fmt.Sprintf("id %q: want a deletion id such as del_12", r.PathValue("id")))
		return store.Deletion{}, false
	}
	d, err := a.store.Deletion(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, 404, fmt.Sprintf("deletion %s: not found", idOf(id)))
		return store.Deletion{}, false
	}
	if err != nil {
		a.log.Error("look up deletion", slog.Any("err", err))
		writeError(w, 500, "looking up the deletion failed; see the server log")
		return store.Deletion{}, false
	}
	return d, true
}

// submit stores the requests (with their users' suppressions when
// suppress); it answers the error itself. destField is the body's field
// that names destinations; itemField names request i's place in the body
// ("users[1]." or "").
func (a *API) submit(w http.ResponseWriter, r *http.Request, ds []store.Deletion, suppress bool, destField string, itemField func(int) string) bool {
	var err error
	if suppress {
		err = a.w.SubmitSuppressed(r.Context(), ds)
	} else {
		err = a.w.Submit(r.Context(), ds)
	}
	var se *SubjectError
	switch {
	case err == nil:
		return true
	case errors.Is(err, errReloaded):
		a.log.Warn("suppression list refresh", slog.Any("err", err))
		return true
	case errors.Is(err, ErrNoSuppressions):
		writeError(w, 501, err.Error())
	case errors.Is(err, ErrUnknownDestination):
		writeError(w, 400, destField+": "+err.Error()+": destinations are named as in relay.yaml")
	case errors.As(err, &se):
		writeError(w, 400, itemField(se.Index)+se.Error())
	case errors.Is(err, store.ErrInvalid):
		writeError(w, 400, err.Error())
	default:
		a.log.Error("store deletion requests", slog.Any("err", err))
		writeError(w, 503, "the deletion requests could not be stored, nothing was accepted; retry")
	}
	return false
}

// checkSubject returns what is wrong with a subject, or "".
func checkSubject(s store.DeletionSubject) string {
	switch {
	case s.Empty():
		return "one of userId, email or phone is required"
	case len(s.UserID) > 1024 || len(s.Email) > 1024 || len(s.Phone) > 1024:
		return "an identifier is longer than 1024 bytes"
	case s.Email != "" && (!strings.Contains(s.Email, "@") || strings.ContainsAny(s.Email, " \t\r\n")):
		return "email: not an email address"
	case s.Phone != "" && !strings.ContainsAny(s.Phone, "0123456789"):
		return "phone: has no digits"
	}
	return ""
}

// deletionView is a request as the API shows it.
type deletionView struct {
	ID        string               `json:"id"`
	State     store.DeletionState  `json:"state"`
	UserID    string               `json:"userId,omitempty"`
	Email     string               `json:"email,omitempty"`
	Phone     string               `json:"phone,omitempty"`
	Origin    string               `json:"origin,omitempty"`
	LocalOnly bool                 `json:"localOnly,omitempty"`
	Dests     []string             `json:"destinations,omitempty"`
	Attempts  int                  `json:"attempts"`
	LastError string               `json:"lastError,omitempty"`
	Steps     []store.DeletionStep `json:"steps"`
	NextAt    *time.Time           `json:"nextAttemptAt,omitempty"`
	CreatedAt time.Time            `json:"createdAt"`
	UpdatedAt time.Time            `json:"updatedAt"`
}

func view(d store.Deletion) deletionView {
	v := deletionView{ID: idOf(d.ID), State: d.State, UserID: d.Subject.UserID, Email: d.Subject.Email, Phone: d.Subject.Phone,
		Origin: d.Origin, LocalOnly: d.LocalOnly, Dests: d.Dests, Attempts: d.Attempts, LastError: d.LastError,
		Steps: d.Steps, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
	if v.Steps == nil {
		v.Steps = []store.DeletionStep{}
	}
	if !d.NextAt.IsZero() && d.State == store.DeletionPending {
		t := d.NextAt.UTC()
		v.NextAt = &t
	}
	return v
}

func idOf(id int64) string { return store.DeletionRegulation(id) }

func idsOf(ds []store.Deletion) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = idOf(d.ID)
	}
	return out
}

// decode reads a JSON body; strict rejects unknown fields (Relay's own
// API), the compatible APIs ignore them as their origins do.
func decode(w http.ResponseWriter, r *http.Request, v any, strict bool) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", maxBody))
		case errors.Is(err, io.EOF):
			writeError(w, 400, "body: empty; a JSON object is required")
		default:
			writeError(w, 400, decodeMessage(err))
		}
		return false
	}
	if dec.More() {
		writeError(w, 400, "body: more than one JSON value")
		return false
	}
	return true
}

// decodeMessage names the field a JSON type error is at, in JSON's words
// (the Go types behind it mean nothing to a caller).
func decodeMessage(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return fmt.Sprintf("%s: want %s, got %s", field, jsonKind(te.Type.Kind()), article(te.Value))
	case errors.As(err, &se):
		return fmt.Sprintf("body: not JSON at byte %d: %v", se.Offset, se)
	}
	return "body: " + err.Error()
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Bool:
		return "true or false"
	}
	return "a number"
}

// article puts "a"/"an" before a JSON value kind (array, object, ...).
func article(v string) string {
	if v != "" && strings.ContainsRune("aeiou", rune(v[0])) {
		return "an " + v
	}
	return "a " + v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg})
}
