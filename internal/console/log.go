package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/store"
)

const logPageSize = 50

type logData struct {
	pageData
	Query    string
	Status   string
	Dest     string
	Statuses []store.Status
	Entries  []store.LogEntry
	Counts   []statusCount
	Older    string // link to the next (older) page, if any
	Paged    bool
}

// logPage lists delivery log rows, newest first, searchable by messageId,
// userId or email, filterable by status and destination.
func (c *Console) logPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := &logData{pageData: pageData{Title: "Delivery log", Nav: "log"},
		Query: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), Dest: q.Get("dest"), Statuses: store.Statuses()}
	lq := store.LogQuery{Text: d.Query, Dest: d.Dest, Limit: logPageSize}
	if d.Status != "" {
		if st := store.Status(d.Status); st.Valid() {
			lq.Status = st
		} else {
			d.Error = "Unknown status " + strconv.Quote(d.Status) + "."
		}
	}
	if b, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && b > 0 {
		lq.Before = time.Unix(0, b)
		lq.BeforeID, _ = strconv.ParseInt(q.Get("beforeId"), 10, 64)
		d.Paged = true
	}
	entries, err := c.deps.Log.QueryLog(r.Context(), lq)
	if err != nil {
		d.Error = "Could not read the delivery log: " + err.Error()
	}
	d.Entries = entries
	if n := len(entries); n == logPageSize {
		last := entries[n-1]
		v := url.Values{}
		for k, val := range map[string]string{"q": d.Query, "status": d.Status, "dest": d.Dest} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("before", strconv.FormatInt(last.Time.UnixNano(), 10))
		v.Set("beforeId", strconv.FormatInt(last.ID, 10))
		d.Older = c.cfg.Prefix + "/log?" + v.Encode()
	}
	if counts, err := c.deps.Log.CountLog(r.Context(), d.Dest); err == nil {
		for _, st := range store.Statuses() {
			if n := counts[st]; n > 0 {
				d.Counts = append(d.Counts, statusCount{Status: st, N: n})
			}
		}
	}
	c.render(w, r, http.StatusOK, "log", d)
}
