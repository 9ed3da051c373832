package gateway

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// Messages of the 401 answers. They never contain the key.
const (
	msgMissingKey     = "missing write key: send it as the HTTP Basic auth username (base64 of \"KEY:\")"
	msgMissingBodyKey = "missing write key: send it as the HTTP Basic auth username (base64 of \"KEY:\") or as writeKey in the JSON body"
	msgInvalidKey     = "invalid write key"
)

// basicKey returns the write key from HTTP Basic auth: the username, with
// the password ignored. Unlike Request.BasicAuth it accepts a credential
// without the colon, which Segment's docs say "might work" (clients.md §1).
// Any other scheme (e.g. OAuth's Bearer, which comes with a body writeKey)
// yields "".
func basicKey(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	const prefix = "basic "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return ""
	}
	enc := strings.TrimSpace(auth[len(prefix):])
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		// Some hand-written clients drop the padding.
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(enc, "=")); err != nil {
			return ""
		}
	}
	user, _, _ := strings.Cut(string(raw), ":")
	return strings.TrimSpace(user)
}

// requestKey returns the write key carried outside the body: Basic auth
// first, then ?writeKey= on routes that allow it (sendBeacon cannot set
// headers).
func requestKey(r *http.Request, rt route) string {
	if k := basicKey(r); k != "" {
		return k
	}
	if rt.queryKey {
		return strings.TrimSpace(r.URL.Query().Get("writeKey"))
	}
	return ""
}

// redact removes key from s, so an error message built by a collaborator
// (a store error, a parse error quoting the body) cannot leak it.
func redact(s, key string) string {
	if key == "" {
		return s
	}
	return strings.ReplaceAll(s, key, "[redacted]")
}
