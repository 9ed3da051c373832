package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relaycdp/relay/internal/store"
	"github.com/relaycdp/relay/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openSQLite(t testing.TB, path string) *store.SQLite {
	t.Helper()
	s, err := store.OpenSQLite(context.Background(), path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	return s
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "relay.db"))
	})
}

func TestOpenSQLiteReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "relay.db")
	s := openSQLite(t, path)
	if err := s.Record(ctx, []store.LogEntry{{MessageID: "m", Dest: "k", Status: store.StatusDelivered}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSource(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	wk, err := s.CreateWriteKey(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("database file mode %o, want 600 (it holds secrets)", perm)
	}
	// Reopening applies no migration twice and keeps the data.
	s = openSQLite(t, path)
	defer s.Close()
	if e, err := s.LookupLog(ctx, "m", "k"); err != nil || e.Status != store.StatusDelivered {
		t.Errorf("log after reopen = %+v, %v", e, err)
	}
	if src, err := s.ResolveWriteKey(ctx, wk.Key); err != nil || src != "web" {
		t.Errorf("key after reopen = %q, %v", src, err)
	}
}

func TestOpenSQLiteErrors(t *testing.T) {
	ctx := context.Background()
	for _, p := range []string{"", ":memory:"} {
		if _, err := store.OpenSQLite(ctx, p, nil); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("OpenSQLite(%q) = %v, want ErrInvalid", p, err)
		}
	}
	// A database migrated by a newer binary is refused, not damaged.
	path := filepath.Join(t.TempDir(), "relay.db")
	s := openSQLite(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	bumpSchema(t, path)
	if _, err := store.OpenSQLite(ctx, path, nil); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("OpenSQLite of a newer schema = %v, want ErrSchemaTooNew", err)
	}
}

func TestMaskKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"wk_0123456789abcdef0123456789abcdef", "wk_01…ef"},
		{"pk_abcdefghijklmnopqrstuvwxyz", "pk_ab…yz"},
		{"WK_web_123", "WK_…"},
		{"short", "…"},
		{"noprefixbutlongenough1234", "no…34"},
		{"wk_ééééééééééééééééé", "wk_éé…éé"},
	}
	for _, tc := range tests {
		if got := store.MaskKey(tc.in); got != tc.want {
			t.Errorf("MaskKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRunPruner(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &countingPruner{calls: make(chan store.Retention, 10)}
	done := make(chan error, 1)
	go func() { done <- store.RunPruner(ctx, p, time.Millisecond, store.Retention{LogMaxRows: 7}, nil) }()
	for range 3 { // it prunes at once and then on each tick
		if r := <-p.calls; r.LogMaxRows != 7 {
			t.Errorf("Prune got %+v", r)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunPruner after cancel = %v, want nil", err)
	}
	if err := store.RunPruner(ctx, p, 0, store.Retention{}, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("RunPruner(interval 0) = %v, want ErrInvalid", err)
	}
}

type countingPruner struct{ calls chan store.Retention }

func (p *countingPruner) Prune(ctx context.Context, r store.Retention) (store.Pruned, error) {
	select {
	case p.calls <- r:
	default:
	}
	return store.Pruned{}, fmt.Errorf("always failing: %w", errors.ErrUnsupported)
}

// BenchmarkRecord measures the delivery log's write path with delivery's
// batch size: new rows, and upserts that replace existing rows (pushing
// history).
func BenchmarkRecord(b *testing.B) {
	const batch = 500
	for _, mode := range []string{"insert", "upsert"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			s := openSQLite(b, filepath.Join(b.TempDir(), "relay.db"))
			defer s.Close()
			entries := make([]store.LogEntry, batch)
			n := 0
			fill := func(status store.Status, base int) {
				for i := range entries {
					entries[i] = store.LogEntry{MessageID: fmt.Sprintf("msg-%09d", base+i), Source: "web", Dest: "klaviyo",
						Type: "track", Event: "Order Completed", UserID: fmt.Sprintf("user-%d", (base+i)%5000),
						Email: fmt.Sprintf("user-%d@example.com", (base+i)%5000), Status: status, Attempts: 1,
						Detail: `202 {"data":{"type":"event-bulk-create-job","id":"01HX"}}`}
				}
			}
			if mode == "upsert" {
				fill(store.StatusQueued, 0)
				if err := s.Record(ctx, entries); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			start, cpu0 := time.Now(), cpuTime(b)
			for b.Loop() {
				if mode == "insert" {
					fill(store.StatusQueued, n)
				} else { // each round applies: more attempts than the last
					fill(store.StatusRetrying, 0)
					for i := range entries {
						entries[i].Attempts = 1 + n/batch
					}
				}
				if err := s.Record(ctx, entries); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "entries/s")
			// CPU per entry (this process, all threads) stays meaningful on
			// a busy shared machine, where wall-clock rates do not.
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(n), "cpu-µs/entry")
		})
	}
}

// bumpSchema records a migration this binary does not know.
func bumpSchema(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
}
