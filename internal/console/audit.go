package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/store"
)

const auditPageSize = 50

type auditData struct {
	pageData
	User, MessageID, Since, Until string
	Entries                       []store.AuditEntry
	Older                         string
	Export                        string
	Unavailable                   bool
}

// auditQuery reads the page's filters: user (userId or email), messageId,
// since and until (RFC 3339 or YYYY-MM-DD), before (paging).
func auditQuery(q url.Values) (store.AuditQuery, string) {
	aq := store.AuditQuery{User: strings.TrimSpace(q.Get("user")), MessageID: strings.TrimSpace(q.Get("id")), Limit: auditPageSize}
	for _, f := range []struct {
		name string
		to   *time.Time
	}{{"since", &aq.Since}, {"until", &aq.Until}} {
		v := strings.TrimSpace(q.Get(f.name))
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, v); err != nil {
				return aq, "Cannot read " + f.name + " " + strconv.Quote(v) + ": want a date (2026-01-31) or an RFC 3339 time."
			}
		}
		*f.to = t
	}
	aq.BeforeID, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	return aq, ""
}

// auditPage lists the privacy audit log: for each delivered event, the
// keys sent and the keys the policy dropped (never values).
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := &auditData{pageData: pageData{Title: "Privacy audit log", Nav: "audit"},
		User: q.Get("user"), MessageID: q.Get("id"), Since: q.Get("since"), Until: q.Get("until")}
	if c.deps.Audit == nil {
		d.Unavailable = true
		c.render(w, r, http.StatusOK, "audit", d)
		return
	}
	aq, bad := auditQuery(q)
	if bad != "" {
		d.Error = bad
		c.render(w, r, http.StatusBadRequest, "audit", d)
		return
	}
	entries, err := c.deps.Audit.QueryAudit(r.Context(), aq)
	if err != nil {
		d.Error = "Could not read the audit log: " + err.Error()
		c.render(w, r, http.StatusInternalServerError, "audit", d)
		return
	}
	d.Entries = entries
	keep := url.Values{"user": {d.User}, "id": {d.MessageID}, "since": {d.Since}, "until": {d.Until}}
	d.Export = c.cfg.Prefix + "/audit/export?" + keep.Encode()
	if len(entries) == auditPageSize {
		keep.Set("before", strconv.FormatInt(entries[len(entries)-1].ID, 10))
		d.Older = c.cfg.Prefix + "/audit?" + keep.Encode()
	}
	c.render(w, r, http.StatusOK, "audit", d)
}

// auditExport streams every entry the filters select as NDJSON.
func (c *Console) auditExport(w http.ResponseWriter, r *http.Request) {
	if c.deps.Audit == nil {
		http.Error(w, "this store keeps no audit log", http.StatusNotFound)
		return
	}
	aq, bad := auditQuery(r.URL.Query())
	if bad != "" {
		http.Error(w, bad, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="relay-audit.ndjson"`)
	if _, err := store.ExportAudit(r.Context(), c.deps.Audit, aq, w); err != nil {
		// Headers are gone; the cut-off body and the log say it failed.
		c.log.Error("audit export", "err", err)
	}
}
