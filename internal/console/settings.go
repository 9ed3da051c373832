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
	"time"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/store"
)

// The form is rendered from the destination type's field table
// (destination.Type.Fields), the one description of its settings.

type sectionDef struct {
	Title  string
	Fields []destination.Field
}

// settingSections groups a type's fields by section, in field order.
func settingSections(typ *destination.Type) []sectionDef {
	var out []sectionDef
	for _, f := range typ.Fields {
		if len(out) == 0 || out[len(out)-1].Title != f.Section {
			out = append(out, sectionDef{Title: f.Section})
		}
		out[len(out)-1].Fields = append(out[len(out)-1].Fields, f)
	}
	return out
}

type fieldView struct {
	destination.Field
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
	Type     string
	Version  int64
	Updated  string
	Sections []sectionView
	Warnings []string
	// Summary is the type's account of the settings (Type.Summary).
	Summary []string
	// CanImport: the type reads other systems' settings exports.
	CanImport bool
}

// current returns dest's saved settings and their version (0 when none
// are saved, with the live settings).
func (c *Console) current(ctx context.Context, dest string) (destination.Settings, store.DestSettings, error) {
	saved, err := c.deps.StoredSettings.DestSettings(ctx, dest)
	if errors.Is(err, store.ErrNotFound) {
		live, _ := c.deps.Settings.Settings(dest)
		return live, store.DestSettings{Dest: dest}, nil
	}
	if err != nil {
		return nil, saved, err
	}
	typ, _ := c.deps.Settings.DestType(dest)
	s, err := typ.Parse(saved.Settings)
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
	typ, _ := c.deps.Settings.DestType(dest)
	d := &settingsData{pageData: pageData{Title: typ.Title + " destination: " + dest, Nav: "dest:" + dest}, Dest: dest, Type: typ.Title, CanImport: typ.Import != nil}
	s, saved, err := c.current(r.Context(), dest)
	if err != nil {
		d.Error = "Could not read the settings: " + err.Error()
	}
	if v := r.URL.Query().Get("saved"); v != "" {
		d.Notice = fmt.Sprintf("Saved (version %s). Delivery uses the new settings from its next batch.", v)
	}
	d.Version, d.Updated = saved.Version, fmtTime(saved.UpdatedAt)
	d.Sections = formFromSettings(typ, s)
	if s != nil {
		d.Warnings = s.Warnings()
		if typ.Summary != nil {
			d.Summary = typ.Summary(s)
		}
		if r.URL.Query().Get("imported") != "" {
			d.Notice += " The pasted settings were imported (the summary above names the preset they selected)."
		}
	}
	c.render(w, r, http.StatusOK, "settings", d)
}

// formFromSettings fills the form with s (secrets only as masked hints).
func formFromSettings(typ *destination.Type, s destination.Settings) []sectionView {
	vals := settingsDoc(s)
	var out []sectionView
	for _, sec := range settingSections(typ) {
		sv := sectionView{Title: sec.Title}
		for _, f := range sec.Fields {
			fv := fieldView{Field: f}
			v := vals[f.Name]
			switch f.Kind {
			case destination.KindSecret:
				if str, _ := v.(string); str != "" {
					fv.Masked = store.MaskKey(str)
				}
			case destination.KindBool:
				fv.Checked, _ = v.(bool)
			case destination.KindList, destination.KindLines:
				var items []string
				for _, e := range asSlice(v) {
					items = append(items, fmt.Sprint(e))
				}
				sep := ", "
				if f.Kind == destination.KindLines {
					sep = "\n"
				}
				fv.Value = strings.Join(items, sep)
			case destination.KindDuration:
				if n, ok := v.(float64); ok {
					fv.Value = time.Duration(n).String()
				}
			case destination.KindTristate, destination.KindJSON:
				fv.Value = privacyFieldValue(f.Kind, v)
			case destination.KindMap:
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

// settingsDoc is s as its JSON document (names → values); nil for none.
func settingsDoc(s destination.Settings) map[string]any {
	var vals map[string]any
	if s != nil {
		raw, _ := json.Marshal(s)
		_ = json.Unmarshal(raw, &vals)
	}
	return vals
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// formToSettings builds the settings document from a submitted form. An
// empty secret keeps cur's value unless its "clear" box is ticked. Errors
// are per field (input the form itself cannot turn into JSON).
func formToSettings(typ *destination.Type, form map[string][]string, cur destination.Settings) (json.RawMessage, map[string]string) {
	curVals := settingsDoc(cur)
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	doc := map[string]any{}
	errs := map[string]string{}
	for _, sec := range settingSections(typ) {
		for _, f := range sec.Fields {
			v := strings.TrimSpace(get(f.Name))
			switch f.Kind {
			case destination.KindSecret:
				old, _ := curVals[f.Name].(string)
				switch {
				case get(f.Name+".clear") != "":
				case v != "":
					doc[f.Name] = v
				case old != "":
					doc[f.Name] = old
				}
			case destination.KindBool:
				doc[f.Name] = get(f.Name) != ""
			case destination.KindNumber:
				if v != "" {
					n, err := strconv.ParseInt(v, 10, 64)
					if err != nil {
						errs[f.Name] = "want a whole number"
					} else {
						doc[f.Name] = n
					}
				}
			case destination.KindList:
				items := []string{}
				for _, p := range strings.Split(v, ",") {
					if p = strings.TrimSpace(p); p != "" {
						items = append(items, p)
					}
				}
				doc[f.Name] = items
			case destination.KindLines:
				var items []string
				for _, p := range strings.Split(v, "\n") {
					if p = strings.TrimSpace(p); p != "" {
						items = append(items, p)
					}
				}
				if len(items) > 0 {
					doc[f.Name] = items
				}
			case destination.KindTristate, destination.KindJSON:
				if val, err := privacyFormValue(f.Kind, v); err != nil {
					errs[f.Name] = err.Error()
				} else if val != nil {
					doc[f.Name] = val
				}
			case destination.KindMap:
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
	if typ.AdjustForm != nil {
		typ.AdjustForm(doc, cur)
	}
	raw, _ := json.Marshal(doc)
	return raw, errs
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
	typ, _ := c.deps.Settings.DestType(dest)
	d := &settingsData{pageData: pageData{Title: typ.Title + " destination: " + dest, Nav: "dest:" + dest}, Dest: dest, Type: typ.Title, Version: version, CanImport: typ.Import != nil}
	cur, saved, err := c.current(r.Context(), dest)
	if err != nil {
		c.renderError(w, r, http.StatusInternalServerError, "Could not read the settings: "+err.Error())
		return
	}
	d.Updated = fmtTime(saved.UpdatedAt)
	raw, fieldErrs := formToSettings(typ, r.PostForm, cur)
	imported := false
	if text := strings.TrimSpace(r.PostFormValue("import")); text != "" && typ.Import != nil {
		// A pasted export replaces the form.
		doc, _, err := typ.Import([]byte(text), cur)
		if err != nil {
			fieldErrs = map[string]string{"import": err.Error()}
			d.Error = "Not imported: " + err.Error()
		} else {
			raw, imported = doc, true
		}
	}
	if len(fieldErrs) == 0 {
		res, err := c.deps.Settings.ApplySettings(r.Context(), dest, raw, version)
		if err == nil {
			loc := fmt.Sprintf("%s/destinations/%s?saved=%d", c.cfg.Prefix, dest, res.Version)
			if imported {
				loc += "&imported=1"
			}
			http.Redirect(w, r, loc, http.StatusSeeOther)
			return
		}
		switch ses := destination.SettingsErrors(err); {
		case len(ses) > 0:
			for _, se := range ses {
				name, _, _ := strings.Cut(se.Setting, ".")
				if name == "" || !isField(typ, name) {
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
	d.Sections = submittedForm(typ, r, raw, cur, fieldErrs)
	c.render(w, r, http.StatusOK, "settings", d)
}

// submittedForm shows what was submitted, with the errors next to their
// fields. Secrets are not echoed back: the masked saved key is shown.
func submittedForm(typ *destination.Type, r *http.Request, raw json.RawMessage, cur destination.Settings, fieldErrs map[string]string) []sectionView {
	submitted := cur
	if s, err := typ.Parse(raw); err == nil {
		submitted = s
	}
	curVals := settingsDoc(cur)
	sections := formFromSettings(typ, submitted)
	for i := range sections {
		for j := range sections[i].Fields {
			f := &sections[i].Fields[j]
			f.Error = fieldErrs[f.Name]
			switch f.Kind {
			case destination.KindSecret:
				old, _ := curVals[f.Name].(string)
				f.Masked = store.MaskKey(old)
			case destination.KindMap, destination.KindLines, destination.KindList, destination.KindText, destination.KindSelect,
				destination.KindNumber, destination.KindDuration, destination.KindTristate, destination.KindJSON, destination.KindCode:
				// Keep exactly what the user typed (ParseSettings may not
				// have been able to read it).
				if vs, ok := r.PostForm[f.Name]; ok && len(vs) > 0 {
					f.Value = vs[0]
				}
			case destination.KindBool:
				f.Checked = r.PostFormValue(f.Name) != ""
			}
		}
	}
	return sections
}

func isField(typ *destination.Type, name string) bool {
	return slices.ContainsFunc(typ.Fields, func(f destination.Field) bool { return f.Name == name })
}
