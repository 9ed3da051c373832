package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo/kapi"
)

// pingTimeout bounds "test connection" so a hung Klaviyo cannot hang the page.
const pingTimeout = 15 * time.Second

type connData struct {
	pageData
	OK      bool
	Message string
}

// testConnection makes one harmless authenticated read with the key in the
// form, or the saved key when the field is empty, and says what happened.
func (c *Console) testConnection(w http.ResponseWriter, r *http.Request) {
	dest := r.PathValue("dest")
	if !c.hasDest(dest) {
		c.renderError(w, r, http.StatusNotFound, fmt.Sprintf("No destination named %q.", dest))
		return
	}
	d := &connData{}
	key := strings.TrimSpace(r.PostFormValue("privateApiKey"))
	which := "the key typed above"
	if key == "" || r.PostFormValue("privateApiKey.clear") != "" {
		cur, _, err := c.current(r.Context(), dest)
		if err != nil {
			c.renderError(w, r, http.StatusInternalServerError, "Could not read the settings: "+err.Error())
			return
		}
		key, which = cur.PrivateAPIKey, "the saved key"
	}
	if key == "" {
		d.Message = "No private API key is set: enter one above."
		c.renderPartial(w, r, "settings", "conn", d)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pingTimeout)
	defer cancel()
	start := c.cfg.Now()
	err := c.deps.Pinger.Ping(ctx, dest, key)
	took := c.cfg.Now().Sub(start).Round(time.Millisecond)
	d.OK, d.Message = describePing(err, which, took)
	// The key itself must not come back, even inside an error.
	d.Message = strings.ReplaceAll(d.Message, key, "[key]")
	c.renderPartial(w, r, "settings", "conn", d)
}

func describePing(err error, which string, took time.Duration) (bool, string) {
	if err == nil {
		return true, fmt.Sprintf("Connected: Klaviyo accepted %s (GET /api/profiles answered 200 in %s).", which, took)
	}
	var ke *kapi.Error
	if !errors.As(err, &ke) {
		return false, fmt.Sprintf("Failed after %s: %v", took, err)
	}
	var detail []string
	for _, e := range ke.Errors {
		s := e.Code
		if e.Detail != "" {
			s = strings.TrimSpace(s + ": " + e.Detail)
		} else if e.Title != "" {
			s = strings.TrimSpace(s + ": " + e.Title)
		}
		if s != "" {
			detail = append(detail, s)
		}
	}
	var msg string
	switch {
	case ke.Status == 401 || ke.Status == 403:
		msg = fmt.Sprintf("Klaviyo refused %s with %d", which, ke.Status)
	case ke.Status == 429:
		msg = "Klaviyo is rate limiting this key (429); the key itself was accepted"
	case ke.Status != 0:
		msg = fmt.Sprintf("Klaviyo answered %d", ke.Status)
	default:
		msg = fmt.Sprintf("Klaviyo could not be reached: %v", err)
	}
	if len(detail) > 0 {
		msg += " (" + strings.Join(detail, "; ") + ")"
	}
	return false, msg + fmt.Sprintf(" after %s.", took)
}
