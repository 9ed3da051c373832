package sim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Item limits per request (the spec's descriptions).
const (
	maxBulkEvents   = 1000
	maxImport       = 10000
	maxSubscribe    = 1000
	maxUnsubscribe  = 100
	maxListMembers  = 1000
	defaultPageSize = 20
	maxPageSize     = 100
)

func (s *Sim) dispatch(q *request) *response {
	switch q.rt.method + " " + q.rt.template {
	case "POST /api/events":
		return s.createEvent(q, false)
	case "POST /client/events":
		return s.createEvent(q, true)
	case "POST /api/event-bulk-create-jobs":
		return s.bulkEvents(q)
	case "POST /client/event-bulk-create":
		return s.clientBulkEvents(q)
	case "POST /api/profile-import":
		return s.profileImport(q)
	case "POST /api/profiles":
		return s.createProfile(q)
	case "PATCH /api/profiles/{id}":
		return s.patchProfile(q)
	case "GET /api/profiles":
		return s.getProfiles(q)
	case "POST /api/profile-bulk-import-jobs":
		return s.bulkImport(q)
	case "GET /api/profile-bulk-import-jobs/{job_id}":
		return s.getImportJob(q)
	case "GET /api/profile-bulk-import-jobs/{id}/import-errors":
		return s.getImportErrors(q)
	case "POST /api/profile-subscription-bulk-create-jobs":
		return s.subscriptionJob(q, subscribeKind)
	case "POST /api/profile-subscription-bulk-delete-jobs":
		return s.subscriptionJob(q, unsubscribeKind)
	case "POST /api/lists/{id}/relationships/profiles":
		return s.listMembers(q, true)
	case "DELETE /api/lists/{id}/relationships/profiles":
		return s.listMembers(q, false)
	case "POST /client/profiles":
		return s.clientProfile(q)
	case "POST /client/subscriptions":
		return s.clientSubscription(q)
	case "POST /api/data-privacy-deletion-jobs":
		return s.deletionJob(q)
	}
	return errResp(notFound())
}

// eventIn is one event taken from a request, checked.
type eventIn struct {
	metric, uniqueID, currency string
	props                      map[string]any
	value                      *float64
	time                       time.Time
}

// parseEvent reads event attributes at ptr (…/attributes) and applies
// Klaviyo's checks beyond the schema.
func parseEvent(attrs map[string]any, ptr string, now time.Time) (eventIn, []APIError) {
	var errs []APIError
	ev := eventIn{props: obj(attrs, "properties"), time: now.UTC().Truncate(time.Second)}
	if ev.props == nil {
		ev.props = map[string]any{}
	}
	ev.metric, _ = obj(attrs, "metric", "data", "attributes")["name"].(string)
	if strings.TrimSpace(ev.metric) == "" {
		errs = append(errs, invalid(ptr+"/metric/data/attributes/name", "The metric name must not be empty."))
	}
	ev.uniqueID, _ = attrs["unique_id"].(string)
	ev.currency, _ = attrs["value_currency"].(string)
	if n, ok := attrs["value"].(json.Number); ok {
		f, err := n.Float64()
		if err != nil {
			errs = append(errs, invalid(ptr+"/value", "value must be a number."))
		}
		ev.value = &f
	}
	if ts, ok := attrs["time"].(string); ok {
		t, err := time.Parse(time.RFC3339Nano, ts)
		switch {
		case err != nil:
			errs = append(errs, invalid(ptr+"/time", fmt.Sprintf("Invalid datetime %q: use ISO 8601.", ts)))
		case t.Year() < 1990 || t.After(now.AddDate(1, 0, 0)):
			errs = append(errs, invalid(ptr+"/time", fmt.Sprintf("Event time %s must be after 1990 and at most 1 year in the future.", ts)))
		default:
			ev.time = t.UTC().Truncate(time.Second)
		}
	}
	if len(ev.props) > maxEventProps {
		errs = append(errs, invalid(ptr+"/properties", fmt.Sprintf("An event may have at most %d properties; got %d.", maxEventProps, len(ev.props))))
	}
	return ev, errs
}

func (s *Sim) storeEvent(st *store, p *profile, ev eventIn, endpoint string) {
	st.addEvent(EventState{Metric: ev.metric, UniqueID: ev.uniqueID, ProfileID: p.id, Properties: ev.props,
		Value: ev.value, ValueCurrency: ev.currency, Time: ev.time, Endpoint: endpoint})
}

func upsertFail(ue *upsertError) *response { return errResp(ue.err) }

// POST /api/events, /client/events → 202, no body. Applied at once (Klaviyo
// processes asynchronously; the simulator's state is simply up to date).
func (s *Sim) createEvent(q *request, client bool) *response {
	attrs := obj(q.body, "data", "attributes")
	ev, errs := parseEvent(attrs, "/data/attributes", q.now)
	pin := profileFrom(obj(attrs, "profile", "data"), "/data/attributes/profile/data")
	errs = append(errs, pin.check()...)
	if len(errs) > 0 {
		return errResp(errs...)
	}
	mode := modeEvent
	if client {
		mode = modeClient
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, _, ue := s.data.upsert(pin, mode, q.now)
	if ue != nil {
		return upsertFail(ue)
	}
	s.storeEvent(s.data, p, ev, q.endpoint)
	return &response{status: 202}
}

type eventEntry struct {
	profile profileIn
	events  []eventIn
}

// parseBulkEntries checks event bulk entries at ptr (…/data); a repeated
// unique_id anywhere in the request fails it, as in Klaviyo.
func parseBulkEntries(entries []map[string]any, ptrs []string, now time.Time) ([]eventEntry, int, []APIError) {
	var errs []APIError
	var out []eventEntry
	seen := map[string]string{}
	total := 0
	for i, e := range entries {
		attrs := obj(e, "attributes")
		pin := profileFrom(obj(attrs, "profile", "data"), ptrs[i]+"/attributes/profile/data")
		errs = append(errs, pin.check()...)
		be := eventEntry{profile: pin}
		for j, raw := range arr(attrs, "events", "data") {
			total++
			eptr := ptrs[i] + "/attributes/events/data/" + strconv.Itoa(j) + "/attributes"
			ev, evErrs := parseEvent(obj(raw, "attributes"), eptr, now)
			errs = append(errs, evErrs...)
			if ev.uniqueID != "" {
				if first, dup := seen[ev.uniqueID]; dup {
					errs = append(errs, invalid(eptr+"/unique_id", fmt.Sprintf(
						"Duplicate unique_id %q in this request (first at %s); the whole job is rejected.", ev.uniqueID, first)))
				} else {
					seen[ev.uniqueID] = eptr + "/unique_id"
				}
			}
			be.events = append(be.events, ev)
		}
		out = append(out, be)
	}
	return out, total, errs
}

// POST /api/event-bulk-create-jobs → 202, no body (as the spec says); the
// job is applied after JobDelay and shows in State().Jobs.
func (s *Sim) bulkEvents(q *request) *response {
	const base = "/data/attributes/events-bulk-create/data"
	raw := arr(q.body, "data", "attributes", "events-bulk-create", "data")
	entries := make([]map[string]any, len(raw))
	ptrs := make([]string, len(raw))
	for i, e := range raw {
		entries[i], _ = e.(map[string]any)
		ptrs[i] = base + "/" + strconv.Itoa(i)
	}
	parsed, total, errs := parseBulkEntries(entries, ptrs, q.now)
	if total > maxBulkEvents {
		errs = append([]APIError{invalid(base, fmt.Sprintf("A bulk job accepts at most %d events; got %d.", maxBulkEvents, total))}, errs...)
	}
	if len(errs) > 0 {
		r := errResp(errs...)
		r.items = total
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	js := &JobState{ID: newID(), Type: jobEvents, Status: "queued", Key: q.identity, CreatedAt: q.now,
		TotalCount: total, Errors: []ImportError{}}
	endpoint := q.endpoint
	s.enqueueJob(s.data, js, func(st *store, now time.Time) {
		for _, be := range parsed {
			p, _, ue := st.upsert(be.profile, modeEvent, now)
			if ue != nil {
				js.FailedCount += len(be.events)
				js.Errors = append(js.Errors, importError(ue.err, nil))
				continue
			}
			for _, ev := range be.events {
				s.storeEvent(st, p, ev, endpoint)
				js.CompletedCount++
			}
		}
	})
	return &response{status: 202, items: total}
}

// POST /client/event-bulk-create → 202: one profile, many events.
func (s *Sim) clientBulkEvents(q *request) *response {
	data := obj(q.body, "data")
	parsed, total, errs := parseBulkEntries([]map[string]any{data}, []string{"/data"}, q.now)
	if total > maxBulkEvents {
		errs = append([]APIError{invalid("/data/attributes/events/data", fmt.Sprintf("At most %d events per request; got %d.", maxBulkEvents, total))}, errs...)
	}
	if len(errs) > 0 {
		r := errResp(errs...)
		r.items = total
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, _, ue := s.data.upsert(parsed[0].profile, modeClient, q.now)
	if ue != nil {
		return upsertFail(ue)
	}
	for _, ev := range parsed[0].events {
		s.storeEvent(s.data, p, ev, q.endpoint)
	}
	return &response{status: 202, items: total}
}

// profileResource renders a profile as Klaviyo's profile resource.
func profileResource(p *profile, base string) map[string]any {
	attrs := map[string]any{
		"email": nullable(p.email), "phone_number": nullable(p.phone), "external_id": nullable(p.externalID),
		"anonymous_id": nullable(p.anonymousID),
		"created":      p.created.UTC().Format(time.RFC3339Nano), "updated": p.updated.UTC().Format(time.RFC3339Nano),
		"properties": cloneMap(p.props),
	}
	for _, k := range specialAttrs {
		attrs[k] = cloneValue(p.attrs[k])
	}
	lists := make([]any, 0, len(p.lists))
	for _, l := range p.lists {
		lists = append(lists, map[string]any{"type": "list", "id": l})
	}
	return map[string]any{
		"type": "profile", "id": p.id, "attributes": attrs,
		"relationships": map[string]any{"lists": map[string]any{"data": lists}},
		"links":         map[string]any{"self": base + "/api/profiles/" + p.id + "/"},
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func baseURL(q *request) string {
	scheme := "http"
	if q.r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + q.r.Host
}

// POST /api/profile-import → 201 created / 200 updated, the profile.
func (s *Sim) profileImport(q *request) *response {
	pin := profileFrom(obj(q.body, "data"), "/data")
	if errs := pin.check(); len(errs) > 0 {
		return errResp(errs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, created, ue := s.data.upsert(pin, modeImport, q.now)
	if ue != nil {
		return upsertFail(ue)
	}
	status := 200
	if created {
		status = 201
	}
	return &response{status: status, body: map[string]any{"data": profileResource(p, baseURL(q))}}
}

// POST /api/profiles → 201, or 409 duplicate_profile.
func (s *Sim) createProfile(q *request) *response {
	pin := profileFrom(obj(q.body, "data"), "/data")
	if errs := pin.check(); len(errs) > 0 {
		return errResp(errs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, _, ue := s.data.upsert(pin, modeCreate, q.now)
	if ue != nil {
		return upsertFail(ue)
	}
	return &response{status: 201, body: map[string]any{"data": profileResource(p, baseURL(q))}}
}

// PATCH /api/profiles/{id} → 200.
func (s *Sim) patchProfile(q *request) *response {
	id := q.params["id"]
	data := obj(q.body, "data")
	pin := profileFrom(data, "/data")
	if pin.id != id {
		return errResp(newErrPtr(409, "conflict", "Conflict.", fmt.Sprintf("The id in the body (%q) does not match the id in the URL (%q).", pin.id, id), "/data/id"))
	}
	var errs []APIError
	for _, e := range pin.check() {
		if e.Source.Pointer != "/data/attributes" { // the id identifies it
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return errResp(errs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data.profiles[id] == nil {
		return errResp(notFound())
	}
	p, _, ue := s.data.upsert(pin, modeImport, q.now)
	if ue != nil {
		return upsertFail(ue)
	}
	return &response{status: 200, body: map[string]any{"data": profileResource(p, baseURL(q))}}
}

func newErrPtr(status int, code, title, detail, ptr string) APIError {
	e := newErr(status, code, title, detail)
	e.Source = &ErrorSource{Pointer: ptr}
	return e
}

var (
	equalsRE = regexp.MustCompile(`^equals\((\w+),\s*"((?:[^"\\]|\\.)*)"\)$`)
	anyRE    = regexp.MustCompile(`^any\((\w+),\s*\[(.*)\]\)$`)
	quotedRE = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)
)

// GET /api/profiles with filter=equals(field,"v") or any(field,["a","b"])
// on email, phone_number, external_id, id; page[size] and page[cursor].
func (s *Sim) getProfiles(q *request) *response {
	query := q.r.URL.Query()
	filter := strings.TrimSpace(query.Get("filter"))
	var field string
	var values []string
	if filter != "" {
		if m := equalsRE.FindStringSubmatch(filter); m != nil {
			field, values = m[1], []string{unescapeQuoted(m[2])}
		} else if m := anyRE.FindStringSubmatch(filter); m != nil {
			field = m[1]
			for _, v := range quotedRE.FindAllStringSubmatch(m[2], -1) {
				values = append(values, unescapeQuoted(v[1]))
			}
		} else {
			return errResp(invalidParam("filter", fmt.Sprintf("Invalid filter %q: the simulator supports equals(field,\"value\") and any(field,[\"a\",\"b\"]).", filter)))
		}
		switch field {
		case "email", "phone_number", "external_id", "id", "anonymous_id":
		default:
			return errResp(invalidParam("filter", fmt.Sprintf("Filtering on %q is not supported; use email, phone_number, external_id or id.", field)))
		}
	}
	size := defaultPageSize
	if v := query.Get("page[size]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return errResp(invalidParam("page[size]", fmt.Sprintf("page[size] must be between 1 and %d.", maxPageSize)))
		}
		size = n
	}
	offset := 0
	if v := query.Get("page[cursor]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errResp(invalidParam("page[cursor]", "Invalid page cursor."))
		}
		offset = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []*profile
	for _, p := range s.data.order {
		if field == "" {
			match = append(match, p)
			continue
		}
		var have string
		if field == "id" {
			have = p.id
		} else {
			have = *p.ident(field)
		}
		for _, v := range values {
			if have != "" && (have == v || (field == "email" && strings.EqualFold(have, v))) {
				match = append(match, p)
				break
			}
		}
	}
	base := baseURL(q)
	data := []any{}
	for i := offset; i < len(match) && i < offset+size; i++ {
		data = append(data, profileResource(match[i], base))
	}
	self := base + q.r.URL.RequestURI()
	links := map[string]any{"self": self, "next": nil, "prev": nil}
	if offset+size < len(match) {
		nq := url.Values{}
		for k, v := range query {
			nq[k] = v
		}
		nq.Set("page[cursor]", strconv.Itoa(offset+size))
		links["next"] = base + q.r.URL.Path + "?" + nq.Encode()
	}
	return &response{status: 200, body: map[string]any{"data": data, "links": links}}
}

func unescapeQuoted(s string) string {
	if u, err := strconv.Unquote(`"` + s + `"`); err == nil {
		return u
	}
	return s
}

func importError(e APIError, payload any) ImportError {
	src := ErrorSource{}
	if e.Source != nil {
		src = *e.Source
	}
	return ImportError{ID: uuid.NewString(), Code: e.Code, Title: e.Title, Detail: e.Detail, Source: src, OriginalPayload: payload}
}

// POST /api/profile-bulk-import-jobs → 202 with the job. Items that fail
// Klaviyo's per-item checks (bad email or phone, no identifier, unknown
// attributes such as anonymous_id, conflicting identifiers) are recorded as
// import errors on the job; the others are imported.
func (s *Sim) bulkImport(q *request) *response {
	const base = "/data/attributes/profiles/data"
	items := arr(q.body, "data", "attributes", "profiles", "data")
	if len(items) > maxImport {
		r := errResp(invalid(base, fmt.Sprintf("A profile import job accepts at most %d profiles; got %d.", maxImport, len(items))))
		r.items = len(items)
		return r
	}
	// Unknown attributes outside the profiles fail the request.
	var reqErrs []APIError
	itemErrs := map[int][]APIError{}
	for _, e := range s.unknownAttrErrors(q.rt, q.body, "") {
		rest, ok := strings.CutPrefix(e.Source.Pointer, base+"/")
		if !ok {
			reqErrs = append(reqErrs, e)
			continue
		}
		idx, _, _ := strings.Cut(rest, "/")
		i, _ := strconv.Atoi(idx)
		itemErrs[i] = append(itemErrs[i], e)
	}
	if len(reqErrs) > 0 {
		return errResp(reqErrs...)
	}
	var lists []string
	for _, l := range arr(q.body, "data", "relationships", "lists", "data") {
		if id, _ := obj(l)["id"].(string); id != "" {
			lists = append(lists, id)
		}
	}
	type item struct {
		in  profileIn
		raw any
		bad []APIError
	}
	parsed := make([]item, len(items))
	for i, raw := range items {
		res, _ := raw.(map[string]any)
		in := profileFrom(res, base+"/"+strconv.Itoa(i))
		parsed[i] = item{in: in, raw: raw, bad: append(itemErrs[i], in.check()...)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	js := &JobState{ID: newID(), Type: jobImport, Status: "queued", Key: q.identity, CreatedAt: q.now,
		TotalCount: len(items), Errors: []ImportError{}, Lists: lists}
	s.enqueueJob(s.data, js, func(st *store, now time.Time) {
		for _, it := range parsed {
			if len(it.bad) > 0 {
				js.FailedCount++
				for _, e := range it.bad {
					js.Errors = append(js.Errors, importError(e, it.raw))
				}
				continue
			}
			p, _, ue := st.upsert(it.in, modeImport, now)
			if ue != nil {
				js.FailedCount++
				js.Errors = append(js.Errors, importError(ue.err, it.raw))
				continue
			}
			for _, l := range lists {
				st.addToList(l, p)
			}
			js.CompletedCount++
			if !slices.Contains(js.Profiles, p.id) {
				js.Profiles = append(js.Profiles, p.id)
			}
		}
	})
	return &response{status: 202, items: len(items), body: importJobDoc(js, baseURL(q))}
}

func importJobDoc(js *JobState, base string) map[string]any {
	ts := func(t *time.Time) any {
		if t == nil {
			return nil
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	self := base + "/api/profile-bulk-import-jobs/" + js.ID + "/"
	lists := make([]any, 0, len(js.Lists))
	for _, l := range js.Lists {
		lists = append(lists, map[string]any{"type": "list", "id": l})
	}
	errs := make([]any, 0, len(js.Errors))
	for _, e := range js.Errors {
		errs = append(errs, e)
	}
	return map[string]any{
		"data": map[string]any{
			"type": jobImport, "id": js.ID,
			"attributes": map[string]any{
				"status": js.Status, "created_at": js.CreatedAt.UTC().Format(time.RFC3339Nano),
				"total_count": js.TotalCount, "completed_count": js.CompletedCount, "failed_count": js.FailedCount,
				"started_at": ts(js.StartedAt), "completed_at": ts(js.CompletedAt),
				"expires_at": js.CreatedAt.Add(7 * 24 * time.Hour).UTC().Format(time.RFC3339Nano),
				// relay addition: the job's per-item errors inline (Klaviyo
				// serves them at …/import-errors, which the simulator also does).
				"errors": errs,
			},
			"relationships": map[string]any{
				"lists":         map[string]any{"data": lists},
				"import-errors": map[string]any{"links": map[string]any{"related": self + "import-errors/"}},
			},
			"links": map[string]any{"self": self},
		},
		"links": map[string]any{"self": self},
	}
}

func (s *Sim) importJob(q *request) (*JobState, *response) {
	id := q.params["job_id"]
	if id == "" {
		id = q.params["id"] // Klaviyo names the job {id} on …/import-errors
	}
	js := s.data.jobs[id]
	if js == nil || js.Type != jobImport {
		return nil, errResp(notFound())
	}
	return js, nil
}

// GET /api/profile-bulk-import-jobs/{job_id} → 200.
func (s *Sim) getImportJob(q *request) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	js, fail := s.importJob(q)
	if fail != nil {
		return fail
	}
	return &response{status: 200, body: importJobDoc(js, baseURL(q))}
}

// GET /api/profile-bulk-import-jobs/{id}/import-errors → 200, a page of
// the job's item errors: page[size] (1–100, default 20) from the cursor
// page[cursor] (here the offset), links.next while more remain.
func (s *Sim) getImportErrors(q *request) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	js, fail := s.importJob(q)
	if fail != nil {
		return fail
	}
	query := q.r.URL.Query()
	size := 20
	if v := query.Get("page[size]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return errResp(invalidParam("page[size]", "page[size] must be an integer from 1 to 100."))
		}
		size = n
	}
	from, _ := strconv.Atoi(query.Get("page[cursor]"))
	from = min(max(from, 0), len(js.Errors))
	to := min(from+size, len(js.Errors))
	data := make([]any, 0, to-from)
	for _, e := range js.Errors[from:to] {
		data = append(data, map[string]any{"type": "import-error", "id": e.ID, "attributes": map[string]any{
			"code": e.Code, "title": e.Title, "detail": e.Detail, "source": e.Source, "original_payload": e.OriginalPayload}})
	}
	self := baseURL(q) + q.r.URL.Path
	var next any
	if to < len(js.Errors) {
		next = fmt.Sprintf("%s?page%%5Bsize%%5D=%d&page%%5Bcursor%%5D=%d", self, size, to)
	}
	return &response{status: 200, body: map[string]any{"data": data,
		"links": map[string]any{"self": self, "next": next, "prev": nil}}}
}

// consentChange is one channel change of a subscription request.
type consentChange struct {
	channel, kind string // email|sms, marketing|transactional
	consentedAt   *time.Time
}

type subItem struct {
	in      profileIn
	changes []consentChange
}

// parseSubscriptions reads subscriptions at ptr (…/attributes) for a
// subscribe (consent SUBSCRIBED) or unsubscribe request.
func parseSubscriptions(in profileIn, subs map[string]any, historical bool, now time.Time) ([]consentChange, []APIError) {
	var out []consentChange
	var errs []APIError
	ptr := in.ptr + "/attributes/subscriptions"
	for _, ch := range []string{"email", "sms"} {
		c := obj(subs, ch)
		for _, kind := range []string{"marketing", "transactional"} {
			p := obj(c, kind)
			if p == nil {
				continue
			}
			cc := consentChange{channel: ch, kind: kind}
			if ts, ok := p["consented_at"].(string); ok {
				cptr := ptr + "/" + ch + "/" + kind + "/consented_at"
				t, err := time.Parse(time.RFC3339Nano, ts)
				switch {
				case !historical:
					errs = append(errs, invalid(cptr, "consented_at may only be given with historical_import: true."))
				case err != nil:
					errs = append(errs, invalid(cptr, fmt.Sprintf("Invalid datetime %q.", ts)))
				case t.After(now):
					errs = append(errs, invalid(cptr, "consented_at must be in the past."))
				default:
					cc.consentedAt = &t
				}
			} else if historical {
				errs = append(errs, invalid(ptr+"/"+ch+"/"+kind, "consented_at is required when historical_import is true."))
			}
			out = append(out, cc)
		}
		if c != nil {
			id := "email"
			if ch == "sms" {
				id = "phone_number"
			}
			if in.str(id) == "" && in.id == "" {
				errs = append(errs, invalid(in.ptr+"/attributes/"+id, fmt.Sprintf("A %s is required to change %s consent.", id, ch)))
			}
		}
	}
	return out, errs
}

func (st *store) setConsent(p *profile, c consentChange, consent, method, source, listID string, historical bool, now time.Time) {
	ch := &p.subs.Email
	if c.channel == "sms" {
		ch = &p.subs.SMS
	}
	if *ch == nil {
		*ch = &ChannelConsent{}
	}
	at := now
	if c.consentedAt != nil {
		at = *c.consentedAt
	}
	v := &Consent{Consent: consent, ConsentedAt: at.UTC(), HistoricalImport: historical, Method: method, CustomSource: source, ListID: listID}
	if c.kind == "transactional" {
		(*ch).Transactional = v
	} else {
		(*ch).Marketing = v
	}
}

// subscriptionItems parses the profiles of a subscription job.
func subscriptionItems(body any, historical bool, now time.Time) ([]subItem, []APIError) {
	const base = "/data/attributes/profiles/data"
	var items []subItem
	var errs []APIError
	for i, raw := range arr(body, "data", "attributes", "profiles", "data") {
		res, _ := raw.(map[string]any)
		in := profileFrom(res, base+"/"+strconv.Itoa(i))
		for _, e := range in.check() {
			if e.Source.Pointer != in.ptr+"/attributes" {
				errs = append(errs, e)
			}
		}
		if in.id == "" && in.str("email") == "" && in.str("phone_number") == "" {
			errs = append(errs, invalid(in.ptr+"/attributes", "Either email or phone_number is required."))
		}
		changes, cerrs := parseSubscriptions(in, obj(in.attrs, "subscriptions"), historical, now)
		errs = append(errs, cerrs...)
		items = append(items, subItem{in: in, changes: changes})
	}
	return items, errs
}

// subscriptionProfile is the identifying part of a subscription item: the
// job changes consent, not attributes.
func subscriptionProfile(in profileIn) profileIn {
	attrs := map[string]any{}
	for _, k := range []string{"email", "phone_number"} {
		if v := in.str(k); v != "" {
			attrs[k] = v
		}
	}
	return profileIn{ptr: in.ptr, id: in.id, attrs: attrs}
}

// subscriptionJobKind is what a subscription job does: subscribe and add
// to the list, or unsubscribe and remove from it.
type subscriptionJobKind struct {
	verb      string // in error details
	max       int
	jobType   string
	consent   string
	method    string
	subscribe bool
}

var (
	subscribeKind   = subscriptionJobKind{"subscribe", maxSubscribe, jobSubscribe, "SUBSCRIBED", "bulk_subscribe", true}
	unsubscribeKind = subscriptionJobKind{"unsubscribe", maxUnsubscribe, jobUnsubscribe, "UNSUBSCRIBED", "bulk_unsubscribe", false}
)

// POST /api/profile-subscription-bulk-create-jobs and -delete-jobs → 202,
// no body; applied after JobDelay: profiles found or created, consent set
// per channel, added to (subscribe) or removed from (unsubscribe) the list.
func (s *Sim) subscriptionJob(q *request, kind subscriptionJobKind) *response {
	var historical bool
	var source string
	if kind.subscribe {
		attrs := obj(q.body, "data", "attributes")
		historical, _ = attrs["historical_import"].(bool)
		source, _ = attrs["custom_source"].(string)
	}
	listID, _ := obj(q.body, "data", "relationships", "list", "data")["id"].(string)
	items, errs := subscriptionItems(q.body, historical, q.now)
	if len(items) > kind.max {
		errs = append([]APIError{invalid("/data/attributes/profiles/data", fmt.Sprintf("At most %d profiles per %s job; got %d.", kind.max, kind.verb, len(items)))}, errs...)
	}
	if len(errs) > 0 {
		r := errResp(errs...)
		r.items = len(items)
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	js := &JobState{ID: newID(), Type: kind.jobType, Status: "queued", Key: q.identity, CreatedAt: q.now,
		TotalCount: len(items), Errors: []ImportError{}}
	if listID != "" {
		js.Lists = []string{listID}
	}
	s.enqueueJob(s.data, js, func(st *store, now time.Time) {
		for _, it := range items {
			p, _, ue := st.upsert(subscriptionProfile(it.in), modeEvent, now)
			if ue != nil {
				js.FailedCount++
				js.Errors = append(js.Errors, importError(ue.err, nil))
				continue
			}
			for _, c := range it.changes {
				st.setConsent(p, c, kind.consent, kind.method, source, listID, historical, now)
			}
			switch {
			case listID == "":
			case kind.subscribe:
				st.addToList(listID, p)
			default:
				st.removeFromList(listID, p)
			}
			js.CompletedCount++
			js.Profiles = append(js.Profiles, p.id)
		}
	})
	return &response{status: 202, items: len(items)}
}

// POST/DELETE /api/lists/{id}/relationships/profiles → 204. Every profile
// id must exist (400 naming the item otherwise); the list is created on
// first use.
func (s *Sim) listMembers(q *request, add bool) *response {
	listID := q.params["id"]
	data := arr(q.body, "data")
	if len(data) > maxListMembers {
		r := errResp(invalid("/data", fmt.Sprintf("At most %d profiles per call; got %d.", maxListMembers, len(data))))
		r.items = len(data)
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []APIError
	ps := make([]*profile, 0, len(data))
	for i, d := range data {
		id, _ := obj(d)["id"].(string)
		p := s.data.profiles[id]
		if p == nil {
			errs = append(errs, invalid("/data/"+strconv.Itoa(i)+"/id", fmt.Sprintf("No profile with id %q.", id)))
			continue
		}
		ps = append(ps, p)
	}
	if len(errs) > 0 {
		r := errResp(errs...)
		r.items = len(data)
		return r
	}
	for _, p := range ps {
		if add {
			s.data.addToList(listID, p)
		} else {
			s.data.removeFromList(listID, p)
		}
	}
	return &response{status: 204, items: len(data)}
}

// POST /client/profiles → 202.
func (s *Sim) clientProfile(q *request) *response {
	pin := profileFrom(obj(q.body, "data"), "/data")
	if errs := pin.check(); len(errs) > 0 {
		return errResp(errs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, ue := s.data.upsert(pin, modeClient, q.now); ue != nil {
		return upsertFail(ue)
	}
	return &response{status: 202}
}

// POST /client/subscriptions → 202: subscribes the channels in
// subscriptions, or, without it, marketing on every channel the profile
// has an identifier for; adds to the list.
func (s *Sim) clientSubscription(q *request) *response {
	attrs := obj(q.body, "data", "attributes")
	source, _ := attrs["custom_source"].(string)
	listID, _ := obj(q.body, "data", "relationships", "list", "data")["id"].(string)
	pin := profileFrom(obj(attrs, "profile", "data"), "/data/attributes/profile/data")
	var errs []APIError
	for _, e := range pin.check() {
		if e.Source.Pointer != pin.ptr+"/attributes" {
			errs = append(errs, e)
		}
	}
	if pin.str("email") == "" && pin.str("phone_number") == "" {
		errs = append(errs, invalid(pin.ptr+"/attributes", "Either email or phone_number is required."))
	}
	subs := obj(pin.attrs, "subscriptions")
	changes, cerrs := parseSubscriptions(pin, subs, false, q.now)
	errs = append(errs, cerrs...)
	if len(errs) > 0 {
		return errResp(errs...)
	}
	if subs == nil {
		if pin.str("email") != "" {
			changes = append(changes, consentChange{channel: "email", kind: "marketing"})
		}
		if pin.str("phone_number") != "" {
			changes = append(changes, consentChange{channel: "sms", kind: "marketing"})
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, _, ue := s.data.upsert(pin, modeClient, q.now)
	if ue != nil {
		return upsertFail(ue)
	}
	for _, c := range changes {
		s.data.setConsent(p, c, "SUBSCRIBED", "client_subscription", source, listID, false, q.now)
	}
	s.data.addToList(listID, p)
	return &response{status: 202}
}
