package sim

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

var (
	emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	phoneRE = regexp.MustCompile(`^\+[1-9]\d{1,14}$`)
)

// specialAttrs are a profile's non-identifier attributes kept beside
// custom properties.
var specialAttrs = []string{"first_name", "last_name", "organization", "locale", "title", "image", "location"}

type profile struct {
	id                                    string
	email, phone, externalID, anonymousID string
	attrs                                 map[string]any
	props                                 map[string]any
	subs                                  Subscriptions
	lists                                 []string
	created, updated                      time.Time
}

type list struct {
	members []string
	in      map[string]bool
}

// store is the simulator's data; guarded by Sim.mu.
type store struct {
	gen       uuid.UUID // identifies this store, so jobs created before a Reset do nothing after it
	profiles  map[string]*profile
	order     []*profile
	byEmail   map[string]*profile // lower-cased
	byPhone   map[string]*profile
	byExt     map[string]*profile
	byAnon    map[string]*profile
	events    []EventState
	eventKeys map[string]bool
	lists     map[string]*list
	listOrder []string
	jobs      map[string]*JobState
	jobOrder  []*JobState
	deleted   []DeletedProfile
}

func newStore() *store {
	return &store{
		gen:      uuid.New(),
		profiles: map[string]*profile{}, byEmail: map[string]*profile{}, byPhone: map[string]*profile{},
		byExt: map[string]*profile{}, byAnon: map[string]*profile{}, eventKeys: map[string]bool{},
		lists: map[string]*list{}, jobs: map[string]*JobState{},
	}
}

// newID returns a 26-character Crockford base32 id, like Klaviyo's profile
// ids (01GDDKASAP8TKDDA2GRZDSVP4H): a UUIDv7, so ids sort by creation.
func newID() string {
	u, err := uuid.NewV7()
	if err != nil {
		u = uuid.New()
	}
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var out [26]byte
	// 128 bits as 26 base32 digits (the first digit holds 3 bits).
	hi := uint64(u[0])<<56 | uint64(u[1])<<48 | uint64(u[2])<<40 | uint64(u[3])<<32 | uint64(u[4])<<24 | uint64(u[5])<<16 | uint64(u[6])<<8 | uint64(u[7])
	lo := uint64(u[8])<<56 | uint64(u[9])<<48 | uint64(u[10])<<40 | uint64(u[11])<<32 | uint64(u[12])<<24 | uint64(u[13])<<16 | uint64(u[14])<<8 | uint64(u[15])
	for i := 25; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | (hi&31)<<59
		hi >>= 5
	}
	return string(out[:])
}

// profileIn is a profile resource taken from a request.
type profileIn struct {
	ptr   string // JSON pointer of the resource object
	id    string
	attrs map[string]any
	meta  map[string]any
}

func profileFrom(res map[string]any, ptr string) profileIn {
	in := profileIn{ptr: ptr, attrs: obj(res, "attributes"), meta: obj(res, "meta")}
	if id, ok := res["id"].(string); ok {
		in.id = id
	}
	if in.meta == nil {
		// Event profiles carry meta inside attributes.
		in.meta = obj(in.attrs, "meta")
	}
	if in.attrs == nil {
		in.attrs = map[string]any{}
	}
	return in
}

func (in profileIn) str(k string) string {
	s, _ := in.attrs[k].(string)
	return s
}

// check applies Klaviyo's checks on identifiers that the schema cannot:
// emails look like emails, phone numbers are E.164, and some identifier is
// present.
func (in profileIn) check() []APIError {
	var errs []APIError
	if e := in.str("email"); e != "" && !emailRE.MatchString(e) {
		errs = append(errs, invalid(in.ptr+"/attributes/email", fmt.Sprintf("Invalid email address %q.", e)))
	}
	if p := in.str("phone_number"); p != "" && !phoneRE.MatchString(p) {
		errs = append(errs, invalid(in.ptr+"/attributes/phone_number",
			fmt.Sprintf("Invalid phone number format %q (Example of a valid format: +12345678901).", p)))
	}
	if in.id == "" && in.str("email") == "" && in.str("phone_number") == "" && in.str("external_id") == "" && in.str("anonymous_id") == "" {
		errs = append(errs, invalid(in.ptr+"/attributes",
			"A profile identifier is required: one of id, email, phone_number, external_id or anonymous_id."))
	}
	return errs
}

type upsertMode int

const (
	// modeImport: /api/profile-import, bulk import, PATCH. Identifiers of
	// two different profiles → 409 duplicate_profile; null clears.
	modeImport upsertMode = iota
	// modeCreate: POST /api/profiles. Any existing identifier → 409.
	modeCreate
	// modeEvent: server events and subscription jobs. The first profile
	// found (id, email, phone_number, external_id, anonymous_id) wins; an
	// identifier owned by another profile is not moved.
	modeEvent
	// modeClient: /client/*. Identifiers of an existing profile are not
	// changed (Klaviyo: "the identifier field(s) will not be updated"),
	// only filled in when empty.
	modeClient
)

var identifierKeys = []string{"email", "phone_number", "external_id", "anonymous_id"}

func (st *store) index(k string) map[string]*profile {
	switch k {
	case "email":
		return st.byEmail
	case "phone_number":
		return st.byPhone
	case "external_id":
		return st.byExt
	default:
		return st.byAnon
	}
}

func indexKey(k, v string) string {
	if k == "email" {
		return strings.ToLower(v)
	}
	return v
}

func (p *profile) ident(k string) *string {
	switch k {
	case "email":
		return &p.email
	case "phone_number":
		return &p.phone
	case "external_id":
		return &p.externalID
	default:
		return &p.anonymousID
	}
}

// upsertError is a conflict or a missing profile found while upserting.
type upsertError struct {
	err APIError
}

// upsert finds or creates the profile in, updates it and reports whether
// it was created.
func (st *store) upsert(in profileIn, mode upsertMode, now time.Time) (*profile, bool, *upsertError) {
	var p *profile
	if in.id != "" {
		p = st.profiles[in.id]
		if p == nil {
			e := invalid(in.ptr+"/id", fmt.Sprintf("No profile with id %q.", in.id))
			return nil, false, &upsertError{e}
		}
	}
	var found []*profile
	for _, k := range identifierKeys {
		v, _ := in.attrs[k].(string)
		if v == "" {
			continue
		}
		if q := st.index(k)[indexKey(k, v)]; q != nil && !slices.Contains(found, q) {
			found = append(found, q)
		}
	}
	switch mode {
	case modeCreate:
		if len(found) > 0 {
			return nil, false, &upsertError{duplicate(in.ptr+"/attributes", found[0].id)}
		}
	case modeImport:
		others := slices.DeleteFunc(slices.Clone(found), func(q *profile) bool { return q == p })
		if (p != nil && len(others) > 0) || (p == nil && len(others) > 1) {
			return nil, false, &upsertError{duplicate(in.ptr+"/attributes", others[0].id)}
		}
		if p == nil && len(found) == 1 {
			p = found[0]
		}
	default:
		if p == nil && len(found) > 0 {
			p = found[0]
		}
	}
	created := false
	if p == nil {
		p = &profile{id: newID(), attrs: map[string]any{}, props: map[string]any{}, created: now}
		st.profiles[p.id] = p
		st.order = append(st.order, p)
		created = true
	}
	for _, k := range identifierKeys {
		raw, present := in.attrs[k]
		if !present {
			continue
		}
		cur := p.ident(k)
		v, _ := raw.(string)
		if raw == nil || v == "" {
			if mode == modeImport && raw == nil && *cur != "" {
				delete(st.index(k), indexKey(k, *cur))
				*cur = ""
			}
			continue
		}
		if k == "email" {
			v = strings.ToLower(strings.TrimSpace(v)) // Klaviyo keeps emails lower-cased
		}
		if q := st.index(k)[indexKey(k, v)]; q != nil && q != p {
			continue // modeEvent/modeClient: owned by another profile
		}
		if mode == modeClient && !created && *cur != "" {
			continue
		}
		if *cur != "" {
			delete(st.index(k), indexKey(k, *cur))
		}
		*cur = v
		st.index(k)[indexKey(k, v)] = p
	}
	applyAttributes(p, in.attrs, in.meta)
	p.updated = now
	return p, created, nil
}

func duplicate(ptr, id string) APIError {
	e := newErr(409, "duplicate_profile", "Conflict.", "A profile already exists with one of these identifiers.")
	e.Source = &ErrorSource{Pointer: ptr}
	e.Meta = map[string]any{"duplicate_profile_id": id}
	return e
}

// applyAttributes merges special attributes and custom properties (null
// clears, as Klaviyo documents) and applies meta.patch_properties.
func applyAttributes(p *profile, attrs, meta map[string]any) {
	for _, k := range specialAttrs {
		v, ok := attrs[k]
		if !ok {
			continue
		}
		if v == nil {
			delete(p.attrs, k)
			continue
		}
		if k == "location" {
			loc, _ := p.attrs["location"].(map[string]any)
			if loc == nil {
				loc = map[string]any{}
			}
			for lk, lv := range obj(attrs, "location") {
				if lv == nil {
					delete(loc, lk)
				} else {
					loc[lk] = lv
				}
			}
			p.attrs["location"] = loc
			continue
		}
		p.attrs[k] = v
	}
	for k, v := range obj(attrs, "properties") {
		if v == nil {
			delete(p.props, k)
		} else {
			p.props[k] = v
		}
	}
	pp := obj(meta, "patch_properties")
	for k, v := range obj(pp, "append") {
		cur := asList(p.props[k])
		p.props[k] = append(cur, asItems(v)...)
	}
	for k, v := range obj(pp, "unappend") {
		cur := asList(p.props[k])
		if cur == nil {
			continue
		}
		for _, item := range asItems(v) {
			cur = slices.DeleteFunc(cur, func(x any) bool { return equalJSON(x, item) })
		}
		p.props[k] = cur
	}
	switch u := pp["unset"].(type) {
	case string:
		delete(p.props, u)
	case []any:
		for _, k := range u {
			if s, ok := k.(string); ok {
				delete(p.props, s)
			}
		}
	}
}

// asList is a property as a list to append to: absent → empty, a scalar →
// a one-element list.
func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return []any{}
	case []any:
		return slices.Clone(x)
	default:
		return []any{x}
	}
}

func asItems(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func equalJSON(a, b any) bool {
	if an, ok := a.(json.Number); ok {
		if bn, ok := b.(json.Number); ok {
			af, _ := an.Float64()
			bf, _ := bn.Float64()
			return af == bf
		}
	}
	return reflect.DeepEqual(a, b)
}

// addEvent stores an event unless Klaviyo would drop it as a duplicate:
// same profile, metric and unique_id (which defaults to the event time to
// the second). It reports whether the event was stored.
func (st *store) addEvent(ev EventState) bool {
	uid := ev.UniqueID
	if uid == "" {
		uid = "time:" + ev.Time.UTC().Format(time.RFC3339)
	}
	key := ev.ProfileID + "\x00" + ev.Metric + "\x00" + uid
	if st.eventKeys[key] {
		return false
	}
	st.eventKeys[key] = true
	st.events = append(st.events, ev)
	return true
}

func (st *store) list(id string) *list {
	l := st.lists[id]
	if l == nil {
		l = &list{in: map[string]bool{}}
		st.lists[id] = l
		st.listOrder = append(st.listOrder, id)
	}
	return l
}

func (st *store) addToList(listID string, p *profile) {
	l := st.list(listID)
	if l.in[p.id] {
		return
	}
	l.in[p.id] = true
	l.members = append(l.members, p.id)
	p.lists = append(p.lists, listID)
}

func (st *store) removeFromList(listID string, p *profile) {
	l := st.list(listID)
	if !l.in[p.id] {
		return
	}
	delete(l.in, p.id)
	l.members = slices.DeleteFunc(l.members, func(id string) bool { return id == p.id })
	p.lists = slices.DeleteFunc(p.lists, func(id string) bool { return id == listID })
}

// obj walks nested JSON objects; nil when any step is missing.
func obj(v any, keys ...string) map[string]any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		if m == nil {
			return nil
		}
		v = m[k]
	}
	m, _ := v.(map[string]any)
	return m
}

// arr is the array at a path of nested objects.
func arr(v any, keys ...string) []any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		if m == nil {
			return nil
		}
		v = m[k]
	}
	a, _ := v.([]any)
	return a
}
