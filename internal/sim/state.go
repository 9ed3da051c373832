package sim

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// State is the snapshot served at GET /_sim/state (DESIGN.md §8), plus
// relay additions: throttled, faulted, jobs, rejections and requestLog.
type State struct {
	Profiles []ProfileState `json:"profiles"`
	Events   []EventState   `json:"events"`
	// Lists maps list id → member profile ids, in the order they joined.
	Lists map[string][]string `json:"lists"`
	// Requests counts every request by "METHOD /path-template" (unknown
	// paths by their concrete path), whatever its answer.
	Requests map[string]int `json:"requests"`
	// Rejected counts answers that blame the request: 4xx other than 429.
	Rejected int `json:"rejected"`
	// Throttled counts 429s (rate limits and storms).
	Throttled int `json:"throttled"`
	// Faulted counts requests that got an injected fault.
	Faulted int `json:"faulted"`
	// Jobs are the bulk jobs, oldest first.
	Jobs []JobState `json:"jobs"`
	// Rejections are the last 100 rejected requests with their errors.
	Rejections []Rejection `json:"rejections"`
	// RequestLog is every request (up to Config.MaxRequestLog), oldest
	// first; RequestLogDropped counts those left out past the cap.
	RequestLog []RequestRecord `json:"requestLog,omitempty"`
	// Deleted are the profiles removed by data-privacy deletion jobs,
	// oldest first.
	Deleted           []DeletedProfile `json:"deleted,omitempty"`
	RequestLogDropped int              `json:"requestLogDropped,omitempty"`
}

// ProfileState is one profile.
type ProfileState struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	PhoneNumber string `json:"phone_number"`
	ExternalID  string `json:"external_id"`
	AnonymousID string `json:"anonymous_id"`
	// Attributes are the special attributes: first_name, last_name,
	// organization, locale, title, image, location.
	Attributes    map[string]any `json:"attributes"`
	Properties    map[string]any `json:"properties"`
	Subscriptions Subscriptions  `json:"subscriptions"`
	Lists         []string       `json:"lists"`
	Created       time.Time      `json:"created"`
	Updated       time.Time      `json:"updated"`
}

// Subscriptions are a profile's consent per channel.
type Subscriptions struct {
	Email *ChannelConsent `json:"email,omitempty"`
	SMS   *ChannelConsent `json:"sms,omitempty"`
}

// ChannelConsent is marketing (and for SMS transactional) consent.
type ChannelConsent struct {
	Marketing     *Consent `json:"marketing,omitempty"`
	Transactional *Consent `json:"transactional,omitempty"`
}

// Consent is the last consent change on one channel.
type Consent struct {
	// Consent is SUBSCRIBED or UNSUBSCRIBED.
	Consent string `json:"consent"`
	// ConsentedAt is the consent time given with a historical import, else
	// the time of the change.
	ConsentedAt      time.Time `json:"consented_at"`
	HistoricalImport bool      `json:"historical_import,omitempty"`
	// Method is the endpoint that made the change.
	Method       string `json:"method"`
	CustomSource string `json:"custom_source,omitempty"`
	ListID       string `json:"list_id,omitempty"`
}

// EventState is one stored event.
type EventState struct {
	Metric        string         `json:"metric"`
	UniqueID      string         `json:"unique_id"`
	ProfileID     string         `json:"profile_id"`
	Properties    map[string]any `json:"properties"`
	Value         *float64       `json:"value"`
	ValueCurrency string         `json:"value_currency,omitempty"`
	// Time is the event time, truncated to the second as Klaviyo does.
	Time time.Time `json:"time"`
	// Endpoint is the endpoint the event came through.
	Endpoint string `json:"endpoint"`
}

// JobState is a bulk job. Klaviyo only exposes profile import jobs
// (GET /api/profile-bulk-import-jobs/{id}); event and subscription jobs are
// visible here only.
type JobState struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Status string `json:"status"` // queued, processing, complete
	// Key is the KeyHash of the API key that created the job.
	Key            string     `json:"key"`
	CreatedAt      time.Time  `json:"created_at"`
	StartedAt      *time.Time `json:"started_at"`
	CompletedAt    *time.Time `json:"completed_at"`
	TotalCount     int        `json:"total_count"`
	CompletedCount int        `json:"completed_count"`
	FailedCount    int        `json:"failed_count"`
	// Errors are the per-item errors (profile import jobs), relay addition
	// mirroring Klaviyo's /import-errors.
	Errors   []ImportError `json:"errors"`
	Lists    []string      `json:"lists,omitempty"`
	Profiles []string      `json:"profiles,omitempty"` // ids created or updated
}

// ImportError is one failed item of a profile import job, as Klaviyo's
// import-error resource.
type ImportError struct {
	ID              string      `json:"id"`
	Code            string      `json:"code"`
	Title           string      `json:"title"`
	Detail          string      `json:"detail"`
	Source          ErrorSource `json:"source"`
	OriginalPayload any         `json:"original_payload,omitempty"`
}

// RequestRecord is one request as the simulator saw it.
type RequestRecord struct {
	// Time is the arrival time (Config.Clock).
	Time time.Time `json:"time"`
	// Answered is when the answer was about to be written: a client cannot
	// know of a 429 before then.
	Answered time.Time `json:"answered,omitzero"`
	// Endpoint is "METHOD /path-template".
	Endpoint string `json:"endpoint"`
	// Key is the KeyHash of the API key (of the company id on /client/*),
	// empty when none was given.
	Key string `json:"key"`
	// Status is the answer's status; 0 when the connection was reset or
	// the client gave up first.
	Status int `json:"status"`
	// RetryAfter is the Retry-After of a 429, in seconds.
	RetryAfter int `json:"retry_after,omitempty"`
	// Fault is the injected fault, if any: reset, timeout, error, storm.
	Fault string `json:"fault,omitempty"`
	// Items is the number of events/profiles in a bulk request.
	Items int `json:"items,omitempty"`
}

// Rejection is a rejected request and what was wrong with it.
type Rejection struct {
	Time     time.Time  `json:"time"`
	Endpoint string     `json:"endpoint"`
	Status   int        `json:"status"`
	Errors   []APIError `json:"errors"`
}

const maxRejections = 100

// requestLog holds counters and records; guarded by Sim.mu.
type requestLog struct {
	max        int
	records    []RequestRecord
	dropped    int
	counts     map[string]int
	rejected   int
	throttled  int
	faulted    int
	rejections []Rejection
}

func newRequestLog(max int) requestLog {
	return requestLog{max: max, counts: map[string]int{}}
}

func (l *requestLog) reset() { *l = newRequestLog(l.max) }

func (l *requestLog) add(rec RequestRecord, errs []APIError) {
	l.counts[rec.Endpoint]++
	if len(l.records) < l.max {
		l.records = append(l.records, rec)
	} else {
		l.dropped++
	}
	if rec.Fault != "" {
		l.faulted++
	}
	switch {
	case rec.Status == 429:
		l.throttled++
	case rec.Status >= 400 && rec.Status < 500 && rec.Fault == "":
		l.rejected++
		if len(l.rejections) == maxRejections {
			l.rejections = slices.Delete(l.rejections, 0, 1)
		}
		l.rejections = append(l.rejections, Rejection{Time: rec.Time, Endpoint: rec.Endpoint, Status: rec.Status, Errors: errs})
	}
}

// Requests returns a copy of the request log, oldest first.
func (s *Sim) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs.records)
}

// State returns a deep copy of the simulator's state, with the request log.
func (s *Sim) State() State { return s.state(true) }

func (s *Sim) state(withLog bool) State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.data
	out := State{
		Profiles:   make([]ProfileState, 0, len(st.order)),
		Events:     make([]EventState, 0, len(st.events)),
		Lists:      make(map[string][]string, len(st.lists)),
		Requests:   maps.Clone(s.reqs.counts),
		Rejected:   s.reqs.rejected,
		Throttled:  s.reqs.throttled,
		Faulted:    s.reqs.faulted,
		Jobs:       make([]JobState, 0, len(st.jobOrder)),
		Rejections: slices.Clone(s.reqs.rejections),
	}
	if out.Rejections == nil {
		out.Rejections = []Rejection{}
	}
	for _, p := range st.order {
		out.Profiles = append(out.Profiles, p.snapshot())
	}
	for _, e := range st.events {
		e.Properties = cloneMap(e.Properties)
		if e.Value != nil {
			v := *e.Value
			e.Value = &v
		}
		out.Events = append(out.Events, e)
	}
	for id, l := range st.lists {
		out.Lists[id] = append([]string{}, l.members...)
	}
	for _, j := range st.jobOrder {
		c := *j
		c.Errors = slices.Clone(j.Errors)
		c.Lists = slices.Clone(j.Lists)
		c.Profiles = slices.Clone(j.Profiles)
		out.Jobs = append(out.Jobs, c)
	}
	out.Deleted = slices.Clone(st.deleted)
	if withLog {
		out.RequestLog = slices.Clone(s.reqs.records)
		out.RequestLogDropped = s.reqs.dropped
	}
	return out
}

func (p *profile) snapshot() ProfileState {
	return ProfileState{
		ID: p.id, Email: p.email, PhoneNumber: p.phone, ExternalID: p.externalID, AnonymousID: p.anonymousID,
		Attributes: cloneMap(p.attrs), Properties: cloneMap(p.props), Subscriptions: p.subs.clone(),
		Lists: append([]string{}, p.lists...), Created: p.created, Updated: p.updated,
	}
}

func (s Subscriptions) clone() Subscriptions {
	cc := func(c *ChannelConsent) *ChannelConsent {
		if c == nil {
			return nil
		}
		out := &ChannelConsent{}
		if c.Marketing != nil {
			m := *c.Marketing
			out.Marketing = &m
		}
		if c.Transactional != nil {
			t := *c.Transactional
			out.Transactional = &t
		}
		return out
	}
	return Subscriptions{Email: cc(s.Email), SMS: cc(s.SMS)}
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	default:
		return x
	}
}

// marshalState renders the state for GET /_sim/state.
func (s *Sim) marshalState(withLog bool) ([]byte, error) {
	return json.Marshal(s.state(withLog))
}

// InFlightGrace is how long after a 429 was answered a request may still
// arrive without breaking its Retry-After: a request the client sent just
// before the 429 reached it (a concurrent caller's) cannot have honoured
// it. A client that ignored Retry-After sends for the whole window, so the
// grace hides nothing real.
const InFlightGrace = 100 * time.Millisecond

// RetryAfterViolations lists requests that ignored a Retry-After: a
// request to the same endpoint with the same key arriving after an earlier
// 429 was answered (plus InFlightGrace) but before the answer time plus its
// Retry-After. Tests of clients assert it is empty.
func RetryAfterViolations(recs []RequestRecord) []string {
	recs = slices.Clone(recs)
	// The log is in completion order; check in arrival order.
	slices.SortStableFunc(recs, func(a, b RequestRecord) int { return a.Time.Compare(b.Time) })
	type k struct{ endpoint, key string }
	type window struct{ from, until time.Time }
	blocked := map[k][]window{}
	var out []string
	for _, r := range recs {
		id := k{r.Endpoint, r.Key}
		for _, w := range blocked[id] {
			if r.Time.After(w.from.Add(InFlightGrace)) && r.Time.Before(w.until) {
				out = append(out, fmt.Sprintf("%s at %s: %v before the Retry-After ended at %s",
					r.Endpoint, r.Time.Format(time.RFC3339Nano), w.until.Sub(r.Time), w.until.Format(time.RFC3339Nano)))
				break
			}
		}
		if r.Status == 429 && r.RetryAfter > 0 {
			answered := r.Answered
			if answered.IsZero() {
				answered = r.Time
			}
			blocked[id] = append(blocked[id], window{answered, answered.Add(time.Duration(r.RetryAfter) * time.Second)})
		}
	}
	return out
}
