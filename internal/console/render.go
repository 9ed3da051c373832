package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/store"
)

// pageData is what every page's template gets besides its own data.
type pageData struct {
	Title        string
	Nav          string // the active nav entry
	Prefix       string
	CSRF         string
	LoggedIn     bool
	Destinations []string
	Notice       string // a success message
	Error        string // a page-level error
}

func (p *pageData) base() *pageData { return p }

type page interface{ base() *pageData }

type pageTemplate struct{ t *template.Template }

// pageNames are the templates/<name>.html files; each defines "content"
// (and its htmx fragments) and is rendered inside layout.html.
func pageNames() []string {
	return []string{"login", "error", "overview", "sources", "settings", "tester", "log", "deadletters", "audit", "transformation", "deletions"}
}

func (c *Console) parsePages() (map[string]*pageTemplate, error) {
	funcs := template.FuncMap{
		"mask":     store.MaskKey,
		"redact":   c.redact,
		"when":     fmtTime,
		"ago":      func(t time.Time) string { return fmtAgo(c.cfg.Now().Sub(t)) },
		"dur":      fmtAgo,
		"num":      fmtNum,
		"pretty":   prettyJSON,
		"status":   statusClass,
		"unixnano": func(t time.Time) int64 { return t.UnixNano() },
		"sub":      func(a, b int) int { return a - b },
		"half":     func(a int) int { return a / 2 },
		"list":     func(xs ...string) []string { return xs },
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*pageTemplate{}
	for _, name := range pageNames() {
		t, err := template.Must(base.Clone()).ParseFS(assets, "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		out[name] = &pageTemplate{t: t}
	}
	return out, nil
}

func (c *Console) fill(r *http.Request, p *pageData) {
	p.Prefix = c.cfg.Prefix
	p.CSRF = csrfToken(r)
	p.LoggedIn = r.Context().Value(ctxKey{}) != nil
	p.Destinations = c.deps.Destinations
	p.Notice = c.redact(p.Notice)
	p.Error = c.redact(p.Error)
}

// render executes a whole page. It renders into a buffer first so a
// template error becomes a clean 500, not half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, data page) {
	c.fill(r, data.base())
	c.execute(w, status, name, "layout.html", data)
}

// renderPartial executes one named fragment of a page (an htmx swap).
func (c *Console) renderPartial(w http.ResponseWriter, r *http.Request, name, block string, data page) {
	c.fill(r, data.base())
	c.execute(w, http.StatusOK, name, block, data)
}

func (c *Console) execute(w http.ResponseWriter, status int, name, block string, data any) {
	var buf bytes.Buffer
	pt, ok := c.pages[name]
	if !ok {
		c.log.Error("console template missing", slog.String("page", name))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := pt.t.ExecuteTemplate(&buf, block, data); err != nil {
		c.log.Error("console template", slog.String("page", name), slog.Any("err", err))
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorData struct {
	pageData
	Message string
}

func (c *Console) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d := &errorData{pageData: pageData{Title: http.StatusText(status)}, Message: c.redact(msg)}
	if r.Header.Get("HX-Request") != "" {
		// htmx does not swap error statuses; answer 200 with the message
		// so the user sees it where the result would have gone.
		c.renderPartial(w, r, "error", "message", d)
		return
	}
	c.render(w, r, status, "error", d)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func fmtAgo(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// fmtNum prints counts with thousands separators and rates with one
// decimal when they are small.
func fmtNum(v any) string {
	var f float64
	switch n := v.(type) {
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case float64:
		f = n
	default:
		return fmt.Sprint(v)
	}
	if f != math.Trunc(f) && math.Abs(f) < 100 {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(f)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func prettyJSON(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

func statusClass(s store.Status) string {
	switch s {
	case store.StatusDelivered:
		return "ok"
	case store.StatusSkipped, store.StatusReplayed, store.StatusQueued:
		return "info"
	case store.StatusRetrying:
		return "warn"
	}
	return "bad"
}
