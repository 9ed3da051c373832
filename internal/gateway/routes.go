package gateway

import (
	"net/http"

	"github.com/relaycdp/relay/internal/spec"
)

// route is one ingest path.
type route struct {
	path        string // also the metrics label: bounded, never the raw URL
	defaultType string // type implied by the path; "" for batches
	queryKey    bool   // the write key may come in ?writeKey= (sendBeacon cannot set headers)
	// bodyKey: the write key may come in the body only (analytics.js
	// avoids a CORS preflight that way); such a body is read, at most
	// MaxBodyKeyBytes of it, before the key is known.
	bodyKey bool
	noop    bool // /v1/m: answered 200 and ignored
}

// ingestRoutes lists every path SDKs post to (clients.md §1, §2, §4, §6).
func ingestRoutes() []route {
	return []route{
		{path: "/v1/identify", defaultType: spec.TypeIdentify},
		{path: "/v1/track", defaultType: spec.TypeTrack},
		{path: "/v1/page", defaultType: spec.TypePage},
		{path: "/v1/screen", defaultType: spec.TypeScreen},
		{path: "/v1/group", defaultType: spec.TypeGroup},
		{path: "/v1/alias", defaultType: spec.TypeAlias},
		{path: "/v1/batch"},
		{path: "/v1/import"},
		// analytics.js (analytics-next) short paths: the type's first letter.
		{path: "/v1/i", bodyKey: true, defaultType: spec.TypeIdentify},
		{path: "/v1/t", bodyKey: true, defaultType: spec.TypeTrack},
		{path: "/v1/p", bodyKey: true, defaultType: spec.TypePage},
		{path: "/v1/s", bodyKey: true, defaultType: spec.TypeScreen},
		{path: "/v1/g", bodyKey: true, defaultType: spec.TypeGroup},
		{path: "/v1/a", bodyKey: true, defaultType: spec.TypeAlias},
		{path: "/v1/b", bodyKey: true},
		{path: "/v1/m", noop: true}, // analytics.js telemetry
		// RudderStack's JS SDK beacon transport (navigator.sendBeacon).
		{path: "/beacon/v1/batch", queryKey: true},
	}
}

func (g *Gateway) routes() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range ingestRoutes() {
		if rt.noop {
			mux.HandleFunc("POST "+rt.path, g.serveNoop(rt))
		} else {
			mux.HandleFunc("POST "+rt.path, g.serveIngest(rt))
		}
		mux.HandleFunc("OPTIONS "+rt.path, g.servePreflight(rt))
	}
	// GET also matches HEAD in ServeMux patterns.
	mux.HandleFunc("GET /health", serveHealth)
	mux.HandleFunc("GET /v1/health", serveHealth)
	return mux
}

// CORS for analytics.js: the Authorization header makes browsers send a
// preflight (clients.md §4). No cookies are used, so echoing the Origin is
// safe and Allow-Credentials is not needed.
const (
	corsAllowMethods = "POST"
	// AnonymousId and Rsa-*: RudderStack JS SDK v3's XHR transport headers.
	corsAllowHeaders = "Authorization, Content-Type, X-Retry-Count, AnonymousId, Rsa-Retry-Attempt, Rsa-Since-First-Attempt, Rsa-Since-Last-Attempt"
	corsMaxAge       = "86400" // seconds; saves a preflight per event
)

func setCORS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if origin := r.Header.Get("Origin"); origin != "" {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	} else {
		h.Set("Access-Control-Allow-Origin", "*")
	}
}

func (g *Gateway) servePreflight(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		Preflight(w, r, corsAllowMethods)
		g.metrics.requests.WithLabelValues(rt.path, "204").Inc()
	}
}

// CORS sets the CORS headers browser SDKs need on an answer. Other
// browser-facing endpoints (device mode's settings documents) share it.
func CORS(w http.ResponseWriter, r *http.Request) { setCORS(w, r) }

// Preflight answers a CORS preflight for methods (e.g. "GET").
func Preflight(w http.ResponseWriter, r *http.Request, methods string) {
	setCORS(w, r)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) serveNoop(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		setCORS(w, r)
		writeSuccess(w)
		g.metrics.requests.WithLabelValues(rt.path, "200").Inc()
	}
}

func serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(`{"ok":true}` + "\n"))
}
