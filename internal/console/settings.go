package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/store"
)

// fieldDef describes one setting of DESIGN.md §5 on the settings form.
type fieldDef struct {
	Name    string // the setting's JSON name
	Label   string
	Help    string
	Kind    string // text, secret, bool, select, list (comma-separated), lines (one per line), map
	Options []string
	Hint    string // placeholder
}

type sectionDef struct {
	Title  string
	Fields []fieldDef
}

// settingSections are the form's fields, with the help text of §5.
func settingSections() []sectionDef {
	return []sectionDef{
		{"Compatibility", []fieldDef{
			{Name: "compat", Label: "Compatibility preset", Kind: "select",
				Options: []string{klaviyo.CompatRelay, klaviyo.CompatSegment, klaviyo.CompatRudderStack, klaviyo.CompatFreshpaint},
				Help:    "Start every setting from the defaults of the system you are leaving (docs/KLAVIYO.md). The fields below show the result and are saved as shown."},
			{Name: "userIdProperty", Label: "userId property", Kind: "text", Hint: "id",
				Help: "With email as primary identifier, the custom property that holds the userId: id (Segment) or _id (RudderStack)."},
			{Name: "customSource", Label: "Consent source", Kind: "text", Hint: klaviyo.DefaultCustomSource,
				Help: "custom_source of subscriptions: what Klaviyo's consent records name as where consent came from."},
		}},
		{"Credentials", []fieldDef{
			{Name: "privateApiKey", Label: "Private API key", Kind: "secret", Hint: "pk_…",
				Help: "Server-side key, sent as Authorization: Klaviyo-API-Key. Never shown again once saved; leave empty to keep the current key."},
			{Name: "publicApiKey", Label: "Public API key (site id)", Kind: "secret", Hint: "six characters",
				Help: "Site id (company_id) for client-side calls, e.g. an identify with only an anonymousId. Leave empty to keep the current key."},
			{Name: "revision", Label: "API revision", Kind: "text",
				Help: "Klaviyo API revision header. Default: the revision of the API spec Relay was built against."},
		}},
		{"Lists and consent", []fieldDef{
			{Name: "listId", Label: "Default list id", Kind: "text", Hint: "Xy12Ab",
				Help: "Default list for identify calls (per-event integrations.Klaviyo.listId and traits.properties.listId override it)."},
			{Name: "listMode", Label: "List mode", Kind: "select", Options: []string{klaviyo.ListModeSubscribe, klaviyo.ListModeAdd},
				Help: "What an identify with a list and no explicit subscribe flag does: subscribe (Segment) or add = list membership only, no consent change (RudderStack)."},
			{Name: "confirmOptin", Label: "Confirm opt-in", Kind: "bool",
				Help: "On: subscribing goes through the list's opt-in process (double opt-in lists send a confirmation). Off: consent was already given; subscribe as a historical import with consented_at."},
			{Name: "consent", Label: "Consent channels", Kind: "list", Hint: "email, sms",
				Help: "Channels to subscribe, comma-separated: email, sms. (Legacy web, directmail and mobile are accepted with a warning; the current API has no such channels.)"},
			{Name: "smsConsent", Label: "SMS consent", Kind: "bool",
				Help: "Also subscribe SMS when a phone number is present."},
		}},
		{"Identity", []fieldDef{
			{Name: "enforceEmailAsPrimary", Label: "Use email as primary identifier", Kind: "bool",
				Help: "Never send external_id; userId goes to properties.id; an event needs an email or phone number."},
			{Name: "fallbackOnAnonymousId", Label: "Fall back on anonymousId", Kind: "bool",
				Help: "Without a userId, identify the profile by anonymous_id. Off: an event with neither userId, email nor phone is rejected with a clear error."},
			{Name: "defaultPhoneCountry", Label: "Default phone country", Kind: "text", Hint: "US",
				Help: "Region (ISO 3166, e.g. US) used to turn national phone numbers into E.164."},
			{Name: "strictPhone", Label: "Strict phone numbers", Kind: "bool",
				Help: "An unparseable phone number rejects the event. Off: the number is dropped with a warning on that event."},
		}},
		{"Events", []fieldDef{
			{Name: "ecommerceNames", Label: "E-commerce names", Kind: "select", Options: []string{klaviyo.EcommerceKlaviyo, klaviyo.EcommercePassthrough, klaviyo.EcommerceSegment, klaviyo.EcommerceRudderStack},
				Help: "klaviyo: rename spec e-commerce events to Klaviyo's standard metrics and keys (Placed Order, Ordered Product, Viewed Product, …). passthrough: keep names and properties."},
			{Name: "sendPlacedOrderAsOrderCompleted", Label: "Keep \"Order Completed\"", Kind: "bool",
				Help: "Keep \"Order Completed\" as the metric name instead of \"Placed Order\"."},
			{Name: "eventNameMap", Label: "Event name map", Kind: "map", Hint: "Spec Event Name => Klaviyo Metric",
				Help: "Extra renames, one per line: Event Name => Klaviyo Metric (or paste a JSON object)."},
			{Name: "sendPageAsTrack", Label: "Send page calls as events", Kind: "bool",
				Help: "Page calls become the event \"Viewed <name> Page\". Off: page calls are skipped server-side."},
			{Name: "additionalPageInfo", Label: "Additional page info", Kind: "bool",
				Help: "Add context.page fields (url, path, referrer, …) to \"Viewed … Page\" events."},
			{Name: "flattenProperties", Label: "Flatten properties", Kind: "bool",
				Help: "Nested custom properties become dotted keys (address.city)."},
			{Name: "eventAllowlist", Label: "Event allowlist", Kind: "lines", Hint: "one event name per line",
				Help: "Only these track events are sent (one name per line). Cannot be combined with the denylist."},
			{Name: "eventDenylist", Label: "Event denylist", Kind: "lines", Hint: "one event name per line",
				Help: "These track events are dropped (one name per line)."},
		}},
		privacySection(),
		{"Device mode (browser)", []fieldDef{
			{Name: "deviceMode", Label: "Device mode", Kind: "select", Options: []string{klaviyo.DeviceModeOff, klaviyo.DeviceModeOn, klaviyo.DeviceModeBoth},
				Help: "on: browsers using analytics-next or RudderStack JS v3 pointed at Relay load Klaviyo's onsite script and send identify, track and page to Klaviyo themselves; Relay skips those events. both: as on, but Relay still delivers the browser's identify calls (lists, consent). Needs the public API key. See docs/DEVICE-MODE.md."},
			{Name: "onsiteScriptUrl", Label: "Onsite script URL", Kind: "text", Hint: klaviyo.DefaultOnsiteScriptURL,
				Help: "Where browsers load Klaviyo's onsite script; {publicKey} is replaced by the public API key. Empty: Klaviyo's own."},
		}},
	}
}

type fieldView struct {
	fieldDef
	Value   string
	Checked bool
	Masked  string // secrets: the saved key, masked; "" when none is saved
	Error   string
}

type sectionView struct {
	Title  string
	Fields []fieldView
}

type settingsData struct {
	pageData
	Dest     string
	Version  int64
	Updated  string
	Sections []sectionView
	Warnings []string
	// Compat is the preset the settings name, with what it implies.
	Compat        string
	CompatImplies []string
}

// showCompat fills the preset note and the missing-key warning.
func (d *settingsData) showCompat(s klaviyo.Settings) {
	d.Compat = klaviyo.CompatTitle(s.Compat)
	d.CompatImplies = klaviyo.PresetImplies(s.Compat)
	if why := s.MissingKey(); why != "" {
		d.Warnings = append(d.Warnings, why)
	}
}

// current returns dest's saved settings and their version (0 when none
// are saved, with the live settings).
func (c *Console) current(ctx context.Context, dest string) (klaviyo.Settings, store.DestSettings, error) {
	saved, err := c.deps.StoredSettings.DestSettings(ctx, dest)
	if errors.Is(err, store.ErrNotFound) {
		live, _ := c.deps.Settings.Settings(dest)
		return live, store.DestSettings{Dest: dest}, nil
	}
	if err != nil {
		return klaviyo.Settings{}, saved, err
	}
	s, err := klaviyo.ParseSettings(saved.Settings)
	if err != nil {
		// Saved settings were validated when saved; fall back to the live
		// ones rather than show an empty form.
		live, _ := c.deps.Settings.Settings(dest)
		return live, saved, nil
	}
	return s, saved, nil
}

func (c *Console) settingsPage(w http.ResponseWriter, r *http.Request) {
	dest := r.PathValue("dest")
	if !c.hasDest(dest) {
		c.renderError(w, r, http.StatusNotFound, fmt.Sprintf("No destination named %q.", dest))
		return
	}
	d := &settingsData{pageData: pageData{Title: "Klaviyo destination: " + dest, Nav: "dest:" + dest}, Dest: dest}
	s, saved, err := c.current(r.Context(), dest)
	if err != nil {
		d.Error = "Could not read the settings: " + err.Error()
	}
	if v := r.URL.Query().Get("saved"); v != "" {
		d.Notice = fmt.Sprintf("Saved (version %s). Delivery uses the new settings from its next batch.", v)
	}
	d.Version, d.Updated = saved.Version, fmtTime(saved.UpdatedAt)
	d.Sections = formFromSettings(s)
	d.Warnings = s.Warnings()
	d.showCompat(s)
	if p := r.URL.Query().Get("preset"); p != "" && klaviyo.CompatTitle(p) != "" {
		d.Notice += fmt.Sprintf(" The pasted settings look like a %s export: preset compat: %s was selected.", klaviyo.CompatTitle(p), p)
	}
	c.render(w, r, http.StatusOK, "settings", d)
}

// formFromSettings fills the form with s (secrets only as masked hints).
func formFromSettings(s klaviyo.Settings) []sectionView {
	raw, _ := json.Marshal(s)
	var vals map[string]any
	_ = json.Unmarshal(raw, &vals)
	var out []sectionView
	for _, sec := range settingSections() {
		sv := sectionView{Title: sec.Title}
		for _, f := range sec.Fields {
			fv := fieldView{fieldDef: f}
			v := vals[f.Name]
			switch f.Kind {
			case "secret":
				if str, _ := v.(string); str != "" {
					fv.Masked = store.MaskKey(str)
				}
			case "bool":
				fv.Checked, _ = v.(bool)
			case "list", "lines":
				var items []string
				for _, e := range asSlice(v) {
					items = append(items, fmt.Sprint(e))
				}
				sep := ", "
				if f.Kind == "lines" {
					sep = "\n"
				}
				fv.Value = strings.Join(items, sep)
			case "tristate", "json":
				fv.Value = privacyFieldValue(f.Kind, v)
			case "map":
				m, _ := v.(map[string]any)
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				var lines []string
				for _, k := range keys {
					lines = append(lines, fmt.Sprintf("%s => %v", k, m[k]))
				}
				fv.Value = strings.Join(lines, "\n")
			default:
				if v != nil {
					fv.Value = fmt.Sprint(v)
				}
			}
			sv.Fields = append(sv.Fields, fv)
		}
		out = append(out, sv)
	}
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// formToSettings builds the settings document from a submitted form. An
// empty secret keeps cur's value unless its "clear" box is ticked. Errors
// are per field (input the form itself cannot turn into JSON).
func formToSettings(form map[string][]string, cur klaviyo.Settings) (json.RawMessage, map[string]string) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	doc := map[string]any{}
	errs := map[string]string{}
	for _, sec := range settingSections() {
		for _, f := range sec.Fields {
			v := strings.TrimSpace(get(f.Name))
			switch f.Kind {
			case "secret":
				old := cur.PrivateAPIKey
				if f.Name == "publicApiKey" {
					old = cur.PublicAPIKey
				}
				switch {
				case get(f.Name+".clear") != "":
				case v != "":
					doc[f.Name] = v
				case old != "":
					doc[f.Name] = old
				}
			case "bool":
				doc[f.Name] = get(f.Name) != ""
			case "list":
				items := []string{}
				for _, p := range strings.Split(v, ",") {
					if p = strings.TrimSpace(p); p != "" {
						items = append(items, p)
					}
				}
				doc[f.Name] = items
			case "lines":
				var items []string
				for _, p := range strings.Split(v, "\n") {
					if p = strings.TrimSpace(p); p != "" {
						items = append(items, p)
					}
				}
				if len(items) > 0 {
					doc[f.Name] = items
				}
			case "tristate", "json":
				if val, err := privacyFormValue(f.Kind, v); err != nil {
					errs[f.Name] = err.Error()
				} else if val != nil {
					doc[f.Name] = val
				}
			case "map":
				m, err := parseNameMap(v)
				if err != nil {
					errs[f.Name] = err.Error()
				} else if len(m) > 0 {
					doc[f.Name] = m
				}
			default:
				if v != "" {
					doc[f.Name] = v
				}
			}
		}
	}
	dropPresetDefaults(doc, cur)
	raw, _ := json.Marshal(doc)
	return raw, errs
}

// dropPresetDefaults: when the form picks another compat preset, the
// preset's settings still showing the old preset's values were not
// chosen by the user, so they are left out and the new preset's apply.
func dropPresetDefaults(doc map[string]any, cur klaviyo.Settings) {
	next, _ := doc["compat"].(string)
	if next == "" || next == cur.Compat {
		return
	}
	old, err := klaviyo.PresetSettings(cur.Compat)
	if err != nil {
		return
	}
	oldRaw, _ := json.Marshal(old)
	var oldVals map[string]any
	_ = json.Unmarshal(oldRaw, &oldVals)
	for _, name := range klaviyo.PresetSettingNames() {
		a, _ := json.Marshal(doc[name])
		b, _ := json.Marshal(oldVals[name])
		if bytes.Equal(a, b) {
			delete(doc, name)
		}
	}
}

// parseNameMap reads "From => To" lines, or a JSON object.
func parseNameMap(text string) (map[string]any, error) {
	out := map[string]any{}
	if strings.HasPrefix(text, "{") {
		dec := json.NewDecoder(bytes.NewReader([]byte(text)))
		if err := dec.Decode(&out); err != nil {
			return nil, fmt.Errorf("not a JSON object: %v", err)
		}
		return out, nil
	}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		from, to, ok := strings.Cut(line, "=>")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		if !ok || from == "" || to == "" {
			return nil, fmt.Errorf("line %d: want \"Event Name => Klaviyo Metric\"", i+1)
		}
		out[from] = to
	}
	return out, nil
}

// settingErrors collects every *klaviyo.SettingsError in err (Validate
// joins several).
func settingErrors(err error) []*klaviyo.SettingsError {
	var out []*klaviyo.SettingsError
	var walk func(error)
	walk = func(e error) {
		if se, ok := e.(*klaviyo.SettingsError); ok {
			out = append(out, se)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

func (c *Console) saveSettings(w http.ResponseWriter, r *http.Request) {
	dest := r.PathValue("dest")
	if !c.hasDest(dest) {
		c.renderError(w, r, http.StatusNotFound, fmt.Sprintf("No destination named %q.", dest))
		return
	}
	if err := r.ParseForm(); err != nil {
		c.renderError(w, r, http.StatusBadRequest, "Unreadable form: "+err.Error())
		return
	}
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil || version < 0 {
		c.renderError(w, r, http.StatusBadRequest, "The form has no valid settings version: reload the page.")
		return
	}
	d := &settingsData{pageData: pageData{Title: "Klaviyo destination: " + dest, Nav: "dest:" + dest}, Dest: dest, Version: version}
	cur, saved, err := c.current(r.Context(), dest)
	if err != nil {
		c.renderError(w, r, http.StatusInternalServerError, "Could not read the settings: "+err.Error())
		return
	}
	d.Updated = fmtTime(saved.UpdatedAt)
	raw, fieldErrs := formToSettings(r.PostForm, cur)
	preset := ""
	if text := strings.TrimSpace(r.PostFormValue("import")); text != "" {
		// A pasted export replaces the form (see importSettings).
		var err error
		if raw, preset, err = klaviyo.ImportSettings([]byte(text), cur); err != nil {
			fieldErrs = map[string]string{"import": err.Error()}
			d.Error = "Not imported: " + err.Error()
		}
	}
	if len(fieldErrs) == 0 {
		res, err := c.deps.Settings.ApplySettings(r.Context(), dest, raw, version)
		if err == nil {
			loc := fmt.Sprintf("%s/destinations/%s?saved=%d", c.cfg.Prefix, dest, res.Version)
			if preset != "" {
				loc += "&preset=" + preset
			}
			http.Redirect(w, r, loc, http.StatusSeeOther)
			return
		}
		switch ses := settingErrors(err); {
		case len(ses) > 0:
			for _, se := range ses {
				name, _, _ := strings.Cut(se.Setting, ".")
				if name == "" || !isField(name) {
					d.Error = se.Error()
					continue
				}
				if fieldErrs[name] == "" {
					fieldErrs[name] = se.Reason
					if sub := strings.TrimPrefix(se.Setting, name+"."); sub != se.Setting {
						fieldErrs[name] = fmt.Sprintf("%q: %s", sub, se.Reason)
					}
				}
			}
		case errors.Is(err, store.ErrVersionConflict):
			d.Error = fmt.Sprintf("Not saved: these settings were changed elsewhere since this page was loaded (now version %d). Reload the page to see them, then make your change again.", saved.Version)
		default:
			d.Error = "Not saved: " + err.Error()
		}
	}
	if len(fieldErrs) > 0 && d.Error == "" {
		d.Error = "Not saved: fix the settings marked below."
	}
	d.Sections = submittedForm(r, raw, cur, fieldErrs)
	c.render(w, r, http.StatusOK, "settings", d)
}

// submittedForm shows what was submitted, with the errors next to their
// fields. Secrets are not echoed back: the masked saved key is shown.
func submittedForm(r *http.Request, raw json.RawMessage, cur klaviyo.Settings, fieldErrs map[string]string) []sectionView {
	submitted := cur
	if s, err := klaviyo.ParseSettings(raw); err == nil {
		submitted = s
	}
	sections := formFromSettings(submitted)
	for i := range sections {
		for j := range sections[i].Fields {
			f := &sections[i].Fields[j]
			f.Error = fieldErrs[f.Name]
			switch f.Kind {
			case "secret":
				f.Masked = maskedOf(cur, f.Name)
			case "map", "lines", "list", "text", "select", "tristate", "json", "code":
				// Keep exactly what the user typed (ParseSettings may not
				// have been able to read it).
				if vs, ok := r.PostForm[f.Name]; ok && len(vs) > 0 {
					f.Value = vs[0]
				}
			case "bool":
				f.Checked = r.PostFormValue(f.Name) != ""
			}
		}
	}
	return sections
}

func maskedOf(s klaviyo.Settings, name string) string {
	if name == "publicApiKey" {
		return store.MaskKey(s.PublicAPIKey)
	}
	return store.MaskKey(s.PrivateAPIKey)
}

func isField(name string) bool {
	for _, sec := range settingSections() {
		if slices.ContainsFunc(sec.Fields, func(f fieldDef) bool { return f.Name == name }) {
			return true
		}
	}
	return false
}
