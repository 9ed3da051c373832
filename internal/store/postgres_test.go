package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relaycdp/relay/internal/store"
	"github.com/relaycdp/relay/internal/store/storetest"
	"github.com/relaycdp/relay/internal/testutil"
)

// defaultTestDSN is the PostgreSQL every machine here runs (trust auth).
const defaultTestDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// pgSchema creates a schema of its own for one test, drops it when the
// test ends, and returns a DSN whose search_path selects it, so tests (and
// concurrent runs) never see each other's tables. Without a reachable
// server the test is skipped, naming the DSN's host.
func pgSchema(t testing.TB) string {
	t.Helper()
	base := os.Getenv("RELAY_TEST_POSTGRES_DSN")
	if base == "" {
		base = defaultTestDSN
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		skipUnlessRequired(t, "PostgreSQL not reachable (set RELAY_TEST_POSTGRES_DSN; .ci/run starts it): %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "relay_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(t, base, schema)
}

func withSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openPostgres(t testing.TB, dsn string) *store.Postgres {
	t.Helper()
	s, err := store.OpenPostgres(context.Background(), dsn, nil)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	return s
}

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openPostgres(t, pgSchema(t))
	})
}

// Several nodes starting at once migrate and seed one after another: all
// open, the schema is applied once, and the seeded keys resolve on each.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := pgSchema(t)
	ctx := context.Background()
	const nodes = 4
	stores := make([]*store.Postgres, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			s, err := store.OpenPostgres(ctx, dsn, nil)
			if err == nil {
				err = s.SeedSources(ctx, []store.Source{{Name: "web", WriteKeys: []store.WriteKey{{Key: "WK_web_123"}}}})
			}
			stores[i], errs[i] = s, err
		})
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		defer s.Close()
		if src, err := s.ResolveWriteKey(ctx, "WK_web_123"); err != nil || src != "web" {
			t.Errorf("node %d resolves the seeded key to %q, %v", i, src, err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = 1`).Scan(&n); err != nil || n != 1 {
		t.Errorf("migration 1 recorded %d times, %v", n, err)
	}
}

// A key revoked through one node stops resolving on another within the
// cache TTL, without restarts.
func TestPostgresRevocationReachesOtherNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the key cache TTL")
	}
	dsn := pgSchema(t)
	ctx := context.Background()
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	defer a.Close()
	defer b.Close()
	if _, err := a.CreateSource(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	wk, err := a.CreateWriteKey(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	// b has not loaded its cache yet, so it sees the new key at once.
	if src, err := b.ResolveWriteKey(ctx, wk.Key); err != nil || src != "web" {
		t.Fatalf("node b resolves a new key to %q, %v", src, err)
	}
	if err := a.RevokeWriteKey(ctx, wk.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ResolveWriteKey(ctx, wk.Key); !errors.Is(err, store.ErrUnknownWriteKey) {
		t.Fatalf("revoking node still resolves the key: %v", err)
	}
	testutil.Eventually(t, 15*time.Second, "node b to see the revocation", func() bool {
		_, err := b.ResolveWriteKey(ctx, wk.Key)
		return errors.Is(err, store.ErrUnknownWriteKey)
	})
}

func TestOpenPostgresErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := store.OpenPostgres(ctx, "", nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("empty DSN: %v, want ErrInvalid", err)
	}
	secret := "s3cr3t-password"
	_, err := store.OpenPostgres(ctx, "postgres://u:"+secret+"@127.0.0.1:1/x?sslmode=disable&connect_timeout=1", nil)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("unreachable server: %v; want an error without the password", err)
	}
	// A database migrated by a newer binary is refused, not damaged.
	dsn := pgSchema(t)
	s := openPostgres(t, dsn)
	s.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenPostgres(ctx, dsn, nil); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// skipUnlessRequired skips a test whose service (or browser) is missing,
// except under `make test` and CI (RELAY_REQUIRE_SERVICES=1), where every
// machine has them and a skip would hide a broken setup.
func skipUnlessRequired(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("RELAY_REQUIRE_SERVICES") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
