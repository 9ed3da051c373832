package klaviyo

import (
	"net/url"
	"strconv"
	"strings"
)

// Rendering ops as Klaviyo requests: the single call of `relay transform`
// (Op.Request) and the bulk jobs delivery sends (EventBulkJob,
// ProfileBulkImportJob, SubscribeJob, UnsubscribeJob). Bodies are typed
// values whose MarshalJSON writes the exact JSON:API document; empty
// fields are left out, never sent as null.

// Request renders the op as one non-bulk call. Path is relative to
// https://a.klaviyo.com; /client/* calls carry company_id=<publicApiKey>.
//
//   - OpEvent: POST /api/events.
//   - OpProfile: POST /api/profile-import (never with anonymous_id).
//   - OpClientProfile: POST /client/profiles?company_id=….
//   - OpSubscribe / OpUnsubscribe: a one-profile subscription bulk
//     create / delete job (Klaviyo has no single-profile server call).
//   - OpListAdd: a one-profile POST /api/profile-bulk-import-jobs with a
//     relationships.lists entry. The only single call that adds to a list,
//     POST /api/lists/{id}/relationships/profiles, takes Klaviyo profile
//     ids, which the mapping does not know; the import job matches the
//     profile by email, phone number or external_id and adds it to the
//     list without changing consent.
//
// An unknown Kind gives the zero Request.
func (o Op) Request(s Settings) Request {
	switch o.Kind {
	case OpEvent:
		return Request{Method: "POST", Path: "/api/events", Body: eventCreateBody(o.Profile, o.Event)}
	case OpProfile:
		return Request{Method: "POST", Path: "/api/profile-import", Body: &ProfileImportBody{Data: importProfileOf(o.Profile)}}
	case OpClientProfile:
		return Request{Method: "POST", Path: "/client/profiles", Query: "company_id=" + url.QueryEscape(s.PublicAPIKey),
			Body: &ClientProfileBody{Data: onsiteProfileOf(o.Profile)}}
	case OpSubscribe:
		return SubscribeJob(o.ListID, o.HistoricalImport, o.CustomSource, []Op{o})
	case OpUnsubscribe:
		return UnsubscribeJob(o.ListID, []Op{o})
	case OpListAdd:
		return ProfileBulkImportJob([]Op{o}, o.ListID)
	case OpClientEvent:
		return Request{Method: "POST", Path: "/client/events", Query: "company_id=" + url.QueryEscape(s.PublicAPIKey), Body: eventCreateBody(o.Profile, o.Event)}
	case OpClientSubscribe:
		return Request{Method: "POST", Path: "/client/subscriptions", Query: "company_id=" + url.QueryEscape(s.PublicAPIKey), Body: clientSubscriptionBody(o)}
	case OpListRemove:
		id := lookupPlaceholder
		if o.Profile != nil && o.Profile.ID != "" {
			id = o.Profile.ID
		}
		return ListRemoveRequest(o.ListID, []string{id})
	}
	return Request{}
}

// lookupPlaceholder stands, in `relay transform` output, for the profile
// id that the GET /api/profiles lookup before the DELETE returns.
const lookupPlaceholder = "<id found by the lookup above>"

// Requests renders the op as `relay transform` shows it: Request, preceded
// for a list removal without a Klaviyo profile id by the lookup that finds
// the id (delivery makes the same calls).
func (o Op) Requests(s Settings) []Request {
	if o.Kind == OpListRemove && o.Profile != nil && o.Profile.ID == "" {
		if field, value := o.LookupKey(); field != "" {
			return []Request{ProfileLookupRequest(field, value), o.Request(s)}
		}
	}
	return []Request{o.Request(s)}
}

// LookupKey is the identifier a list removal finds the profile by: email,
// else phone_number, else external_id.
func (o Op) LookupKey() (field, value string) {
	if o.Profile == nil {
		return "", ""
	}
	a := o.Profile.Attributes
	switch {
	case a.Email != "":
		return "email", a.Email
	case a.PhoneNumber != "":
		return "phone_number", a.PhoneNumber
	case a.ExternalID != "":
		return "external_id", a.ExternalID
	}
	return "", ""
}

// ProfileLookupRequest is GET /api/profiles?filter=equals(field,"value"),
// asking only for ids.
func ProfileLookupRequest(field, value string) Request {
	q := url.Values{}
	q.Set("filter", "equals("+field+","+strconv.Quote(value)+")")
	q.Set("fields[profile]", "id")
	return Request{Method: "GET", Path: "/api/profiles", Query: q.Encode()}
}

// ListRemoveRequest is DELETE /api/lists/{listID}/relationships/profiles
// for Klaviyo profile ids (at most 1,000 per call).
func ListRemoveRequest(listID string, ids []string) Request {
	body := &ListMembersBody{Data: make([]wireListMember, len(ids))}
	for i, id := range ids {
		body.Data[i] = wireListMember{Type: "profile", ID: id}
	}
	return Request{Method: "DELETE", Path: "/api/lists/" + url.PathEscape(listID) + "/relationships/profiles", Body: body}
}

// ClientSubscriptionBody is the body of POST /client/subscriptions
// (OnsiteSubscriptionCreateQuery).
type ClientSubscriptionBody struct {
	Data struct {
		Type       string `json:"type"` // "subscription"
		Attributes struct {
			CustomSource string                       `json:"custom_source,omitempty"`
			Profile      dataOf[wireClientSubProfile] `json:"profile"`
		} `json:"attributes"`
		Relationships struct {
			List dataOf[wireListRef] `json:"list"`
		} `json:"relationships"`
	} `json:"data"`
}

type wireClientSubProfile struct {
	Type       string `json:"type"` // "profile"
	Attributes struct {
		Email         string        `json:"email,omitempty"`
		PhoneNumber   string        `json:"phone_number,omitempty"`
		ExternalID    string        `json:"external_id,omitempty"`
		Subscriptions Subscriptions `json:"subscriptions"`
	} `json:"attributes"`
}

func clientSubscriptionBody(o Op) *ClientSubscriptionBody {
	b := &ClientSubscriptionBody{}
	b.Data.Type = "subscription"
	b.Data.Attributes.CustomSource = o.CustomSource
	p := profileOrEmpty(o.Profile)
	sp := &b.Data.Attributes.Profile.Data
	sp.Type = "profile"
	sp.Attributes.Email, sp.Attributes.PhoneNumber, sp.Attributes.ExternalID = p.Attributes.Email, p.Attributes.PhoneNumber, p.Attributes.ExternalID
	if p.Attributes.Subscriptions != nil {
		sp.Attributes.Subscriptions = *p.Attributes.Subscriptions
	}
	b.Data.Relationships.List.Data = wireListRef{Type: "list", ID: o.ListID}
	return b
}

// ListMembersBody is the body of the list relationship calls.
type ListMembersBody struct {
	Data []wireListMember `json:"data"`
}

type wireListMember struct {
	Type string `json:"type"` // "profile"
	ID   string `json:"id"`
}

// EventBulkJob renders event ops as POST /api/event-bulk-create-jobs.
// Item i of data.attributes.events-bulk-create.data is ops[i] (one item,
// holding its profile and one event, per op), so a Klaviyo error pointer
// /data/attributes/events-bulk-create/data/3/… names ops[3] (ItemIndex).
// The caller keeps within 1,000 ops, 5 MB, and unique unique_ids per job.
func EventBulkJob(ops []Op) Request {
	return Request{Method: "POST", Path: "/api/event-bulk-create-jobs", Body: eventBulkJobBody(ops)}
}

// ProfileBulkImportJob renders the profiles of ops (OpProfile or
// OpListAdd) as POST /api/profile-bulk-import-jobs, adding them to listID
// when it is not "". Profile i is ops[i] (pointer
// /data/attributes/profiles/data/i/…). anonymous_id is never sent: the
// import schema has none.
func ProfileBulkImportJob(ops []Op, listID string) Request {
	return Request{Method: "POST", Path: "/api/profile-bulk-import-jobs", Body: profileBulkImportBody(ops, listID)}
}

// SubscribeJob renders OpSubscribe ops of one list, historical flag and
// custom source as POST /api/profile-subscription-bulk-create-jobs.
// Profile i is ops[i]. listID "" subscribes without a list (the account's
// default opt-in applies).
func SubscribeJob(listID string, historical bool, customSource string, ops []Op) Request {
	return Request{Method: "POST", Path: "/api/profile-subscription-bulk-create-jobs",
		Body: subscriptionJobBody(ops, listID, historical, customSource, false)}
}

// UnsubscribeJob renders OpUnsubscribe ops of one list as
// POST /api/profile-subscription-bulk-delete-jobs. Profile i is ops[i].
// listID "" unsubscribes the channels account-wide.
func UnsubscribeJob(listID string, ops []Op) Request {
	return Request{Method: "POST", Path: "/api/profile-subscription-bulk-delete-jobs",
		Body: subscriptionJobBody(ops, listID, false, "", true)}
}

// ItemIndex extracts the item index from a Klaviyo error pointer into a
// bulk job built here: /data/attributes/events-bulk-create/data/<i>/… or
// /data/attributes/profiles/data/<i>/… (profile import and subscription
// jobs). i is the index into the ops the job was built from.
func ItemIndex(pointer string) (int, bool) {
	p := strings.TrimPrefix(pointer, "#")
	p = strings.TrimPrefix(p, "/")
	parts := strings.SplitN(p, "/", 6)
	if len(parts) < 5 || parts[0] != "data" || parts[1] != "attributes" || parts[3] != "data" {
		return 0, false
	}
	if parts[2] != "events-bulk-create" && parts[2] != "profiles" {
		return 0, false
	}
	i, err := strconv.Atoi(parts[4])
	if err != nil || i < 0 || parts[4][0] == '+' {
		return 0, false
	}
	return i, true
}

// The request documents are typed structs (encoding/json caches their
// encoders; no reflection over generic maps except inside Props, which
// writes itself). Field names and omitempty follow Klaviyo's schemas in
// internal/klaviyo/openapi: empty fields are left out, never null.

// Props are custom properties. They marshal with sorted keys through the
// package's append encoder (nil is {}).
type Props map[string]any

// MarshalJSON writes the object.
func (p Props) MarshalJSON() ([]byte, error) {
	return appendMap(make([]byte, 0, 64+32*len(p)), p)
}

type dataOf[T any] struct {
	Data T `json:"data"`
}

type metricRel = dataOf[wireMetric]

type wireMetric struct {
	Type       string `json:"type"` // "metric"
	Attributes struct {
		Name string `json:"name"`
	} `json:"attributes"`
}

func metricOf(name string) metricRel {
	m := metricRel{Data: wireMetric{Type: "metric"}}
	m.Data.Attributes.Name = name
	return m
}

// wireEventAttrs are an event's attributes (BaseEventCreateQueryBulkEntry).
type wireEventAttrs struct {
	Properties    Props     `json:"properties"`
	Time          string    `json:"time,omitempty"`
	Value         *float64  `json:"value,omitempty"`
	ValueCurrency string    `json:"value_currency,omitempty"`
	UniqueID      string    `json:"unique_id,omitempty"`
	Metric        metricRel `json:"metric"`
}

func eventAttrsOf(e *EventAttributes) wireEventAttrs {
	if e == nil {
		e = &EventAttributes{}
	}
	props := Props(e.Properties)
	if props == nil {
		props = Props{}
	}
	return wireEventAttrs{Properties: props, Time: e.Time, Value: e.Value, ValueCurrency: e.ValueCurrency,
		UniqueID: e.UniqueID, Metric: metricOf(e.Metric)}
}

// wireImportAttrs: ProfileUpsertQueryResourceObject attributes (no
// anonymous_id: /api/profile-import and bulk import take none).
type wireImportAttrs struct {
	Email        string    `json:"email,omitempty"`
	PhoneNumber  string    `json:"phone_number,omitempty"`
	ExternalID   string    `json:"external_id,omitempty"`
	FirstName    string    `json:"first_name,omitempty"`
	LastName     string    `json:"last_name,omitempty"`
	Organization string    `json:"organization,omitempty"`
	Title        string    `json:"title,omitempty"`
	Image        string    `json:"image,omitempty"`
	Location     *Location `json:"location,omitempty"`
	Properties   Props     `json:"properties,omitempty"`
}

// wireOnsiteAttrs add anonymous_id (OnsiteProfileCreateQueryResourceObject
// and the /api/events profile).
type wireOnsiteAttrs struct {
	AnonymousID string `json:"anonymous_id,omitempty"`
	wireImportAttrs
}

// wireEventProfileAttrs: the /api/events profile keeps meta inside its
// attributes (EventProfileCreateQueryResourceObject).
type wireEventProfileAttrs struct {
	wireOnsiteAttrs
	Meta *ProfileMeta `json:"meta,omitempty"`
}

type wireImportProfile struct {
	Type       string          `json:"type"`
	ID         string          `json:"id,omitempty"`
	Attributes wireImportAttrs `json:"attributes"`
	Meta       *ProfileMeta    `json:"meta,omitempty"`
}

type wireOnsiteProfile struct {
	Type       string          `json:"type"`
	ID         string          `json:"id,omitempty"`
	Attributes wireOnsiteAttrs `json:"attributes"`
	Meta       *ProfileMeta    `json:"meta,omitempty"`
}

type wireEventProfile struct {
	Type       string                `json:"type"`
	ID         string                `json:"id,omitempty"`
	Attributes wireEventProfileAttrs `json:"attributes"`
}

// wireSubProfile: subscription job profiles (the delete job's schema has
// no id, so ID stays empty there).
type wireSubProfile struct {
	Type       string `json:"type"`
	ID         string `json:"id,omitempty"`
	Attributes struct {
		Email         string        `json:"email,omitempty"`
		PhoneNumber   string        `json:"phone_number,omitempty"`
		Subscriptions Subscriptions `json:"subscriptions"`
	} `json:"attributes"`
}

func profileOrEmpty(p *Profile) *Profile {
	if p == nil {
		return &Profile{}
	}
	return p
}

func metaOf(m *ProfileMeta) *ProfileMeta {
	if !metaPresent(m) {
		return nil
	}
	return m
}

func metaPresent(m *ProfileMeta) bool {
	if m == nil || m.PatchProperties == nil {
		return false
	}
	pp := m.PatchProperties
	return len(pp.Append) > 0 || len(pp.Unappend) > 0 || len(pp.Unset) > 0
}

func importAttrsOf(a *ProfileAttributes) wireImportAttrs {
	return wireImportAttrs{Email: a.Email, PhoneNumber: a.PhoneNumber, ExternalID: a.ExternalID,
		FirstName: a.FirstName, LastName: a.LastName, Organization: a.Organization, Title: a.Title,
		Image: a.Image, Location: a.Location, Properties: Props(a.Properties)}
}

func importProfileOf(p *Profile) wireImportProfile {
	p = profileOrEmpty(p)
	return wireImportProfile{Type: "profile", ID: p.ID, Attributes: importAttrsOf(&p.Attributes), Meta: metaOf(p.Meta)}
}

func onsiteProfileOf(p *Profile) wireOnsiteProfile {
	p = profileOrEmpty(p)
	return wireOnsiteProfile{Type: "profile", ID: p.ID, Meta: metaOf(p.Meta),
		Attributes: wireOnsiteAttrs{AnonymousID: p.Attributes.AnonymousID, wireImportAttrs: importAttrsOf(&p.Attributes)}}
}

func eventProfileOf(p *Profile) wireEventProfile {
	p = profileOrEmpty(p)
	return wireEventProfile{Type: "profile", ID: p.ID, Attributes: wireEventProfileAttrs{
		wireOnsiteAttrs: wireOnsiteAttrs{AnonymousID: p.Attributes.AnonymousID, wireImportAttrs: importAttrsOf(&p.Attributes)},
		Meta:            metaOf(p.Meta)}}
}

func subProfileOf(p *Profile, withID bool) wireSubProfile {
	p = profileOrEmpty(p)
	w := wireSubProfile{Type: "profile"}
	if withID {
		w.ID = p.ID
	}
	w.Attributes.Email, w.Attributes.PhoneNumber = p.Attributes.Email, p.Attributes.PhoneNumber
	if p.Attributes.Subscriptions != nil {
		w.Attributes.Subscriptions = *p.Attributes.Subscriptions
	}
	return w
}

// EventCreateBody is the body of POST /api/events:
// {"data":{"type":"event","attributes":{properties, time, value,
// value_currency, unique_id, metric, profile}}}.
type EventCreateBody struct {
	Data struct {
		Type       string `json:"type"` // "event"
		Attributes struct {
			wireEventAttrs
			Profile dataOf[wireEventProfile] `json:"profile"`
		} `json:"attributes"`
	} `json:"data"`
}

func eventCreateBody(p *Profile, e *EventAttributes) *EventCreateBody {
	b := &EventCreateBody{}
	b.Data.Type = "event"
	b.Data.Attributes.wireEventAttrs = eventAttrsOf(e)
	b.Data.Attributes.Profile.Data = eventProfileOf(p)
	return b
}

// ProfileImportBody is the body of POST /api/profile-import.
type ProfileImportBody = dataOf[wireImportProfile]

// ClientProfileBody is the body of POST /client/profiles (anonymous_id
// allowed).
type ClientProfileBody = dataOf[wireOnsiteProfile]

// EventBulkJobBody is the body of POST /api/event-bulk-create-jobs.
type EventBulkJobBody struct {
	Data struct {
		Type       string `json:"type"` // "event-bulk-create-job"
		Attributes struct {
			EventsBulkCreate dataOf[[]wireEventBulkItem] `json:"events-bulk-create"`
		} `json:"attributes"`
	} `json:"data"`
}

type wireEventBulkItem struct {
	Type       string `json:"type"` // "event-bulk-create"
	Attributes struct {
		Profile dataOf[wireOnsiteProfile] `json:"profile"`
		Events  dataOf[[1]wireEventEntry] `json:"events"`
	} `json:"attributes"`
}

type wireEventEntry struct {
	Type       string         `json:"type"` // "event"
	Attributes wireEventAttrs `json:"attributes"`
}

func eventBulkJobBody(ops []Op) *EventBulkJobBody {
	b := &EventBulkJobBody{}
	b.Data.Type = "event-bulk-create-job"
	items := make([]wireEventBulkItem, len(ops))
	for i := range ops {
		it := &items[i]
		it.Type = "event-bulk-create"
		it.Attributes.Profile.Data = onsiteProfileOf(ops[i].Profile)
		it.Attributes.Events.Data[0] = wireEventEntry{Type: "event", Attributes: eventAttrsOf(ops[i].Event)}
	}
	b.Data.Attributes.EventsBulkCreate.Data = items
	return b
}

type wireListRef struct {
	Type string `json:"type"` // "list"
	ID   string `json:"id"`
}

// ProfileBulkImportBody is the body of POST /api/profile-bulk-import-jobs.
type ProfileBulkImportBody struct {
	Data struct {
		Type       string `json:"type"` // "profile-bulk-import-job"
		Attributes struct {
			Profiles dataOf[[]wireImportProfile] `json:"profiles"`
		} `json:"attributes"`
		Relationships *struct {
			Lists dataOf[[]wireListRef] `json:"lists"`
		} `json:"relationships,omitempty"`
	} `json:"data"`
}

func profileBulkImportBody(ops []Op, listID string) *ProfileBulkImportBody {
	b := &ProfileBulkImportBody{}
	b.Data.Type = "profile-bulk-import-job"
	profiles := make([]wireImportProfile, len(ops))
	for i := range ops {
		profiles[i] = importProfileOf(ops[i].Profile)
	}
	b.Data.Attributes.Profiles.Data = profiles
	if listID != "" {
		b.Data.Relationships = &struct {
			Lists dataOf[[]wireListRef] `json:"lists"`
		}{Lists: dataOf[[]wireListRef]{Data: []wireListRef{{Type: "list", ID: listID}}}}
	}
	return b
}

// SubscriptionJobBody is the body of a subscription bulk create job, or
// (type profile-subscription-bulk-delete-job) of a bulk delete job.
type SubscriptionJobBody struct {
	Data struct {
		Type       string `json:"type"`
		Attributes struct {
			CustomSource     string                   `json:"custom_source,omitempty"`
			HistoricalImport bool                     `json:"historical_import,omitempty"`
			Profiles         dataOf[[]wireSubProfile] `json:"profiles"`
		} `json:"attributes"`
		Relationships *struct {
			List dataOf[wireListRef] `json:"list"`
		} `json:"relationships,omitempty"`
	} `json:"data"`
}

func subscriptionJobBody(ops []Op, listID string, historical bool, customSource string, unsubscribe bool) *SubscriptionJobBody {
	b := &SubscriptionJobBody{}
	b.Data.Type = "profile-subscription-bulk-create-job"
	if unsubscribe {
		// The delete job takes neither a custom source nor historical_import.
		b.Data.Type = "profile-subscription-bulk-delete-job"
		historical, customSource = false, ""
	}
	b.Data.Attributes.CustomSource, b.Data.Attributes.HistoricalImport = customSource, historical
	profiles := make([]wireSubProfile, len(ops))
	for i := range ops {
		profiles[i] = subProfileOf(ops[i].Profile, !unsubscribe)
	}
	b.Data.Attributes.Profiles.Data = profiles
	if listID != "" {
		b.Data.Relationships = &struct {
			List dataOf[wireListRef] `json:"list"`
		}{List: dataOf[wireListRef]{Data: wireListRef{Type: "list", ID: listID}}}
	}
	return b
}
