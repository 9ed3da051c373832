package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Payload limits (Klaviyo's docs and the spec's descriptions).
const (
	maxBulkBytes    = 5 << 20   // bulk jobs, events: 5 MB
	maxProfileBytes = 100 << 10 // profile-import, profiles, client profile: 100 KB
	maxEventProps   = 300       // properties per event (ingestion limits)
)

var revisionRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(\.pre)?$`)

// response is what the simulator answers to one API request.
type response struct {
	status     int
	body       any // JSON-encoded when not nil
	errs       []APIError
	header     http.Header
	retryAfter int
	items      int
	fault      fault
}

func errResp(errs ...APIError) *response {
	status := 400
	if len(errs) > 0 {
		status = errs[0].Status
	}
	return &response{status: status, errs: errs}
}

// request is one API request after routing and authentication.
type request struct {
	r        *http.Request
	rt       *route
	params   map[string]string
	identity string // key hash (company id hash on /client/*)
	body     any    // decoded with UseNumber; nil without body
	now      time.Time
	endpoint string
}

func (s *Sim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveControl(w, r)
		return
	}
	arrival := s.now()
	path := r.URL.Path
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	rt, params, pathKnown := s.match(r.Method, path)
	tmpl := path
	if rt != nil {
		tmpl = rt.template
	}
	rec := RequestRecord{Time: arrival, Endpoint: r.Method + " " + tmpl, Key: KeyHash(s.rawIdentity(r, tmpl))}

	f, kind := s.decide(r.Method, tmpl)
	if f.Latency > 0 && !s.sleep(r, f.Latency) {
		rec.Status = 0
		s.record(rec, nil)
		return
	}
	var resp *response
	switch kind {
	case faultReset:
		rec.Fault = kind.String()
		s.record(rec, nil)
		resetConn(w)
		return
	case faultTimeout:
		rec.Fault = kind.String()
		// Drain the body so net/http watches the connection and cancels
		// the request context when the client hangs up.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBulkBytes))
		hold := f.TimeoutHold
		if hold <= 0 {
			hold = 24 * time.Hour
		}
		if s.sleep(r, hold) {
			resp = errResp(newErr(504, "gateway_timeout", "Gateway timeout.", "The request timed out."))
			resp.fault = faultTimeout
		} else {
			s.record(rec, nil)
			return
		}
	case faultError:
		status := 500
		if rand.IntN(2) == 1 {
			status = 503
		}
		resp = errResp(serverError(status))
		resp.fault = faultError
	case faultStorm:
		ra := max(f.Storm.RetryAfter, 1)
		resp = errResp(throttled(ra))
		resp.retryAfter = ra
		resp.fault = faultStorm
	default:
		switch {
		case rt == nil && pathKnown:
			resp = errResp(methodNotAllowed(r.Method))
		case rt == nil:
			resp = errResp(notFound())
		default:
			resp = s.handle(&request{r: r, rt: rt, params: params, now: arrival, endpoint: rec.Endpoint}, path)
		}
	}
	if resp.fault != faultNone {
		rec.Fault = resp.fault.String()
	}
	rec.Status, rec.RetryAfter, rec.Items = resp.status, resp.retryAfter, resp.items
	// Record before answering: once a client has its answer, State shows it.
	rec.Answered = s.now()
	s.record(rec, resp.errs)
	s.write(w, resp)
}

func (s *Sim) record(rec RequestRecord, errs []APIError) {
	if len(errs) > 0 && rec.Status != 429 && rec.Fault == "" {
		e := errs[0]
		ptr := ""
		if e.Source != nil {
			ptr = e.Source.Pointer + e.Source.Parameter
		}
		s.log.Debug("sim rejected request", slog.String("endpoint", rec.Endpoint), slog.Int("status", rec.Status),
			slog.String("code", e.Code), slog.String("source", ptr), slog.String("detail", e.Detail))
	}
	s.mu.Lock()
	s.reqs.add(rec, errs)
	s.mu.Unlock()
}

// sleep waits d, or until the client gives up or the simulator closes; it
// reports whether d passed.
func (s *Sim) sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closing:
		return false
	}
}

// resetConn drops the connection without an answer: with a TCP reset when
// the connection can be hijacked, else by aborting the handler (net/http
// then closes the connection or resets the HTTP/2 stream).
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

func (s *Sim) write(w http.ResponseWriter, resp *response) {
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	if resp.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(resp.retryAfter))
	}
	var body []byte
	switch {
	case len(resp.errs) > 0:
		body, _ = json.Marshal(ErrorDocument{Errors: resp.errs})
	case resp.body != nil:
		body, _ = json.Marshal(resp.body)
	}
	if body != nil {
		h.Set("Content-Type", "application/vnd.api+json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(resp.status)
	if body != nil {
		_, _ = w.Write(body)
	}
}

// rawIdentity is the API key or company id a request names, unchecked.
func (s *Sim) rawIdentity(r *http.Request, tmpl string) string {
	if strings.HasPrefix(tmpl, "/client/") {
		return r.URL.Query().Get("company_id")
	}
	key, _ := apiKey(r)
	return key
}

// apiKey parses "Authorization: Klaviyo-API-Key <key>".
func apiKey(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Klaviyo-API-Key") {
		return "", false
	}
	key = strings.TrimSpace(key)
	return key, key != ""
}

// handle runs the checks every operation shares, in Klaviyo's order
// (authentication, rate limit, revision, media type, size, schema), then
// the operation.
func (s *Sim) handle(q *request, path string) *response {
	r, rt := q.r, q.rt
	var identity string
	if rt.client {
		company := r.URL.Query().Get("company_id")
		if company == "" {
			return errResp(invalidParam("company_id", "'company_id' is a required query parameter (your public API key / site id)."))
		}
		if len(s.public) > 0 && !s.public[company] {
			return errResp(invalidParam("company_id", "Invalid company_id: no account with this public API key."))
		}
		identity = company
	} else {
		key, ok := apiKey(r)
		if !ok || !s.keys[key] {
			return errResp(notAuthenticated("Missing or invalid private key."))
		}
		identity = key
	}
	q.identity = KeyHash(identity)

	var rlHeader http.Header
	if s.cfg.RateLimits {
		res := s.take(rt.method+" "+rt.template, identity, rt.limit, q.now)
		if !res.allowed {
			resp := errResp(throttled(res.retryAfter))
			resp.retryAfter = res.retryAfter
			return resp
		}
		rlHeader = http.Header{}
		rlHeader.Set("RateLimit-Limit", itoa(res.limit))
		rlHeader.Set("RateLimit-Remaining", itoa(res.remaining))
		rlHeader.Set("RateLimit-Reset", itoa(res.reset))
	}
	resp := s.handleAuthed(q, path)
	if rlHeader != nil {
		if resp.header == nil {
			resp.header = http.Header{}
		}
		for k, v := range rlHeader {
			resp.header[k] = v
		}
	}
	return resp
}

func (s *Sim) handleAuthed(q *request, path string) *response {
	r, rt := q.r, q.rt
	rev := r.Header.Get("revision")
	if rev == "" {
		return errResp(invalidParam("revision", "Missing 'revision' header; Klaviyo requires it on every request (e.g. revision: 2026-07-15)."))
	}
	if !revisionRE.MatchString(rev) {
		return errResp(invalidParam("revision", "Invalid revision '"+rev+"': expected a date like 2026-07-15."))
	}
	hasBody := r.Method == http.MethodPost || r.Method == http.MethodPatch || r.Method == http.MethodDelete
	var raw []byte
	if hasBody {
		ct := r.Header.Get("Content-Type")
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/vnd.api+json" && mt != "application/json") {
			return errResp(unsupportedMedia(ct))
		}
		limit := int64(maxBulkBytes)
		switch rt.template {
		case "/api/profile-import", "/api/profiles", "/api/profiles/{id}", "/client/profiles", "/client/subscriptions":
			limit = maxProfileBytes
		}
		raw, err = io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errResp(tooLarge("The payload exceeds the maximum allowed size of " + sizeString(limit) + " for " + rt.method + " " + rt.template + "."))
		}
		if err != nil {
			return errResp(newErr(400, "parse_error", "Malformed request.", "Reading the request body: "+err.Error()))
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			e := newErr(400, "parse_error", "Malformed request.", "The request body is empty; a JSON:API document is required.")
			e.Source = &ErrorSource{Pointer: "/data"}
			return errResp(e)
		}
		// The spec declares only JSON:API; Klaviyo also takes plain JSON.
		r.Header.Set("Content-Type", "application/vnd.api+json")
	}
	// Every route is in the OpenAPI subset, so every request is validated;
	// on a shallow copy: the validator sees the canonical path and the
	// buffered body.
	vr := r.WithContext(r.Context())
	u := *r.URL
	u.Path, u.RawPath = path, ""
	vr.URL = &u
	if hasBody {
		vr.Body = io.NopCloser(bytes.NewReader(raw))
		vr.ContentLength = int64(len(raw))
	}
	if err := s.validator.ValidateRequest(r.Context(), vr); err != nil {
		return errResp(convertValidationError(err)...)
	}
	if hasBody {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&q.body); err != nil {
			e := newErr(400, "parse_error", "Malformed request.", "JSON parse error: "+err.Error())
			e.Source = &ErrorSource{Pointer: "/data"}
			return errResp(e)
		}
		if rt.template != "/api/profile-bulk-import-jobs" {
			if errs := s.unknownAttrErrors(rt, q.body, ""); len(errs) > 0 {
				return errResp(errs...)
			}
		}
	}
	return s.dispatch(q)
}

func (s *Sim) unknownAttrErrors(rt *route, body any, prefix string) []APIError {
	var errs []APIError
	for _, u := range s.schemas.unknownAttributes(s.schemas.body(rt.method, rt.template), body, "", "") {
		if prefix != "" && !strings.HasPrefix(u.pointer, prefix) {
			continue
		}
		errs = append(errs, invalid(u.pointer, "'"+u.name+"' is not a valid field for the resource '"+u.resource+"'."))
	}
	return errs
}

func sizeString(n int64) string {
	if n >= 1<<20 {
		return strconv.FormatInt(n>>20, 10) + " MB"
	}
	return strconv.FormatInt(n>>10, 10) + " KB"
}

// serveControl serves /_sim/*.
func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	writeJSON := func(status int, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(append(b, '\n'))
	}
	switch {
	case r.URL.Path == "/_sim/state" && r.Method == http.MethodGet:
		withLog := r.URL.Query().Get("requestLog") != "false"
		b, err := s.marshalState(withLog)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	case r.URL.Path == "/_sim/faults" && r.Method == http.MethodGet:
		writeJSON(http.StatusOK, s.Faults())
	case r.URL.Path == "/_sim/faults" && r.Method == http.MethodPost:
		var f Faults
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err == nil {
			err = json.Unmarshal(b, &f)
		}
		if err != nil {
			writeJSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.SetFaults(f)
		writeJSON(http.StatusOK, f)
	case r.URL.Path == "/_sim/reset" && r.Method == http.MethodPost:
		s.Reset()
		writeJSON(http.StatusOK, map[string]bool{"reset": true})
	default:
		writeJSON(http.StatusNotFound, map[string]string{"error": "unknown simulator control endpoint; see GET /_sim/state, GET|POST /_sim/faults, POST /_sim/reset"})
	}
}
