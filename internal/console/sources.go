package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/relaycdp/relay/internal/store"
)

type sourcesData struct {
	pageData
	Sources []sourceView
	// NewKey is shown in full exactly once: in the answer to its creation.
	NewKey    *newKey
	NameError string
	Name      string
}

type sourceView struct {
	Name   string
	Active int
	Keys   []keyView
}

type keyView struct {
	ID      string // HMAC of the key: names it in forms without revealing it
	Masked  string
	Seeded  bool
	Created string
	Revoked string
}

type newKey struct {
	Source string
	Key    string
	Host   string
}

func (c *Console) sourcesPage(w http.ResponseWriter, r *http.Request) {
	d := &sourcesData{pageData: pageData{Title: "Sources and write keys", Nav: "sources"}}
	q := r.URL.Query()
	if n := q.Get("created"); n != "" {
		d.Notice = fmt.Sprintf("Source %q created. Add a write key to send events to it.", n)
	}
	if k := q.Get("revoked"); k != "" {
		d.Notice = fmt.Sprintf("Write key %s revoked: requests with it are refused from now on.", k)
	}
	c.renderSources(w, r, d)
}

func (c *Console) renderSources(w http.ResponseWriter, r *http.Request, d *sourcesData) {
	srcs, err := c.deps.Sources.Sources(r.Context())
	if err != nil {
		d.Error = "Could not list sources: " + err.Error()
	}
	for _, s := range srcs {
		sv := sourceView{Name: s.Name}
		for _, k := range s.WriteKeys {
			kv := keyView{ID: c.keyIDs.id(k.Key), Masked: store.MaskKey(k.Key), Seeded: k.Seeded, Created: fmtTime(k.CreatedAt)}
			if !k.RevokedAt.IsZero() {
				kv.Revoked = fmtTime(k.RevokedAt)
			} else {
				sv.Active++
			}
			sv.Keys = append(sv.Keys, kv)
		}
		d.Sources = append(d.Sources, sv)
	}
	c.render(w, r, http.StatusOK, "sources", d)
}

func (c *Console) createSource(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	d := &sourcesData{pageData: pageData{Title: "Sources and write keys", Nav: "sources"}, Name: name}
	if name == "" {
		d.NameError = "Give the source a name, e.g. web or ios."
		c.renderSources(w, r, d)
		return
	}
	if _, err := c.deps.Sources.CreateSource(r.Context(), name); err != nil {
		switch {
		case errors.Is(err, store.ErrExists):
			d.NameError = fmt.Sprintf("A source named %q already exists.", name)
		case errors.Is(err, store.ErrInvalid):
			d.NameError = "Not a valid name: " + err.Error()
		default:
			d.Error = "Could not create the source: " + err.Error()
		}
		c.renderSources(w, r, d)
		return
	}
	http.Redirect(w, r, c.cfg.Prefix+"/sources?created="+url.QueryEscape(name), http.StatusSeeOther)
}

func (c *Console) createKey(w http.ResponseWriter, r *http.Request) {
	src := r.PostFormValue("source")
	d := &sourcesData{pageData: pageData{Title: "Sources and write keys", Nav: "sources"}}
	k, err := c.deps.Sources.CreateWriteKey(r.Context(), src)
	if err != nil {
		d.Error = "Could not create a write key: " + err.Error()
		c.renderSources(w, r, d)
		return
	}
	d.NewKey = &newKey{Source: src, Key: k.Key, Host: r.Host}
	c.renderSources(w, r, d)
}

func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("key")
	d := &sourcesData{pageData: pageData{Title: "Sources and write keys", Nav: "sources"}}
	srcs, err := c.deps.Sources.Sources(r.Context())
	if err != nil {
		d.Error = "Could not list sources: " + err.Error()
		c.renderSources(w, r, d)
		return
	}
	for _, s := range srcs {
		for _, k := range s.WriteKeys {
			if id == "" || c.keyIDs.id(k.Key) != id {
				continue
			}
			if err := c.deps.Sources.RevokeWriteKey(r.Context(), k.Key); err != nil {
				d.Error = "Could not revoke the key: " + err.Error()
				c.renderSources(w, r, d)
				return
			}
			http.Redirect(w, r, c.cfg.Prefix+"/sources?revoked="+url.QueryEscape(store.MaskKey(k.Key)), http.StatusSeeOther)
			return
		}
	}
	d.Error = "No such write key (the page may be out of date)."
	c.renderSources(w, r, d)
}
