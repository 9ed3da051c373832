package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/store"
)

// pingTimeout bounds "test connection" so a hung destination cannot hang
// the page.
const pingTimeout = 15 * time.Second

type connData struct {
	pageData
	OK      bool
	Message string
}

// testConnection asks the destination to make one harmless call with the
// saved settings, overlaid with what the form holds (a secret typed but
// not saved yet, a changed URL), and says what happened.
func (c *Console) testConnection(w http.ResponseWriter, r *http.Request) {
	dest := r.PathValue("dest")
	if !c.hasDest(dest) {
		c.renderError(w, r, http.StatusNotFound, fmt.Sprintf("No destination named %q.", dest))
		return
	}
	if err := r.ParseForm(); err != nil {
		c.renderError(w, r, http.StatusBadRequest, "Unreadable form: "+err.Error())
		return
	}
	typ, _ := c.deps.Settings.DestType(dest)
	cur, _, err := c.current(r.Context(), dest)
	if err != nil {
		c.renderError(w, r, http.StatusInternalServerError, "Could not read the settings: "+err.Error())
		return
	}
	d := &connData{}
	doc, typed := overlayForm(typ, settingsDoc(cur), r.PostForm, false)
	which := "the saved settings"
	if typed {
		which = "the settings typed above"
	}
	raw, _ := jsonOf(doc)
	s, err := typ.Parse(raw)
	if err != nil {
		// Another field of the form is still wrong (the save will say
		// so): test with the secrets typed over the saved settings.
		doc, _ = overlayForm(typ, settingsDoc(cur), r.PostForm, true)
		raw, _ = jsonOf(doc)
		s, err = typ.Parse(raw)
	}
	if err != nil {
		d.Message = "Cannot test: " + redactSecrets(err.Error(), typ, doc, settingsDoc(cur))
		c.renderPartial(w, r, "settings", "conn", d)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pingTimeout)
	defer cancel()
	start := c.cfg.Now()
	ok, msg := c.deps.Pinger.Ping(ctx, dest, s)
	took := c.cfg.Now().Sub(start).Round(time.Millisecond)
	d.OK = ok
	d.Message = fmt.Sprintf("%s (with %s, after %s)", msg, which, took)
	// No secret comes back, even inside a destination's error.
	d.Message = redactSecrets(d.Message, typ, doc, settingsDoc(cur))
	c.renderPartial(w, r, "settings", "conn", d)
}

// overlayForm puts the non-empty values the form posted (only the secrets
// when secretsOnly) over the saved settings document; typed reports
// whether a secret was typed.
func overlayForm(typ *destination.Type, doc map[string]any, form map[string][]string, secretsOnly bool) (map[string]any, bool) {
	if doc == nil {
		doc = map[string]any{}
	}
	typed := false
	for _, f := range typ.Fields {
		vs := form[f.Name]
		if len(vs) == 0 {
			continue
		}
		v := strings.TrimSpace(vs[0])
		switch {
		case len(form[f.Name+".clear"]) > 0:
			delete(doc, f.Name)
		case v == "":
		case f.Kind == destination.KindSecret:
			doc[f.Name], typed = v, true
		case secretsOnly:
		case f.Kind == destination.KindText || f.Kind == destination.KindSelect || f.Kind == destination.KindDuration:
			doc[f.Name] = v
		}
	}
	return doc, typed
}

// redactSecrets masks the values of secret fields of the given documents.
func redactSecrets(text string, typ *destination.Type, docs ...map[string]any) string {
	for _, f := range typ.Fields {
		if f.Kind != destination.KindSecret {
			continue
		}
		for _, doc := range docs {
			if k, _ := doc[f.Name].(string); len(k) >= 4 {
				text = strings.ReplaceAll(text, k, store.MaskKey(k))
			}
		}
	}
	return text
}
