package klaviyo

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Profile building (DESIGN.md §6.1): identifiers, special attributes from
// the seed 001 trait table (with RudderStack's spellings), location, and
// custom properties.

// profileInput says where a profile's data comes from.
type profileInput struct {
	// traits: identify = traits then context.traits; other calls =
	// context.traits. field is the name used in error messages.
	traits map[string]any
	field  string
	// props are the event's properties: properties.email / properties.phone
	// identify the profile of a track call (seeds 000, 001, 004). A group
	// call passes its own traits here (propsField "traits").
	props      map[string]any
	propsField string
	// forEvent allows anonymous_id (the /api/events profile takes it;
	// /api/profile-import does not since revision 2025-10-15).
	forEvent bool
}

// consumedTrait reports whether a trait key becomes a special attribute
// (or an option) and therefore not a custom property. (A switch, not a
// map: it is asked for every trait of every event, and hashing each key
// cost more than comparing it.)
func consumedTrait(k string) bool {
	switch k {
	case "email", "phone", "phoneNumber", "phone_number",
		"firstName", "first_name", "firstname",
		"lastName", "last_name", "lastname",
		"title", "organization",
		"avatar", "image",
		"street", "address1", "address2", "city",
		"region", "state", "country", "zip",
		"postalCode", "postal_code", "timezone",
		"latitude", "longitude",
		// identifiers carried by the event itself, and RudderStack's options
		"userId", "anonymousId",
		"properties", "consent", "smsConsent":
		return true
	}
	return false
}

// buildProfile builds the profile of §6.1. It does not check that the
// profile has an identifier: what counts depends on the call.
func (m *mapper) buildProfile(in profileInput) (*Profile, error) {
	ev, s := m.ev, m.s
	p := &Profile{Type: "profile"}
	a := &p.Attributes
	t := in.traits

	// email: traits.email, properties.email, else userId when it is one.
	email, err := m.emailFrom(t, in.field)
	if err != nil {
		return nil, err
	}
	propsField := in.propsField
	if propsField == "" {
		propsField = "properties"
	}
	if email == "" && in.props != nil {
		if email, err = m.emailFrom(in.props, propsField); err != nil {
			return nil, err
		}
	}
	if email == "" && isEmail(ev.UserID) {
		email = ev.UserID
	}
	a.Email = email

	// phone_number, normalised to E.164.
	if err := m.phoneFrom(a, t, in.field, "phone", "phoneNumber", "phone_number"); err != nil {
		return nil, err
	}
	if a.PhoneNumber == "" && in.props != nil {
		if err := m.phoneFrom(a, in.props, propsField, "phone", "phone_number"); err != nil {
			return nil, err
		}
	}

	if utf8.RuneCountInString(ev.UserID) > maxExternalIDLen {
		return nil, &MapError{Code: CodeInvalidValue, Field: "userId",
			Message: "userId is " + strconv.Itoa(utf8.RuneCountInString(ev.UserID)) + " characters long: Klaviyo's external_id takes at most 255"}
	}
	if !s.EnforceEmailAsPrimary {
		a.ExternalID = ev.UserID
	}
	if in.forEvent && s.FallbackOnAnonymousID && ev.UserID == "" {
		a.AnonymousID = ev.AnonymousID
	}
	p.ID = klaviyoProfileID(ev.Context)

	if err := m.specialAttributes(a, t, in.field); err != nil {
		return nil, err
	}

	props, err := m.customProperties(t, in.field)
	if err != nil {
		return nil, err
	}
	if s.EnforceEmailAsPrimary && ev.UserID != "" {
		props = m.userIDProperty(props, in.field)
	}
	a.Properties = props
	p.Meta = m.patch
	return p, nil
}

// maxExternalIDLen is Klaviyo's limit on external_id (peers.md §2,
// Segment Actions: "external_id must be ≤255 characters").
const maxExternalIDLen = 255

// userIDProperty stores the userId under the userIdProperty setting ("id"
// as Segment documents, "_id" as RudderStack does). A trait of that name
// is the user's own data: it is kept, and the collision is reported.
func (m *mapper) userIDProperty(props map[string]any, field string) map[string]any {
	key := m.s.UserIDProperty
	if key == "" {
		key = "id"
	}
	if have, ok := props[key]; ok {
		if str, _ := scalarString(have); str != m.ev.UserID {
			m.warn(field + "." + key + " is kept: enforceEmailAsPrimary would store the userId there (userIdProperty " + quoteShort(key) + "); the userId was not stored")
		}
		return props
	}
	if props == nil {
		props = map[string]any{}
	}
	props[key] = m.ev.UserID
	return props
}

// emailFrom reads m[email] as an email address.
func (m *mapper) emailFrom(t map[string]any, field string) (string, error) {
	v, ok := present(t, "email")
	if !ok {
		return "", nil
	}
	str, ok := v.(string)
	if !ok {
		return "", typeErr(field+".email", "a string", v)
	}
	str = strings.TrimSpace(str)
	if str == "" {
		return "", nil
	}
	if !isEmail(str) {
		return "", &MapError{Code: CodeInvalidValue, Field: field + ".email",
			Message: field + ".email " + quoteShort(str) + " is not an email address Klaviyo accepts (it needs a domain with a dot, no empty labels, and a top-level domain of two or more letters)"}
	}
	return str, nil
}

// phoneFrom sets a.PhoneNumber from the first of keys in t, normalised to
// E.164 with defaultPhoneCountry. An unparseable number is an error with
// strictPhone, otherwise it is dropped with a warning.
func (m *mapper) phoneFrom(a *ProfileAttributes, t map[string]any, field string, keys ...string) error {
	k, v, ok := firstPresent(t, keys...)
	if !ok {
		return nil
	}
	raw, ok := scalarString(v)
	if !ok {
		return typeErr(field+"."+k, "a string", v)
	}
	if strings.TrimSpace(raw) == "" {
		return nil
	}
	region := m.phoneRegion()
	e164, ok := m.phones.normalize(raw, region)
	if ok {
		a.PhoneNumber = e164
		return nil
	}
	why := "is not a valid phone number"
	if !strings.HasPrefix(strings.TrimSpace(raw), "+") && region == "" {
		why += " (no country code, and no defaultPhoneCountry is set)"
	}
	if m.s.StrictPhone {
		return &MapError{Code: CodeInvalidPhone, Field: field + "." + k, Message: field + "." + k + " " + why}
	}
	m.warn(field + "." + k + " " + why + "; the phone number was dropped")
	return nil
}

// phoneRegion is the region national phone numbers are read in:
// integrations.Klaviyo.phoneCountry, then the user's traits'
// country_code (Segment Actions' field), then defaultPhoneCountry. An
// unknown region is reported once and skipped.
func (m *mapper) phoneRegion() string {
	if m.regionDone {
		return m.region
	}
	region := m.s.DefaultPhoneCountry
	type source struct {
		v     any
		field string
	}
	var sources []source
	if v, ok := m.opt("phoneCountry"); ok {
		sources = append(sources, source{v, "integrations.Klaviyo.phoneCountry"})
	}
	// The user's traits, read in place (userTraits merges, allocating):
	// an identify's own traits win over its context.traits.
	ctxTraits, _ := m.ev.Context["traits"].(map[string]any)
	if v, ok := present(m.ev.Traits, "country_code"); ok && m.ev.Type == "identify" {
		sources = append(sources, source{v, "traits.country_code"})
	} else if v, ok := present(ctxTraits, "country_code"); ok {
		sources = append(sources, source{v, "context.traits.country_code"})
	}
	for _, src := range sources {
		str, _ := src.v.(string)
		code := strings.ToUpper(strings.TrimSpace(str))
		if code != "" && phonenumbers.GetCountryCodeForRegion(code) != 0 {
			region = code
			break
		}
		m.warn(src.field + " is not an ISO 3166 region code such as US; it was not used to read the phone number")
	}
	m.region, m.regionDone = region, true
	return region
}

// phoneCache remembers normalizePhone's answers within one stream of
// events (`relay transform` on a file): a file repeats its users' numbers,
// and phonenumbers' parsing and validation (regular expressions over the
// region's metadata) cost more than the rest of an identify's mapping
// (BenchmarkNormalizePhone). The answer depends only on the raw string and
// the region, so a cached one is the same answer. Bounded: it is emptied
// when full, so memory stays constant however many distinct numbers pass.
type phoneCache struct {
	m map[phoneKey]phoneAnswer
}

type phoneKey struct{ raw, region string }

type phoneAnswer struct {
	e164 string
	ok   bool
}

// phoneCacheMax bounds the cache (~100 bytes an entry).
const phoneCacheMax = 8192

// normalize is normalizePhone, remembered; a nil cache remembers nothing.
func (c *phoneCache) normalize(raw, region string) (string, bool) {
	if c == nil {
		return normalizePhone(raw, region)
	}
	k := phoneKey{raw, region}
	if a, ok := c.m[k]; ok {
		return a.e164, a.ok
	}
	e164, ok := normalizePhone(raw, region)
	if c.m == nil || len(c.m) >= phoneCacheMax {
		c.m = make(map[phoneKey]phoneAnswer)
	}
	// The strings may be slices of a whole event's bytes (spec's one
	// copy of each event); the cache outlives the event and keeps only
	// their own bytes.
	k.raw, e164 = strings.Clone(k.raw), strings.Clone(e164)
	c.m[k] = phoneAnswer{e164, ok}
	return e164, ok
}

// normalizePhone returns the E.164 form of a valid phone number. Numbers
// without a country code need region.
func normalizePhone(raw, region string) (string, bool) {
	s := strings.TrimSpace(raw)
	if region == "" {
		region = "ZZ" // unknown region: only +<country code> numbers parse
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", false
	}
	return phonenumbers.Format(num, phonenumbers.E164), true
}

// klaviyoProfileID is context.externalId[type=klaviyo-profileId].id.
func klaviyoProfileID(ctx map[string]any) string {
	list, ok := ctx["externalId"].([]any)
	if !ok {
		return ""
	}
	for _, e := range list {
		obj, ok := e.(map[string]any)
		if !ok {
			continue
		}
		if typ, _ := obj["type"].(string); strings.EqualFold(typ, "klaviyo-profileId") {
			if id, ok := scalarString(obj["id"]); ok {
				return id
			}
		}
	}
	return ""
}

// specialAttributes fills names, title, organization, image and location.
func (m *mapper) specialAttributes(a *ProfileAttributes, t map[string]any, field string) error {
	if len(t) == 0 {
		loc, err := m.location(t, field)
		a.Location = loc
		return err
	}
	var err error
	str := func(keys ...string) string {
		if err != nil {
			return ""
		}
		k, v, ok := firstPresent(t, keys...)
		if !ok {
			return ""
		}
		s, ok := scalarString(v)
		if !ok {
			err = typeErr(field+"."+k, "a string", v)
			return ""
		}
		return strings.TrimSpace(s)
	}
	a.FirstName = str("firstName", "first_name", "firstname")
	a.LastName = str("lastName", "last_name", "lastname")
	if name := str("name"); name != "" && (a.FirstName == "" || a.LastName == "") {
		first, rest, _ := strings.Cut(strings.Join(strings.Fields(name), " "), " ")
		if a.FirstName == "" {
			a.FirstName = first
			if a.LastName == "" {
				a.LastName = rest
			}
		}
	}
	a.Title = str("title")
	a.Organization = str("organization")
	if a.Organization == "" {
		switch c := t["company"].(type) {
		case string:
			a.Organization = strings.TrimSpace(c)
		case map[string]any:
			if n, ok := c["name"].(string); ok {
				a.Organization = strings.TrimSpace(n)
			}
		}
	}
	a.Image = str("avatar", "image")
	if err != nil {
		return err
	}
	loc, err := m.location(t, field)
	if err != nil {
		return err
	}
	a.Location = loc
	return nil
}

// location reads location fields at the top level of the traits, then
// under traits.address (an object, or a string taken as address1).
func (m *mapper) location(t map[string]any, field string) (*Location, error) {
	if !hasLocationKey(t) {
		if ip, ok := m.ev.Context["ip"].(string); ok && strings.TrimSpace(ip) != "" {
			return &Location{IP: strings.TrimSpace(ip)}, nil
		}
		return nil, nil
	}
	var addr map[string]any
	var addrLine string
	switch v := t["address"].(type) {
	case map[string]any:
		addr = v
	case string:
		addrLine = strings.TrimSpace(v)
	}
	var err error
	str := func(keys ...string) string {
		if err != nil {
			return ""
		}
		for _, src := range []struct {
			m      map[string]any
			prefix string
		}{{t, field + "."}, {addr, field + ".address."}} {
			k, v, ok := firstPresent(src.m, keys...)
			if !ok {
				continue
			}
			s, ok := scalarString(v)
			if !ok {
				err = typeErr(src.prefix+k, "a string", v)
				return ""
			}
			if s = strings.TrimSpace(s); s != "" {
				return s
			}
		}
		return ""
	}
	num := func(key string) any {
		if err != nil {
			return nil
		}
		for _, src := range []struct {
			m      map[string]any
			prefix string
		}{{t, field + "."}, {addr, field + ".address."}} {
			v, ok := present(src.m, key)
			if !ok {
				continue
			}
			if _, ok := toNumber(v); !ok {
				err = typeErr(src.prefix+key, "a number", v)
				return nil
			}
			return v
		}
		return nil
	}
	loc := Location{
		Address1:  str("street", "address1"),
		Address2:  str("address2"),
		City:      str("city"),
		Region:    str("region", "state"),
		Country:   str("country"),
		Zip:       str("zip", "postalCode", "postal_code"),
		Timezone:  str("timezone"),
		Latitude:  num("latitude"),
		Longitude: num("longitude"),
	}
	if err != nil {
		return nil, err
	}
	if loc.Address1 == "" {
		loc.Address1 = addrLine
	}
	if ip, ok := m.ev.Context["ip"].(string); ok {
		loc.IP = strings.TrimSpace(ip)
	}
	if loc == (Location{}) {
		return nil, nil
	}
	out := new(Location)
	*out = loc
	return out, nil
}

// locationKey reports whether location reads the trait key k.
func locationKey(k string) bool {
	switch k {
	case "address", "street", "address1", "address2", "city", "region", "state",
		"country", "zip", "postalCode", "postal_code", "timezone", "latitude", "longitude":
		return true
	}
	return false
}

// nLocationKeys is how many keys locationKey accepts.
const nLocationKeys = 14

// hasLocationKey reports whether t has a key location reads: by looking
// at t's keys when there are fewer of them than location's (the common
// case), else by looking each of those up.
func hasLocationKey(t map[string]any) bool {
	if len(t) <= nLocationKeys {
		for k := range t {
			if locationKey(k) {
				return true
			}
		}
		return false
	}
	for _, k := range [nLocationKeys]string{"address", "street", "address1", "address2", "city", "region", "state",
		"country", "zip", "postalCode", "postal_code", "timezone", "latitude", "longitude"} {
		if _, ok := t[k]; ok {
			return true
		}
	}
	return false
}

// customProperties are the traits that are not special attributes or
// options, minus the fields named in integrations.Klaviyo.fieldsTo*.
// A company object stays a property (it carries more than its name).
func (m *mapper) customProperties(t map[string]any, field string) (map[string]any, error) {
	var out map[string]any
	for k, v := range t {
		if consumedTrait(k) || m.patchFields[k] {
			continue
		}
		switch k {
		case "company":
			if _, ok := v.(string); ok {
				continue
			}
		case "address":
			switch v.(type) {
			case map[string]any, string:
				continue
			}
		}
		if out == nil {
			out = m.newMap(len(t))
		}
		out[k] = v
	}
	if m.s.FlattenProperties && out != nil {
		out = flatten(out)
	}
	return out, nil
}
