package klaviyo

import "encoding/json"

// Wire types of Klaviyo's JSON:API (revision of the embedded OpenAPI spec).
// Empty fields are omitted rather than sent as null: several schemas reject
// null where Klaviyo accepts an absent field.

// Profile is a profile resource object.
type Profile struct {
	Type       string            `json:"type"` // "profile"
	ID         string            `json:"id,omitempty"`
	Attributes ProfileAttributes `json:"attributes"`
	Meta       *ProfileMeta      `json:"meta,omitempty"`
}

// ProfileAttributes are a profile's identifiers, special attributes,
// custom properties and (for subscription jobs) subscriptions.
type ProfileAttributes struct {
	Email         string         `json:"email,omitempty"`
	PhoneNumber   string         `json:"phone_number,omitempty"`
	ExternalID    string         `json:"external_id,omitempty"`
	AnonymousID   string         `json:"anonymous_id,omitempty"`
	FirstName     string         `json:"first_name,omitempty"`
	LastName      string         `json:"last_name,omitempty"`
	Organization  string         `json:"organization,omitempty"`
	Title         string         `json:"title,omitempty"`
	Image         string         `json:"image,omitempty"`
	Location      *Location      `json:"location,omitempty"`
	Properties    map[string]any `json:"properties,omitempty"`
	Subscriptions *Subscriptions `json:"subscriptions,omitempty"`
}

// Location is a profile's location.
type Location struct {
	Address1  string `json:"address1,omitempty"`
	Address2  string `json:"address2,omitempty"`
	City      string `json:"city,omitempty"`
	Region    string `json:"region,omitempty"`
	Country   string `json:"country,omitempty"`
	Zip       string `json:"zip,omitempty"`
	Timezone  string `json:"timezone,omitempty"`
	Latitude  any    `json:"latitude,omitempty"`  // number or numeric string
	Longitude any    `json:"longitude,omitempty"` // number or numeric string
	IP        string `json:"ip,omitempty"`
}

// ProfileMeta carries patch operations on custom properties.
type ProfileMeta struct {
	PatchProperties *PatchProperties `json:"patch_properties,omitempty"`
}

// PatchProperties are integrations.Klaviyo.fieldsToAppend/Unappend/Unset.
type PatchProperties struct {
	Append   map[string]any `json:"append,omitempty"`
	Unappend map[string]any `json:"unappend,omitempty"`
	Unset    []string       `json:"unset,omitempty"`
}

// Subscriptions are the consent changes of a subscription job profile.
type Subscriptions struct {
	Email *ChannelConsent `json:"email,omitempty"`
	SMS   *ChannelConsent `json:"sms,omitempty"`
}

// ChannelConsent holds marketing (and, for SMS unsubscribes, transactional)
// consent for one channel.
type ChannelConsent struct {
	Marketing     *Consent `json:"marketing,omitempty"`
	Transactional *Consent `json:"transactional,omitempty"`
}

// Consent is SUBSCRIBED or UNSUBSCRIBED, with consented_at for historical
// imports.
type Consent struct {
	Consent     string `json:"consent"`
	ConsentedAt string `json:"consented_at,omitempty"`
}

// EventAttributes are an event's attributes without its profile. Its JSON
// (MarshalJSON/UnmarshalJSON) is Klaviyo's event attributes: the metric is
// rendered as {"metric":{"data":{"type":"metric","attributes":{"name":…}}}},
// so an Op survives a JSON round trip (queue, dead letters) with its metric.
type EventAttributes struct {
	Metric        string         `json:"-"` // rendered as metric.data.attributes.name
	Properties    map[string]any `json:"properties"`
	Time          string         `json:"time,omitempty"`
	Value         *float64       `json:"value,omitempty"`
	ValueCurrency string         `json:"value_currency,omitempty"`
	UniqueID      string         `json:"unique_id,omitempty"`
}

// MarshalJSON writes Klaviyo's event attributes, metric included.
func (e EventAttributes) MarshalJSON() ([]byte, error) {
	return json.Marshal(eventAttrsOf(&e))
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *EventAttributes) UnmarshalJSON(data []byte) error {
	type plain EventAttributes // no methods: no recursion
	var aux struct {
		plain
		MetricRel struct {
			Data struct {
				Attributes struct {
					Name string `json:"name"`
				} `json:"attributes"`
			} `json:"data"`
		} `json:"metric"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*e = EventAttributes(aux.plain)
	e.Metric = aux.MetricRel.Data.Attributes.Name
	return nil
}
