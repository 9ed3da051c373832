package klaviyo

import (
	"slices"
	"strings"
)

// List membership and consent (DESIGN.md §5 listId/confirmOptin/listMode/
// consent/smsConsent, §6.1 identify lists, §6.2 group).

// traitSource is a traits object where RudderStack's per-event consent
// overrides may be: <field>.consent / .smsConsent, then
// <field>.properties.consent / .smsConsent.
type traitSource struct {
	m     map[string]any
	field string
}

// listPlan is what an event asks of a list.
type listPlan struct {
	listID string
	field  string // where the list id came from, for messages
	// explicit: the event itself asked for the list operation (list id or
	// subscribe flag on the event, or a group call). A default list from
	// the settings is not explicit.
	explicit bool
	// flag is the subscribe flag: true subscribe, false unsubscribe, nil
	// absent (list membership for group; listMode for identify).
	flag      *bool
	flagField string
	// addWhenAbsent: with no flag, add to the list (group) instead of
	// following listMode (identify).
	addWhenAbsent bool
	traitSources  []traitSource
	// idField is where the user's identifiers are ("traits" for identify,
	// "context.traits" for group), for error fields.
	idField string
	// idAlso is a second place identifiers are read from, for messages.
	idAlso string
}

// identifyList resolves an identify's list: integrations.Klaviyo.listId,
// then traits.properties.listId, then the listId setting.
func (m *mapper) identifyList(p *Profile, traits map[string]any) ([]Op, error) {
	plan := listPlan{traitSources: []traitSource{{traits, "traits"}}, idField: "traits"}
	tprops, _ := traits["properties"].(map[string]any)
	if v, ok := m.opt("listId"); ok {
		id, ok := scalarString(v)
		if !ok {
			return nil, typeErr("integrations.Klaviyo.listId", "a string", v)
		}
		plan.listID, plan.field, plan.explicit = strings.TrimSpace(id), "integrations.Klaviyo.listId", true
	}
	if plan.listID == "" {
		if v, ok := present(tprops, "listId"); ok {
			id, ok := scalarString(v)
			if !ok {
				return nil, typeErr("traits.properties.listId", "a string", v)
			}
			plan.listID, plan.field, plan.explicit = strings.TrimSpace(id), "traits.properties.listId", true
		}
	}
	if plan.listID == "" && m.s.ListID != "" {
		plan.listID, plan.field = m.s.ListID, "the listId setting"
	}
	flag, field, err := m.subscribeFlag(tprops, "traits.properties")
	if err != nil {
		return nil, err
	}
	plan.flag, plan.flagField = flag, field
	if flag != nil {
		plan.explicit = true
	}
	if m.topLevelUnsubscribe(traits, plan) {
		return nil, nil
	}
	rm, err := m.removal(tprops, "traits.properties")
	if err != nil || rm.field != "" {
		if err == nil && flag != nil {
			err = &MapError{Code: CodeInvalidValue, Field: rm.field,
				Message: rm.field + " and " + field + " are both set: an event either removes the profile from a list or changes its subscription"}
		}
		if err != nil {
			return nil, err
		}
		if rm.listID != "" {
			plan.listID, plan.field = rm.listID, rm.field
		}
		plan.explicit = true
		return m.listRemoveOps(p, plan, rm.field)
	}
	if plan.listID == "" {
		if flag != nil {
			// No list anywhere: a subscribe flag alone must not change
			// account-wide consent (an ambiguous trait unsubscribing a
			// whole account is a compliance incident).
			m.warn(plan.flagField + " is set but no list is given (integrations.Klaviyo.listId, traits.properties.listId or the listId setting): consent was left unchanged")
		}
		return nil, nil
	}
	return m.listOps(p, plan)
}

// topLevelUnsubscribe: traits.subscribe is a profile property, not the
// subscribe flag (traits.properties.subscribe, seed 004), so Segment and
// RudderStack subscribe the list that listMode subscribe names even when
// it says false. Their presets keep that, with a warning; Relay's own
// behaviour (compat relay) never subscribes a profile whose traits say
// subscribe: false: it leaves consent alone, says so, and reports true.
func (m *mapper) topLevelUnsubscribe(traits map[string]any, plan listPlan) bool {
	if b, ok := traits["subscribe"].(bool); !ok || b || plan.flag != nil || plan.listID == "" || m.s.ListMode != ListModeSubscribe {
		return false
	}
	if m.s.Compat == "" || m.s.Compat == CompatRelay {
		m.warn("traits.subscribe is false: list " + plan.listID + " (" + plan.field + ") was not subscribed and consent was left unchanged " +
			"(the subscribe flag is traits.properties.subscribe or integrations.Klaviyo.subscribe; compat segment or rudderstack would subscribe)")
		return true
	}
	m.warn("traits.subscribe is false but is only a profile property: the subscribe flag is traits.properties.subscribe or integrations.Klaviyo.subscribe; list " +
		plan.listID + " (" + plan.field + ") was subscribed as listMode subscribe does")
	return false
}

// removalAsk is an event's request to end list membership without a
// consent change: field is where it was asked ("" = not asked), listID
// the list it names ("" = the list the event resolves otherwise).
type removalAsk struct {
	field  string
	listID string
}

// removal reads integrations.Klaviyo.removeFromList, then
// <field>.removeFromList: true (the event's list) or a list id.
func (m *mapper) removal(t map[string]any, field string) (removalAsk, error) {
	read := func(v any, f string) (removalAsk, error) {
		switch x := v.(type) {
		case bool:
			if !x {
				return removalAsk{}, nil
			}
			return removalAsk{field: f}, nil
		case string:
			if id := strings.TrimSpace(x); id != "" {
				return removalAsk{field: f, listID: id}, nil
			}
			return removalAsk{}, nil
		}
		return removalAsk{}, typeErr(f, "true or a list id", v)
	}
	if v, ok := m.opt("removeFromList"); ok {
		return read(v, "integrations.Klaviyo.removeFromList")
	}
	if v, ok := present(t, "removeFromList"); ok {
		return read(v, field+".removeFromList")
	}
	return removalAsk{}, nil
}

// listRemoveOps removes the profile from plan's list, consent unchanged.
func (m *mapper) listRemoveOps(p *Profile, plan listPlan, asked string) ([]Op, error) {
	if plan.listID == "" {
		m.warn(asked + " is set but no list is given (a list id there, integrations.Klaviyo.listId, traits.properties.listId or the listId setting): nothing was removed")
		return nil, nil
	}
	a := p.Attributes
	lp := &Profile{Type: "profile", ID: p.ID, Attributes: ProfileAttributes{
		Email: a.Email, PhoneNumber: a.PhoneNumber, ExternalID: a.ExternalID}}
	if lp.ID == "" && a.Email == "" && a.PhoneNumber == "" && a.ExternalID == "" {
		return nil, m.listProblem(plan, "removing the profile from list "+plan.listID+" needs a userId, email or phone number")
	}
	return []Op{{Kind: OpListRemove, ListID: plan.listID, Profile: lp}}, nil
}

// subscribeFlag reads integrations.Klaviyo.subscribe, then <field>.subscribe.
func (m *mapper) subscribeFlag(t map[string]any, field string) (*bool, string, error) {
	if v, ok := m.opt("subscribe"); ok {
		b, ok := v.(bool)
		if !ok {
			return nil, "", typeErr("integrations.Klaviyo.subscribe", "true or false", v)
		}
		return &b, "integrations.Klaviyo.subscribe", nil
	}
	if v, ok := present(t, "subscribe"); ok {
		b, ok := v.(bool)
		if !ok {
			return nil, "", typeErr(field+".subscribe", "true or false", v)
		}
		return &b, field + ".subscribe", nil
	}
	return nil, "", nil
}

// listOps turns a list plan into a subscribe, unsubscribe or list-add op.
func (m *mapper) listOps(p *Profile, plan listPlan) ([]Op, error) {
	a := p.Attributes
	add := plan.flag == nil && (plan.addWhenAbsent || m.s.ListMode == ListModeAdd)
	if add {
		lp := &Profile{Type: "profile", ID: p.ID, Attributes: ProfileAttributes{
			Email: a.Email, PhoneNumber: a.PhoneNumber, ExternalID: a.ExternalID}}
		if lp.ID == "" && a.Email == "" && a.PhoneNumber == "" && a.ExternalID == "" {
			return nil, m.listProblem(plan, "adding the profile to list "+plan.listID+" needs a userId, email or phone number")
		}
		return []Op{{Kind: OpListAdd, ListID: plan.listID, Profile: lp}}, nil
	}
	subscribe := plan.flag == nil || *plan.flag
	channels, err := m.channels(plan)
	if err != nil {
		return nil, err
	}
	consent := &Consent{Consent: "SUBSCRIBED"}
	historical := false
	if subscribe {
		confirm, err := m.confirmOptin()
		if err != nil {
			return nil, err
		}
		if !confirm {
			// Consent was already given (Segment's confirmOptin false):
			// skip the list's opt-in as a historical import, dated by
			// the event.
			historical = true
			consent.ConsentedAt = klaviyoTime(m.ev.Timestamp)
			if consent.ConsentedAt == "" {
				// Klaviyo requires consented_at with historical_import.
				return nil, &MapError{Code: CodeMissingField, Field: "timestamp",
					Message: "timestamp is required: with confirmOptin false the subscription is a historical import whose consented_at is the event time"}
			}
		}
	} else {
		consent.Consent = "UNSUBSCRIBED"
	}
	var subs Subscriptions
	var missing []string
	for _, c := range channels {
		switch c {
		case ChannelEmail:
			if a.Email == "" {
				missing = append(missing, "an email ("+plan.idField+".email"+plan.also("email")+")")
				continue
			}
			subs.Email = &ChannelConsent{Marketing: consent}
		case ChannelSMS:
			if a.PhoneNumber == "" {
				missing = append(missing, "a phone number ("+plan.idField+".phone"+plan.also("phone")+")")
				continue
			}
			subs.SMS = &ChannelConsent{Marketing: consent}
		}
	}
	if subs.Email == nil && subs.SMS == nil {
		verb := "subscribing"
		if !subscribe {
			verb = "unsubscribing"
		}
		target := "to list " + plan.listID
		if plan.listID == "" {
			target = "(no list)"
		} else if !subscribe {
			target = "from list " + plan.listID
		}
		why := verb + " " + target + " on channels [" + strings.Join(channels, ", ") + "] needs "
		if len(missing) == 0 {
			why += "an email or sms consent channel"
		} else {
			why += strings.Join(missing, " or ") + ", and the event has none"
		}
		return nil, m.listProblem(plan, why)
	}
	sp := &Profile{Type: "profile", Attributes: ProfileAttributes{
		Email: a.Email, PhoneNumber: a.PhoneNumber, Subscriptions: &subs}}
	if subscribe {
		sp.ID = p.ID // the delete-job profile schema has no id
		return []Op{{Kind: OpSubscribe, ListID: plan.listID, Profile: sp, HistoricalImport: historical, CustomSource: m.s.CustomSource}}, nil
	}
	return []Op{{Kind: OpUnsubscribe, ListID: plan.listID, Profile: sp}}, nil
}

func (p listPlan) also(key string) string {
	if p.idAlso == "" {
		return ""
	}
	return " or " + p.idAlso + "." + key
}

// listProblem is an error when the event asked for the list operation,
// and a warning when only the listId setting did: an identify that merely
// updates traits of a profile without an email must not be lost because a
// default list is configured.
func (m *mapper) listProblem(plan listPlan, why string) error {
	if plan.explicit {
		return &MapError{Code: CodeMissingIdentifier, Field: plan.idField + ".email", Message: why}
	}
	m.warn(why + "; the list operation of " + plan.field + " was skipped")
	return nil
}

// confirmOptin: integrations.Klaviyo.confirmOptin, else the setting.
func (m *mapper) confirmOptin() (bool, error) {
	if v, ok := m.opt("confirmOptin"); ok {
		b, ok := v.(bool)
		if !ok {
			return false, typeErr("integrations.Klaviyo.confirmOptin", "true or false", v)
		}
		return b, nil
	}
	return m.s.ConfirmOptin, nil
}

// channels resolves the consent channels: consent from
// integrations.Klaviyo.consent, then each trait source's consent and
// properties.consent, then the setting; plus sms when smsConsent (same
// precedence) is true. Legacy channels are dropped with a warning.
func (m *mapper) channels(plan listPlan) ([]string, error) {
	consent, field, err := m.consentList(plan)
	if err != nil {
		return nil, err
	}
	sms, err := m.smsConsent(plan)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, 2)
	for _, c := range consent {
		c = strings.ToLower(strings.TrimSpace(c))
		switch {
		case c == ChannelEmail || c == ChannelSMS:
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		case slices.Contains(legacyChannels, c):
			m.warn("consent channel " + quoteShort(c) + " (" + field + ") belongs to Klaviyo's retired v2 List API and was ignored")
		default:
			return nil, &MapError{Code: CodeInvalidValue, Field: field,
				Message: field + ": unknown consent channel " + quoteShort(c) + " (want email or sms)"}
		}
	}
	if sms && !slices.Contains(out, ChannelSMS) {
		out = append(out, ChannelSMS)
	}
	return out, nil
}

func (m *mapper) consentList(plan listPlan) ([]string, string, error) {
	read := func(v any, field string) ([]string, string, error) {
		list, ok := stringList(v, true)
		if !ok {
			return nil, "", typeErr(field, "a channel or a list of channels", v)
		}
		return list, field, nil
	}
	if v, ok := m.opt("consent"); ok {
		return read(v, "integrations.Klaviyo.consent")
	}
	for _, src := range plan.traitSources {
		if v, ok := present(src.m, "consent"); ok {
			return read(v, src.field+".consent")
		}
		if props, ok := src.m["properties"].(map[string]any); ok {
			if v, ok := present(props, "consent"); ok {
				return read(v, src.field+".properties.consent")
			}
		}
	}
	return m.s.Consent, "the consent setting", nil
}

func (m *mapper) smsConsent(plan listPlan) (bool, error) {
	read := func(v any, field string) (bool, error) {
		b, ok := v.(bool)
		if !ok {
			return false, typeErr(field, "true or false", v)
		}
		return b, nil
	}
	if v, ok := m.opt("smsConsent"); ok {
		return read(v, "integrations.Klaviyo.smsConsent")
	}
	for _, src := range plan.traitSources {
		if v, ok := present(src.m, "smsConsent"); ok {
			return read(v, src.field+".smsConsent")
		}
		if props, ok := src.m["properties"].(map[string]any); ok {
			if v, ok := present(props, "smsConsent"); ok {
				return read(v, src.field+".properties.smsConsent")
			}
		}
	}
	return m.s.SMSConsent, nil
}
