// Package console owns Relay's admin web console at /admin: login with the
// admin token, an overview of traffic and delivery, sources and write
// keys, destination settings, an event tester, the delivery log and dead
// letters. Pages are rendered on the server with html/template; the few
// interactive parts use a vendored htmx and a small script, all embedded
// in the binary, so there is no build step.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/forwarded"
	"github.com/relaycdp/relay/internal/readiness"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycdp/relay/internal/authlimit"
	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Config configures the console.
type Config struct {
	// Token is the admin token every request must prove (login form,
	// session cookie or Authorization: Bearer). Required.
	Token string
	// Prefix is the path the console's Handler is mounted at. Default
	// "/admin".
	Prefix string
	// SessionTTL is how long a login lasts. Default 12 hours.
	SessionTTL time.Duration
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
	// Limiter throttles failed admin authentications per client address;
	// share one with the other admin paths so guesses count on all.
	// Default: the console's own, on Now.
	Limiter *authlimit.Limiter
	// Secure reports whether the client's connection was HTTPS, which
	// makes the session cookie Secure: TLS here, or a trusted proxy's
	// X-Forwarded-Proto (forwarded.Trusted.Secure). Default: TLS only.
	Secure func(*http.Request) bool
}

// LogReader is the console's view of the delivery log (the store is one).
type LogReader interface {
	QueryLog(ctx context.Context, q store.LogQuery) ([]store.LogEntry, error)
	LookupLog(ctx context.Context, messageID, dest string) (store.LogEntry, error)
	CountLog(ctx context.Context, dest string) (map[store.Status]int64, error)
}

// DeadLetters lists and replays dead letters (the store is one).
type DeadLetters interface {
	ListDeadLetters(ctx context.Context, q store.DeadLetterQuery) ([]store.DeadLetter, error)
	CountDeadLetters(ctx context.Context, dest string) (int64, error)
	TakeForReplay(ctx context.Context, sel store.ReplaySelector, enqueue func(context.Context, []store.DeadLetter) error) (int, error)
}

// Sources manages sources and write keys (the store is one).
type Sources interface {
	Sources(ctx context.Context) ([]store.Source, error)
	CreateSource(ctx context.Context, name string) (store.Source, error)
	CreateWriteKey(ctx context.Context, source string) (store.WriteKey, error)
	RevokeWriteKey(ctx context.Context, key string) error
}

// Settings reads and changes destinations' live settings (*app.App is
// one): ApplySettings validates, saves with optimistic versioning and makes
// delivery use the new settings.
type Settings interface {
	ApplySettings(ctx context.Context, dest string, raw json.RawMessage, ifVersion int64) (store.DestSettings, error)
	Settings(dest string) (destination.Settings, bool)
	// DestType is the destination's registered type: its settings'
	// fields, parser and event-tester mapping.
	DestType(dest string) (*destination.Type, bool)
}

// StoredSettings reads a destination's saved settings with their version
// (the store is one).
type StoredSettings interface {
	DestSettings(ctx context.Context, dest string) (store.DestSettings, error)
}

// Queue is the durable queue: its stats for the overview, and Enqueue for
// the event tester's "send" and dead-letter replays.
type Queue interface {
	Stats(ctx context.Context) (queue.Stats, error)
	Enqueue(ctx context.Context, msgs []queue.Message) error
}

// Pinger makes one harmless call to a destination with settings s ("test
// connection") and says what happened (destination.Instance.Ping).
type Pinger interface {
	Ping(ctx context.Context, dest string, s destination.Settings) (ok bool, message string)
}

// Deps are what the console reads and changes. All but Deletions are
// required.
type Deps struct {
	Log            LogReader
	DeadLetters    DeadLetters
	Sources        Sources
	Settings       Settings
	StoredSettings StoredSettings
	Queue          Queue
	Pinger         Pinger
	// Metrics is the registry the overview samples (relay_* metrics).
	Metrics prometheus.Gatherer
	// Destinations are the configured destination names, in order.
	Destinations []string
	// Readiness, optional, is the node's /ready report, shown on the
	// overview.
	Readiness Readiness
	// Audit is the privacy audit log (audit.go); optional.
	Audit store.AuditReader
	// Transformations keeps the editor's versions (transformation.go);
	// optional.
	Transformations TransformationVersions
	// Deletions lists user deletion requests; optional.
	Deletions Deletions
}

// Readiness reports whether the node can accept events, as GET /ready.
type Readiness interface {
	Report(ctx context.Context) readiness.Report
}

func (d Deps) check() error {
	var missing []string
	for name, ok := range map[string]bool{
		"Log": d.Log != nil, "DeadLetters": d.DeadLetters != nil, "Sources": d.Sources != nil,
		"Settings": d.Settings != nil, "StoredSettings": d.StoredSettings != nil, "Queue": d.Queue != nil,
		"Pinger": d.Pinger != nil, "Metrics": d.Metrics != nil,
	} {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("new console: missing dependencies %s", strings.Join(missing, ", "))
	}
	return nil
}

// Console is the admin web console.
type Console struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	pages    map[string]*pageTemplate
	static   fs.FS
	sessions *sessions
	limit    *authlimit.Limiter
	keyIDs   *keyIDs
	samples  *sampler
}

// New builds the console. It starts no goroutines: the overview's samples
// are taken while the console is used (its overview refreshes itself).
func New(cfg Config, deps Deps, log *slog.Logger) (*Console, error) {
	if cfg.Token == "" {
		return nil, errors.New("new console: empty admin token")
	}
	if log == nil {
		return nil, errors.New("new console: nil logger")
	}
	if err := deps.check(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/admin"
	}
	cfg.Prefix = "/" + strings.Trim(cfg.Prefix, "/")
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("new console: %w", err)
	}
	c := &Console{cfg: cfg, deps: deps, log: log, static: static, samples: newSampler()}
	if c.keyIDs, err = newKeyIDs(); err != nil {
		return nil, err
	}
	c.sessions = newSessions(cfg.SessionTTL, cfg.Now)
	if c.limit = cfg.Limiter; c.limit == nil {
		c.limit = authlimit.New(cfg.Now, forwarded.Trusted{})
	}
	// The counters' baseline, so the first minute shown has a rate.
	if mv, err := readMetrics(deps.Metrics); err == nil {
		c.samples.add(sample{At: cfg.Now(), counters: mv.counters})
	}
	if c.pages, err = c.parsePages(); err != nil {
		return nil, fmt.Errorf("new console: %w", err)
	}
	return c, nil
}

// Handler serves the console under Config.Prefix (mount it at Prefix+"/").
func (c *Console) Handler() http.Handler {
	p := c.cfg.Prefix
	mux := http.NewServeMux()
	mux.Handle("GET "+p+"/static/", http.StripPrefix(p+"/static/", staticHandler(c.static)))
	mux.HandleFunc("GET "+p+"/login", c.loginPage)
	mux.HandleFunc("POST "+p+"/login", c.login)

	auth := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, c.requireAuth(h)) }
	auth("POST "+p+"/logout", c.logout)
	auth("GET "+p+"/{$}", c.overviewPage)
	auth("GET "+p+"/overview/stats", c.overviewStats)
	auth("GET "+p+"/sources", c.sourcesPage)
	auth("POST "+p+"/sources", c.createSource)
	auth("POST "+p+"/sources/keys", c.createKey)
	auth("POST "+p+"/keys/revoke", c.revokeKey)
	auth("GET "+p+"/destinations/{dest}", c.settingsPage)
	auth("POST "+p+"/destinations/{dest}", c.saveSettings)
	auth("POST "+p+"/destinations/{dest}/test", c.testConnection)
	auth("GET "+p+"/tester", c.testerPage)
	auth("POST "+p+"/tester/transform", c.testerTransform)
	auth("POST "+p+"/tester/send", c.testerSend)
	auth("GET "+p+"/tester/status", c.testerStatus)
	auth("GET "+p+"/log", c.logPage)
	auth("GET "+p+"/deadletters", c.deadLettersPage)
	auth("GET "+p+"/deletions", c.deletionsPage)
	auth("POST "+p+"/deadletters/replay", c.replayDeadLetters)
	auth("GET "+p+"/destinations/{dest}/transformation", c.transformationPage)
	auth("POST "+p+"/destinations/{dest}/transformation", c.transformationSave)
	auth("POST "+p+"/destinations/{dest}/transformation/try", c.transformationTry)
	auth("GET "+p+"/audit", c.auditPage)
	auth("GET "+p+"/audit/export", c.auditExport)
	auth("POST "+p+"/api/replay", c.apiReplay)
	// Anything else under the prefix is a 404, but only for a logged-in
	// user: without the token not even the page structure is revealed.
	auth(p+"/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, http.StatusNotFound, "No such page.")
	})
	mux.Handle(p, http.RedirectHandler(p+"/", http.StatusMovedPermanently))
	return securityHeaders(mux)
}

// securityHeaders keeps pages out of caches and frames and allows scripts
// and styles only from the console's own embedded files.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: with no-referrer Chrome sends
		// "Origin: null" on form posts, which the origin check refuses.
		h.Set("Referrer-Policy", "same-origin")
		if !strings.Contains(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func staticHandler(static fs.FS) http.Handler {
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// redact replaces every secret the console knows (the admin token and the
// destinations' secret settings) in s by its masked form. Errors and
// destinations' responses are not supposed to contain them; this makes
// sure a page never does.
func (c *Console) redact(s string) string {
	if len(c.cfg.Token) >= 4 {
		s = strings.ReplaceAll(s, c.cfg.Token, store.MaskKey(c.cfg.Token))
	}
	for _, d := range c.deps.Destinations {
		typ, ok := c.deps.Settings.DestType(d)
		if st, live := c.deps.Settings.Settings(d); ok && live {
			s = redactSecrets(s, typ, settingsDoc(st))
		}
	}
	return s
}

// hasDest reports whether dest is a configured destination.
func (c *Console) hasDest(dest string) bool {
	for _, d := range c.deps.Destinations {
		if d == dest {
			return true
		}
	}
	return false
}
