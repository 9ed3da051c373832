package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

// TransformationVersion is one saved transformation of a destination.
type TransformationVersion struct {
	N       int       `json:"n"` // 1, 2, … in save order
	Source  string    `json:"source"`
	SavedAt time.Time `json:"savedAt"`
	// Settings is the settings version the save produced.
	Settings int64 `json:"settings"`
}

// TransformationVersions keeps every saved transformation of a
// destination, so the editor can roll back. Optional: without it the
// editor saves without history.
type TransformationVersions interface {
	TransformationVersions(ctx context.Context, dest string) ([]TransformationVersion, error)
	AddTransformationVersion(ctx context.Context, dest string, v TransformationVersion) error
}

type transformationData struct {
	pageData
	Dest     string
	Version  int64 // settings version the page was rendered from
	Source   string
	Event    string
	Versions []TransformationVersion
	History  bool
}

// transformationPage is the editor: the source, an event to try it on
// beside it (input → transformed → Klaviyo requests, the tester's code
// path), and the saved versions with rollback.
func (c *Console) transformationPage(w http.ResponseWriter, r *http.Request) {
	dest := r.PathValue("dest")
	if !c.hasDest(dest) {
		c.renderError(w, r, http.StatusNotFound, fmt.Sprintf("No destination named %q.", dest))
		return
	}
	cur, saved, err := c.current(r.Context(), dest)
	if err != nil {
		c.renderError(w, r, http.StatusInternalServerError, "Could not read the settings: "+err.Error())
		return
	}
	doc := settingsDoc(cur)
	source, _ := doc["transformation"].(string)
	listID, _ := doc["listId"].(string)
	d := &transformationData{pageData: pageData{Title: "Transformation: " + dest, Nav: "dest:" + dest}, Dest: dest,
		Version: saved.Version, Source: source, Event: samples(c.cfg.Now(), listID)[1].JSON}
	if n := r.URL.Query().Get("saved"); n != "" {
		d.Notice = "Saved as version " + n + "."
	}
	if c.deps.Transformations != nil {
		d.History = true
		if d.Versions, err = c.deps.Transformations.TransformationVersions(r.Context(), dest); err != nil {
			d.Error = "Could not read the saved versions: " + err.Error()
		}
		for i, j := 0, len(d.Versions)-1; i < j; i, j = i+1, j-1 {
			d.Versions[i], d.Versions[j] = d.Versions[j], d.Versions[i] // newest first
		}
	}
	c.render(w, r, http.StatusOK, "transformation", d)
}

// transformationTry runs the edited source on the event with the saved
// settings otherwise, and renders the tester's result block.
func (c *Console) transformationTry(w http.ResponseWriter, r *http.Request) {
	dest := r.PathValue("dest")
	d := &transformData{}
	s, _, err := c.current(r.Context(), dest)
	if err != nil {
		d.SettingsError = "Could not read the settings: " + err.Error()
		c.renderPartial(w, r, "tester", "result", d)
		return
	}
	typ, _ := c.deps.Settings.DestType(dest)
	live := settingsDoc(s)
	doc := settingsDoc(s)
	if doc == nil {
		doc = map[string]any{}
	}
	doc["transformation"] = strings.TrimSpace(r.PostFormValue("source"))
	raw, _ := jsonOf(doc)
	edited, err := typ.Parse(raw)
	if err != nil {
		d.SettingsError = redactSecrets(err.Error(), typ, doc, live)
		c.renderPartial(w, r, "tester", "result", d)
		return
	}
	res, err := typ.Test([]byte(r.PostFormValue("event")), spec.Options{MaxEventBytes: maxEventBytes}, edited)
	if err != nil {
		d.InputError = "Unreadable input: " + err.Error()
		c.renderPartial(w, r, "tester", "result", d)
		return
	}
	d.Transformed = string(res.Transformed)
	d.Output, d.Outcomes = redactSecrets(string(res.Output), typ, doc, live), res.Events
	c.renderPartial(w, r, "tester", "result", d)
}

// transformationSave saves the source into the destination's settings
// (checked like any settings save, with the page's settings version) and
// records it as a new version. "rollback" names a saved version to save
// again instead.
func (c *Console) transformationSave(w http.ResponseWriter, r *http.Request) {
	dest := r.PathValue("dest")
	if !c.hasDest(dest) {
		c.renderError(w, r, http.StatusNotFound, fmt.Sprintf("No destination named %q.", dest))
		return
	}
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil || version < 0 {
		c.renderError(w, r, http.StatusBadRequest, "The form has no valid settings version: reload the page.")
		return
	}
	source := strings.TrimSpace(r.PostFormValue("source"))
	if n := r.PostFormValue("rollback"); n != "" && c.deps.Transformations != nil {
		vs, err := c.deps.Transformations.TransformationVersions(r.Context(), dest)
		if err != nil {
			c.renderError(w, r, http.StatusInternalServerError, "Could not read the saved versions: "+err.Error())
			return
		}
		found := false
		for _, v := range vs {
			if strconv.Itoa(v.N) == n {
				source, found = v.Source, true
			}
		}
		if !found {
			c.renderError(w, r, http.StatusNotFound, "No saved version "+n+".")
			return
		}
	}
	raw, err := c.withTransformation(r.Context(), dest, source)
	if err != nil {
		c.renderError(w, r, http.StatusInternalServerError, "Could not read the settings: "+err.Error())
		return
	}
	res, err := c.deps.Settings.ApplySettings(r.Context(), dest, raw, version)
	if err != nil {
		msg := "Not saved: " + err.Error()
		if errors.Is(err, store.ErrVersionConflict) {
			msg = "Not saved: someone saved the settings in between; reload the page."
		}
		cur, _ := c.deps.Settings.Settings(dest)
		typ, _ := c.deps.Settings.DestType(dest)
		d := &transformationData{pageData: pageData{Title: "Transformation: " + dest, Nav: "dest:" + dest, Error: redactSecrets(msg, typ, settingsDoc(cur))},
			Dest: dest, Version: version, Source: source, Event: r.PostFormValue("event")}
		c.render(w, r, http.StatusOK, "transformation", d)
		return
	}
	n := 0
	if c.deps.Transformations != nil {
		vs, err := c.deps.Transformations.TransformationVersions(r.Context(), dest)
		if err == nil {
			n = len(vs) + 1
			err = c.deps.Transformations.AddTransformationVersion(r.Context(), dest,
				TransformationVersion{N: n, Source: source, SavedAt: c.cfg.Now().UTC(), Settings: res.Version})
		}
		if err != nil {
			c.log.Error("record transformation version", "dest", dest, "err", err)
		}
	}
	http.Redirect(w, r, fmt.Sprintf("%s/destinations/%s/transformation?saved=%d", c.cfg.Prefix, dest, n), http.StatusSeeOther)
}

// withTransformation is the stored settings document with only
// "transformation" replaced, so nothing else the document holds changes.
func (c *Console) withTransformation(ctx context.Context, dest, source string) (json.RawMessage, error) {
	doc := map[string]any{}
	saved, err := c.deps.StoredSettings.DestSettings(ctx, dest)
	switch {
	case errors.Is(err, store.ErrNotFound):
		live, _ := c.deps.Settings.Settings(dest)
		b, _ := json.Marshal(live)
		_ = json.Unmarshal(b, &doc)
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(saved.Settings, &doc); err != nil {
			return nil, err
		}
	}
	for k := range doc {
		if strings.EqualFold(k, "transformation") {
			delete(doc, k)
		}
	}
	if source != "" {
		doc["transformation"] = source
	}
	return json.Marshal(doc)
}
