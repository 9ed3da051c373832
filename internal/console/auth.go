package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/relaycdp/relay/internal/authlimit"
)

// Authentication: the admin token, proved once on the login form (then an
// HttpOnly, SameSite=Strict session cookie) or on every request as
// "Authorization: Bearer <token>" (scripts). State-changing requests of a
// cookie session must also carry the session's CSRF token (a hidden form
// field, or the X-CSRF-Token header htmx sends) and must not come from
// another origin. Bearer requests need no CSRF token: a browser never adds
// that header by itself.

const (
	cookieName = "relay_admin"
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
	// maxFormBytes caps console form bodies (pasted events and settings).
	maxFormBytes = 1 << 20
	// Failed admin authentications (login form or Bearer): at most
	// loginFailures per authlimit.Window from one client address, then 429.
	loginFailures = authlimit.Failures
	maxSessions   = 1000
)

type session struct {
	csrf    string
	expires time.Time
}

// sessions are the logged-in browsers, in memory: a restart logs everyone
// out, which is acceptable for an admin console. Keys are SHA-256 of the
// cookie value, so the map holds nothing a memory dump could replay.
type sessions struct {
	mu   sync.Mutex
	ttl  time.Duration
	now  func() time.Time
	byID map[[32]byte]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, byID: map[[32]byte]*session{}}
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// create starts a session and returns its cookie value.
func (s *sessions) create() (string, error) {
	id, err := randomToken()
	if err != nil {
		return "", err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, v := range s.byID {
		if now.After(v.expires) {
			delete(s.byID, k)
		}
	}
	if len(s.byID) >= maxSessions {
		// Drop the session closest to expiry rather than refuse a login.
		var oldest [32]byte
		var at time.Time
		for k, v := range s.byID {
			if at.IsZero() || v.expires.Before(at) {
				oldest, at = k, v.expires
			}
		}
		delete(s.byID, oldest)
	}
	s.byID[sha256.Sum256([]byte(id))] = &session{csrf: csrf, expires: now.Add(s.ttl)}
	return id, nil
}

func (s *sessions) get(id string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sha256.Sum256([]byte(id))
	sess, ok := s.byID[k]
	if ok && s.now().After(sess.expires) {
		delete(s.byID, k)
		return nil, false
	}
	return sess, ok
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, sha256.Sum256([]byte(id)))
}

// checkToken proves got for the request's address, counting failures and
// logging them without the guess. ok false means the answer was written.
func (c *Console) checkToken(w http.ResponseWriter, r *http.Request, got, via string) (ok bool, throttled bool) {
	addr := c.limit.ClientAddr(r)
	if allowed, wait := c.limit.Allow(addr); !allowed {
		w.Header().Set("Retry-After", authlimit.RetryAfter(wait))
		return false, true
	}
	if !c.tokenOK(got) {
		c.limit.Failed(addr)
		c.log.Warn("admin authentication failed", slog.String("via", via), slog.String("remote", addr),
			slog.String("path", r.URL.Path))
		return false, false
	}
	c.limit.Succeeded(addr)
	return true, false
}

// tokenOK compares in constant time; hashing first also hides the length.
func (c *Console) tokenOK(got string) bool {
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256([]byte(c.cfg.Token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

type ctxKey struct{}

// auth is how a request proved the token: sess is nil for Bearer.
type auth struct {
	sess *session
}

func authOf(r *http.Request) auth {
	a, _ := r.Context().Value(ctxKey{}).(auth)
	return a
}

// csrfToken is the token forms and htmx must send back ("" for Bearer).
func csrfToken(r *http.Request) string {
	if s := authOf(r).sess; s != nil {
		return s.csrf
	}
	return ""
}

func (c *Console) requireAuth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		}
		if tok, ok := bearerToken(r); ok {
			valid, throttled := c.checkToken(w, r, tok, "bearer")
			if throttled {
				http.Error(w, "too many failed admin authentications from this address; retry after the Retry-After delay", http.StatusTooManyRequests)
				return
			}
			if !valid {
				w.Header().Set("WWW-Authenticate", `Bearer realm="relay admin"`)
				http.Error(w, "invalid admin token", http.StatusUnauthorized)
				return
			}
			next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, auth{})))
			return
		}
		var sess *session
		if ck, err := r.Cookie(cookieName); err == nil {
			sess, _ = c.sessions.get(ck.Value)
		}
		if sess == nil {
			c.loginRequired(w, r)
			return
		}
		if !safeMethod(r.Method) {
			if !sameOrigin(r) {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
			got := r.Header.Get(csrfHeader)
			if got == "" {
				got = r.PostFormValue(csrfField)
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
				http.Error(w, "missing or wrong CSRF token: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, auth{sess: sess})))
	})
}

// bearerToken is the token of an "Authorization: Bearer" header. Any
// other scheme is not ours: a proxy in front of the console may use Basic
// auth, and its credentials say nothing about the admin token, so such a
// request goes on to the session cookie.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// secure is whether the session cookie may only travel over HTTPS.
func (c *Console) secure(r *http.Request) bool {
	if c.cfg.Secure != nil {
		return c.cfg.Secure(r)
	}
	return r.TLS != nil
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// sameOrigin checks Origin (or, without it, Sec-Fetch-Site) against the
// request's own host. Requests without either (old browsers, curl with a
// cookie) rely on the CSRF token alone.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && u.Host == r.Host
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin" || s == "none"
	}
	return true
}

// loginRequired answers an unauthenticated request: pages redirect to the
// login form, htmx requests are told to go there, anything else gets 401.
func (c *Console) loginRequired(w http.ResponseWriter, r *http.Request) {
	login := c.cfg.Prefix + "/login"
	if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" {
		http.Redirect(w, r, login+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	if r.Header.Get("HX-Request") != "" {
		w.Header().Set("HX-Redirect", login)
	}
	http.Error(w, "log in with the admin token first", http.StatusUnauthorized)
}

type loginData struct {
	pageData
	Next  string
	Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", &loginData{pageData: pageData{Title: "Log in"}, Next: c.safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	data := &loginData{pageData: pageData{Title: "Log in"}, Next: c.safeNext(r.PostFormValue("next"))}
	if !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	ok, throttled := c.checkToken(w, r, r.PostFormValue("token"), "login")
	if throttled {
		data.Error = "Too many failed attempts from this address. Wait a minute and try again."
		c.render(w, r, http.StatusTooManyRequests, "login", data)
		return
	}
	if !ok {
		data.Error = "That is not the admin token."
		c.render(w, r, http.StatusUnauthorized, "login", data)
		return
	}
	id, err := c.sessions.create()
	if err != nil {
		c.renderError(w, r, http.StatusInternalServerError, "Could not start a session.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: id, Path: c.cfg.Prefix + "/",
		MaxAge: int(c.cfg.SessionTTL / time.Second), HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode,
	})
	c.log.Info("console login", slog.String("remote", r.RemoteAddr))
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(cookieName); err == nil {
		c.sessions.delete(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: c.cfg.Prefix + "/", MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, c.cfg.Prefix+"/login", http.StatusSeeOther)
}

// safeNext keeps post-login redirects inside the console.
func (c *Console) safeNext(next string) string {
	if strings.HasPrefix(next, c.cfg.Prefix+"/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, `\`) &&
		!strings.HasPrefix(next, c.cfg.Prefix+"/login") {
		return next
	}
	return c.cfg.Prefix + "/"
}

// keyIDs name write keys in pages without revealing them: an HMAC with a
// per-process secret, so even a short configured key cannot be guessed
// back from its id.
type keyIDs struct{ secret []byte }

func newKeyIDs() (*keyIDs, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("new console: %w", err)
	}
	return &keyIDs{secret: b}, nil
}

func (k *keyIDs) id(key string) string {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil)[:12])
}
