package klaviyo

import (
	"slices"
	"strings"
)

// Events (DESIGN.md §6.2): track, screen and page-as-track become
// POST /api/events with the profile of §6.1.

// removedProp reports whether an event property becomes an event
// attribute or a profile identifier rather than a property (RudderStack,
// peers.md §2). (A switch, not a map: no key is hashed.)
func removedProp(k string) bool {
	switch k {
	case "event", "email", "phone", "phone_number",
		"revenue", "total", "value",
		"value_currency", "currency":
		return true
	}
	return false
}

func (m *mapper) track() ([]Op, string, error) {
	name := strings.TrimSpace(m.ev.Event)
	if name == "" {
		return nil, "", &MapError{Code: CodeMissingField, Field: "event", Message: "event is required for a track call: it is the Klaviyo metric name"}
	}
	if len(m.s.EventAllowlist) > 0 && !slices.Contains(m.s.EventAllowlist, name) {
		return nil, "event " + quoteShort(name) + " is not in eventAllowlist", nil
	}
	if slices.Contains(m.s.EventDenylist, name) {
		return nil, "event " + quoteShort(name) + " is in eventDenylist", nil
	}
	var ops []Op
	var err error
	kind := ecommerceKind(name)
	switch {
	case m.s.EcommerceNames == EcommerceKlaviyo,
		m.s.EcommerceNames == EcommerceSegment && kind == ecomOrderCompleted,
		m.s.EcommerceNames == EcommerceRudderStack && (kind == ecomViewed || kind == ecomAdded || kind == ecomCheckout):
		ops, err = m.ecommerce(name)
	default:
		ops, err = m.plainEvent(name, name, m.ev.Properties)
	}
	if err != nil || len(ops) == 0 {
		return ops, "", err
	}
	// integrations.Klaviyo.removeFromList on a track (an "Unsubscribed
	// from Newsletter X" event) ends the list membership too.
	rm, err := m.removal(nil, "")
	if err != nil || rm.field == "" {
		return ops, "", err
	}
	plan := listPlan{listID: rm.listID, field: rm.field, explicit: true, idField: "context.traits"}
	if plan.listID == "" {
		plan.listID = m.s.ListID
	}
	rmOps, err := m.listRemoveOps(ops[0].Profile, plan, rm.field)
	return append(ops, rmOps...), "", err
}

func (m *mapper) screen() ([]Op, error) {
	name := strings.TrimSpace(m.ev.Name)
	if name == "" {
		name, _ = m.ev.Properties["name"].(string)
		name = strings.TrimSpace(name)
	}
	if name == "" {
		// Some mobile SDKs send a screen's title as event (RudderStack
		// names the metric event || name, peers.md §2).
		name = strings.TrimSpace(m.ev.Event)
	}
	if name == "" {
		return nil, &MapError{Code: CodeMissingField, Field: "name", Message: "name is required for a screen call (or event, or properties.name): it is the Klaviyo metric name"}
	}
	return m.plainEvent(name, name, m.ev.Properties)
}

// page (sendPageAsTrack, RudderStack): "Viewed <name> Page" (DESIGN.md
// §5; the page's category stands in for a missing name, "Viewed a Page"
// when there is neither); additionalPageInfo adds the context.page fields
// the properties lack.
func (m *mapper) page() ([]Op, error) {
	ev := m.ev
	name := strings.TrimSpace(ev.Name)
	if name == "" {
		name, _ = ev.Properties["name"].(string)
		name = strings.TrimSpace(name)
	}
	if name == "" {
		name = strings.TrimSpace(ev.Category)
	}
	if name == "" {
		name, _ = ev.Properties["category"].(string)
		name = strings.TrimSpace(name)
	}
	metric := "Viewed a Page"
	if name != "" {
		metric = "Viewed " + name + " Page"
	}
	props := ev.Properties
	if page, ok := ev.Context["page"].(map[string]any); ok && m.s.AdditionalPageInfo && len(page) > 0 {
		props = make(map[string]any, len(ev.Properties)+len(page))
		for k, v := range page {
			props[k] = v
		}
		for k, v := range ev.Properties {
			props[k] = v // the call's own properties win
		}
	}
	return m.plainEvent(metric, metric, props)
}

// plainEvent is one event with the standard attributes and unique_id =
// messageId.
func (m *mapper) plainEvent(incoming, metric string, props map[string]any) ([]Op, error) {
	p, err := m.eventProfile()
	if err != nil {
		return nil, err
	}
	ea, err := m.eventAttributes(m.metricName(incoming, metric), props, true)
	if err != nil {
		return nil, err
	}
	m.finishProps(ea)
	return []Op{{Kind: OpEvent, Profile: p, Event: ea}}, nil
}

// metricName applies eventNameMap: the incoming name first, then the
// Klaviyo metric name the mapping chose.
func (m *mapper) metricName(incoming, metric string) string {
	if len(m.s.EventNameMap) == 0 {
		return metric
	}
	if to, ok := m.s.EventNameMap[incoming]; ok {
		return to
	}
	if to, ok := m.s.EventNameMap[metric]; ok {
		return to
	}
	return metric
}

// eventProfile is the profile of a track, screen or page call: userId,
// anonymousId (fallbackOnAnonymousId), context.traits and
// properties.email / properties.phone.
func (m *mapper) eventProfile() (*Profile, error) {
	traits := m.userTraits()
	if err := m.readPatch(traits); err != nil {
		return nil, err
	}
	p, err := m.buildProfile(profileInput{traits: traits, field: "context.traits", props: m.ev.Properties, forEvent: true})
	if err != nil {
		return nil, err
	}
	if err := m.requireEmailIfEnforced(p); err != nil {
		return nil, err
	}
	a := &p.Attributes
	if a.ExternalID == "" && a.Email == "" && a.PhoneNumber == "" && a.AnonymousID == "" && p.ID == "" {
		return nil, m.noIdentifierErr(m.ev.Type)
	}
	return p, nil
}

// eventAttributes builds an event from properties: value (revenue, else
// total, else value), value_currency, time and unique_id = messageId; the
// properties minus removedProp's keys. With share, props itself is used
// when it has none of them (the caller will not change the map).
func (m *mapper) eventAttributes(metric string, props map[string]any, share bool) (*EventAttributes, error) {
	ea := &EventAttributes{
		Metric:   metric,
		Time:     klaviyoTime(m.ev.Timestamp),
		UniqueID: m.ev.MessageID,
	}
	if err := eventValue(ea, props, "properties"); err != nil {
		return nil, err
	}
	if share && props != nil && !hasRemovedProp(props) {
		ea.Properties = props
		return ea, nil
	}
	ea.Properties = m.cleanProps(props)
	return ea, nil
}

// hasRemovedProp reports whether m has a key removedProp accepts: by
// looking at m's keys when there are at most a dozen or so, else by
// looking each removed key up.
func hasRemovedProp(m map[string]any) bool {
	if len(m) <= 16 {
		for k := range m {
			if removedProp(k) {
				return true
			}
		}
		return false
	}
	for _, k := range [...]string{"event", "email", "phone", "phone_number", "revenue", "total", "value", "value_currency", "currency"} {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// cleanProps copies props without removedProp's keys.
func (m *mapper) cleanProps(props map[string]any) map[string]any {
	out := m.newMap(len(props))
	for k, v := range props {
		if !removedProp(k) {
			out[k] = v
		}
	}
	return out
}

// finishProps flattens nested properties when flattenProperties is on.
func (m *mapper) finishProps(ea *EventAttributes) {
	if m.s.FlattenProperties {
		ea.Properties = flatten(ea.Properties)
	}
}

// eventValue sets value and value_currency from props.
func eventValue(ea *EventAttributes, props map[string]any, field string) error {
	for _, k := range [...]string{"revenue", "total", "value"} {
		v, ok := present(props, k)
		if !ok {
			continue
		}
		f, ok := toNumber(v)
		if !ok {
			msg := field + "." + k + " must be a number or a numeric string, got " + jsonType(v)
			if s, isStr := v.(string); isStr {
				msg += " " + quoteShort(s)
			}
			return &MapError{Code: CodeInvalidType, Field: field + "." + k, Message: msg}
		}
		ea.Value = &f
		break
	}
	if v, ok := present(props, "currency"); ok {
		c, ok := v.(string)
		if !ok {
			return typeErr(field+".currency", "a currency code string", v)
		}
		ea.ValueCurrency = strings.TrimSpace(c)
	}
	return nil
}
