package store

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/relaycdp/relay/internal/testutil"
)

func open(t *testing.T, path string) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestKeyCache(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "relay.db")
	s := open(t, path)
	clock := testutil.NewClock(time.Unix(1e9, 0))
	s.keys = newKeyCache(time.Minute, clock.Now, s.loadKeys)
	if _, err := s.CreateSource(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	wk, err := s.CreateWriteKey(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if s.keys.loaded() {
		t.Fatal("cache loaded before any resolve")
	}
	if src, err := s.ResolveWriteKey(ctx, wk.Key); err != nil || src != "web" {
		t.Fatalf("resolve = %q, %v", src, err)
	}
	if !s.keys.loaded() {
		t.Fatal("cache not loaded by resolve")
	}

	// A change through another handle (another process) is not seen until
	// the TTL passes…
	other := open(t, path)
	if err := other.RevokeWriteKey(ctx, wk.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolveWriteKey(ctx, wk.Key); err != nil {
		t.Fatalf("resolve within TTL = %v; want the cached answer (this test checks the cache is used)", err)
	}
	clock.Add(time.Minute)
	if _, err := s.ResolveWriteKey(ctx, wk.Key); !errors.Is(err, ErrUnknownWriteKey) {
		t.Fatalf("resolve after TTL = %v, want ErrUnknownWriteKey", err)
	}

	// …while a change through this handle drops the cache at once.
	wk2, err := s.CreateWriteKey(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if s.keys.loaded() {
		t.Error("cache still loaded after CreateWriteKey")
	}
	if _, err := s.ResolveWriteKey(ctx, wk2.Key); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeWriteKey(ctx, wk2.Key); err != nil {
		t.Fatal(err)
	}
	if s.keys.loaded() {
		t.Error("cache still loaded after RevokeWriteKey")
	}
	if _, err := s.ResolveWriteKey(ctx, wk2.Key); !errors.Is(err, ErrUnknownWriteKey) {
		t.Errorf("resolve after revoke = %v, want ErrUnknownWriteKey", err)
	}
	if err := s.SeedSources(ctx, []Source{{Name: "app", WriteKeys: []WriteKey{{Key: "WK_app"}}}}); err != nil {
		t.Fatal(err)
	}
	if s.keys.loaded() {
		t.Error("cache still loaded after SeedSources")
	}
}

// TestQueryPlans checks the console's queries are index lookups, not table
// scans, so they stay fast on a full log.
func TestQueryPlans(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "relay.db"))
	ctx := context.Background()
	if _, err := s.w.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	text, targs := textMatch("user-1")
	tests := []struct {
		name, query string
		args        []any
	}{
		{"text search", `SELECT id FROM delivery_log WHERE ` + text + ` ORDER BY time DESC, id DESC LIMIT 50`, targs},
		{"recent", `SELECT id FROM delivery_log ORDER BY time DESC, id DESC LIMIT 50`, nil},
		{"by status", `SELECT id FROM delivery_log WHERE status = ? ORDER BY time DESC, id DESC LIMIT 50`, []any{"dead"}},
		{"lookup", `SELECT id FROM delivery_log WHERE message_id = ? AND dest = ?`, []any{"m", "k"}},
		{"prune by age", `SELECT id FROM delivery_log WHERE time < ? ORDER BY time LIMIT 10`, []any{1}},
		{"pending dead letters of a dest", `SELECT id FROM dead_letter WHERE replayed_at IS NULL AND dest = ? ORDER BY id LIMIT 10`, []any{"k"}},
	}
	for _, tc := range tests {
		rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+tc.query, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		for _, p := range plan {
			if strings.HasPrefix(p, "SCAN ") && !strings.Contains(p, "USING") {
				t.Errorf("%s: table scan: %s", tc.name, joined)
			}
		}
		t.Logf("%s: %s", tc.name, joined)
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"abc", "abd", true},
		{"a\x7f", "a\u0080", true},
		{"jö", "j÷", true},
		{"\U0010FFFF", "", false},
		{"a\U0010FFFF", "b", true},
		{"\uD7FF", "\uE000", true},
		{"bad\xff", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		got, ok := prefixEnd(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok && !(tc.in < got && tc.in+"\U0010FFFF" < got) {
			t.Errorf("prefixEnd(%q) = %q is not above every extension", tc.in, got)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijkl", 10, "abcdefg…"},
		{"ééééééé", 10, "ééé…"}, // 14 bytes; byte 7 is inside an é, so the cut moves back to 6
	}
	for _, tc := range tests {
		got := truncate(tc.in, tc.n)
		if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
