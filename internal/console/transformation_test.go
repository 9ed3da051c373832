package console

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/relaycdp/relay/internal/klaviyo"
)

// memVersions is an in-memory TransformationVersions.
type memVersions struct {
	mu sync.Mutex
	vs map[string][]TransformationVersion
}

func (m *memVersions) TransformationVersions(_ context.Context, dest string) ([]TransformationVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]TransformationVersion(nil), m.vs[dest]...), nil
}

func (m *memVersions) AddTransformationVersion(_ context.Context, dest string, v TransformationVersion) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.vs[dest] = append(m.vs[dest], v)
	return nil
}

func TestTransformationEditor(t *testing.T) {
	tc := newTestConsole(t)
	versions := &memVersions{vs: map[string][]TransformationVersion{}}
	tc.Console.deps.Transformations = versions
	s := tc.login(t)
	source := func() string {
		st, err := klaviyo.ParseSettings(tc.st.settings["klaviyo"].Settings)
		if err != nil {
			t.Fatal(err)
		}
		return st.Transformation
	}
	v1 := "function transformEvent(e) { e.properties.v = 1; return e }"
	v2 := "function transformEvent(e) { e.properties.v = 2; return e }"

	// Try shows input → transformed → Klaviyo requests without saving.
	event := `{"type":"track","userId":"u-1","event":"Signed Up","messageId":"m-t","properties":{"plan":"pro"},"context":{"traits":{"email":"jane@example.com"}}}`
	_, body := s.post("/admin/destinations/klaviyo/transformation/try", s.form("source", v1, "event", event), nil)
	if !strings.Contains(body, `id="transformed-output"`) || !strings.Contains(body, `&#34;v&#34;: 1`) || !strings.Contains(body, "/api/events") {
		t.Errorf("try: %s", body)
	}
	if source() != "" {
		t.Fatal("try saved the transformation")
	}
	// Save twice, then roll back to the first.
	for i, src := range []string{v1, v2} {
		resp, _ := s.post("/admin/destinations/klaviyo/transformation", s.form("version", []string{"1", "2"}[i], "source", src), nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("save %d: %d", i+1, resp.StatusCode)
		}
	}
	if source() != v2 || len(versions.vs["klaviyo"]) != 2 {
		t.Fatalf("after two saves: %q, %d versions", source(), len(versions.vs["klaviyo"]))
	}
	st, _ := klaviyo.ParseSettings(tc.st.settings["klaviyo"].Settings)
	if st.ListID != "L1" || st.PrivateAPIKey != testPrivate {
		t.Errorf("saving the transformation changed other settings: %+v", st)
	}
	_, body = s.get("/admin/destinations/klaviyo/transformation")
	if !strings.Contains(body, `id="rollback-1"`) || !strings.Contains(body, "e.properties.v = 2") {
		t.Errorf("editor page: %s", body)
	}
	resp, _ := s.post("/admin/destinations/klaviyo/transformation", s.form("version", "3", "rollback", "1"), nil)
	if resp.StatusCode != http.StatusSeeOther || source() != v1 || len(versions.vs["klaviyo"]) != 3 {
		t.Errorf("rollback: %d, source %q, %d versions", resp.StatusCode, source(), len(versions.vs["klaviyo"]))
	}
	// A broken transformation is refused and nothing is saved.
	_, body = s.post("/admin/destinations/klaviyo/transformation", s.form("version", "4", "source", "function transformEvent(e) {\n return e +;\n}"), nil)
	if !strings.Contains(body, "Not saved") || !strings.Contains(body, "line 2") || source() != v1 {
		t.Errorf("broken save: %q", body)
	}
	// A stale version is a conflict.
	_, body = s.post("/admin/destinations/klaviyo/transformation", s.form("version", "1", "source", v2), nil)
	if !strings.Contains(body, "someone saved") {
		t.Errorf("stale save: %q", body)
	}
}
