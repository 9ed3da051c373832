// Package devicemode owns Klaviyo's device mode: the configuration
// documents unchanged browser SDKs fetch (analytics-next's project settings
// at /v1/projects/{writeKey}/settings, RudderStack JS SDK v3's source
// config at /sourceConfig), Relay's own browser integration that loads
// Klaviyo's onsite script and mirrors calls into it (js/klaviyo.js,
// served at /devicemode/), and the rule that keeps delivery from sending
// Klaviyo an event the browser already sent it (SentFromBrowser).
// docs/DEVICE-MODE.md describes what runs where.
package devicemode

import (
	"context"
	_ "embed"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/relaycdp/relay/internal/gateway"
	"github.com/relaycdp/relay/internal/klaviyo"
)

//go:embed js/klaviyo.js
var integrationJS []byte

// Paths of the integration script. analytics-next loads ScriptPath (a
// remote plugin's url); RudderStack v3 loads <destSDKBaseURL>/Klaviyo.min.js,
// so destSDKBaseURL is <relay>/devicemode.
const (
	ScriptPath      = "/devicemode/klaviyo.js"
	RudderScriptDir = "/devicemode"
)

// Resolver finds the settings of the Klaviyo destinations fed by the
// source of writeKey. ok is false for an unknown or revoked key; err is a
// lookup failure.
type Resolver interface {
	Resolve(ctx context.Context, writeKey string) (dests []klaviyo.Settings, ok bool, err error)
}

// Server serves the settings documents and the integration script.
type Server struct {
	resolve Resolver
	log     *slog.Logger
}

// New returns a Server; log may be nil.
func New(r Resolver, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{resolve: r, log: log}
}

// Register adds the device-mode routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/projects/{writeKey}/settings", s.serveSegment)
	mux.HandleFunc("GET /sourceConfig", s.serveRudder)
	mux.HandleFunc("GET /sourceConfig/", s.serveRudder)
	mux.HandleFunc("OPTIONS /sourceConfig", preflightGET)
	mux.HandleFunc("OPTIONS /sourceConfig/", preflightGET)
	mux.HandleFunc("GET "+ScriptPath, serveScript)
	mux.HandleFunc("GET "+RudderScriptDir+"/Klaviyo.min.js", serveScript)
}

func preflightGET(w http.ResponseWriter, r *http.Request) { gateway.Preflight(w, r, "GET") }

func serveScript(w http.ResponseWriter, r *http.Request) {
	gateway.CORS(w, r)
	w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(integrationJS)
}

func (s *Server) serveSegment(w http.ResponseWriter, r *http.Request) {
	gateway.CORS(w, r)
	key := strings.TrimSpace(r.PathValue("writeKey"))
	dev, ok := s.lookup(w, r, key)
	if !ok {
		return
	}
	writeJSON(w, segmentSettings(key, originOf(r), dev))
}

// serveRudder answers RudderStack v3's source config request, which
// carries the write key as Basic auth and as ?writeKey=.
func (s *Server) serveRudder(w http.ResponseWriter, r *http.Request) {
	gateway.CORS(w, r)
	key, _, _ := r.BasicAuth()
	if key == "" {
		key = r.URL.Query().Get("writeKey")
	}
	key = strings.TrimSpace(key)
	dev, ok := s.lookup(w, r, key)
	if !ok {
		return
	}
	writeJSON(w, rudderSourceConfig(key, originOf(r), dev))
}

// lookup resolves key to the device-mode settings to serve (nil when no
// destination of the source is in device mode). An unknown key gets a
// 404 that says nothing about which keys exist.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, key string) (*klaviyo.Settings, bool) {
	if key == "" {
		http.Error(w, "not found", http.StatusNotFound)
		return nil, false
	}
	dests, ok, err := s.resolve.Resolve(r.Context(), key)
	if err != nil {
		s.log.Error("device mode: source lookup failed", slog.String("path", routeOf(r)), slog.String("err", redact(err.Error(), key)))
		w.Header().Set("Retry-After", "5")
		http.Error(w, "source lookup failed; try again", http.StatusServiceUnavailable)
		return nil, false
	}
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return nil, false
	}
	for i := range dests {
		if dests[i].EffectiveDeviceMode() != klaviyo.DeviceModeOff && dests[i].PublicAPIKey != "" {
			return &dests[i], true
		}
	}
	return nil, true
}

// routeOf names the endpoint for logs without the write key.
func routeOf(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/v1/projects/") {
		return "/v1/projects/{writeKey}/settings"
	}
	return "/sourceConfig"
}

func redact(s, key string) string { return strings.ReplaceAll(s, key, "[redacted]") }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	// Settings change in the console; SDKs fetch once per page load anyway.
	w.Header().Set("Cache-Control", "no-cache")
	_ = json.NewEncoder(w).Encode(v)
}

// origin is Relay's address as the browser reached it, for the ingest
// host the documents point the SDKs back at. A proxy in front says so
// with X-Forwarded-Proto / X-Forwarded-Host.
func originOf(r *http.Request) origin {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	host := r.Host
	if h := r.Header.Get("X-Forwarded-Host"); h != "" && !strings.ContainsAny(h, "/ \t,") {
		host = h
	}
	return origin{scheme: scheme, host: host}
}

// origin is where the browser reached Relay.
type origin struct{ scheme, host string }

func (o origin) url(path string) string { return o.scheme + "://" + o.host + path }
