package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/relaycdp/relay/internal/store"
)

func resolve(t *testing.T, s store.Store, key, wantSource string) {
	t.Helper()
	got, err := s.ResolveWriteKey(context.Background(), key)
	noSecret(t, "ResolveWriteKey", err, key)
	if wantSource == "" {
		wantErr(t, "ResolveWriteKey of "+store.MaskKey(key), err, store.ErrUnknownWriteKey)
		return
	}
	if err != nil || got != wantSource {
		t.Fatalf("ResolveWriteKey(%s) = %q, %v; want %q", store.MaskKey(key), got, err, wantSource)
	}
}

// keysOf returns source → key → revoked.
func keysOf(t *testing.T, s store.Store) map[string]map[string]bool {
	t.Helper()
	srcs, err := s.Sources(context.Background())
	if err != nil {
		t.Fatalf("Sources: %v", err)
	}
	out := map[string]map[string]bool{}
	for _, src := range srcs {
		out[src.Name] = map[string]bool{}
		for _, k := range src.WriteKeys {
			out[src.Name][k.Key] = !k.RevokedAt.IsZero()
		}
	}
	return out
}

func testSources(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.CreateSource(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSource(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateSource(ctx, "web")
	wantErr(t, "CreateSource twice", err, store.ErrExists)
	for _, bad := range []string{"", " web", "a\nb", strings.Repeat("x", 200)} {
		_, err := s.CreateSource(ctx, bad)
		wantErr(t, fmt.Sprintf("CreateSource(%q)", bad), err, store.ErrInvalid)
	}
	wk, err := s.CreateWriteKey(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^wk_[0-9a-f]{32}$`).MatchString(wk.Key) || wk.CreatedAt.IsZero() || wk.Seeded {
		t.Errorf("CreateWriteKey = %s created %v seeded %v; want wk_ and 32 hex digits, a time, not seeded",
			store.MaskKey(wk.Key), wk.CreatedAt, wk.Seeded)
	}
	wk2, err := s.CreateWriteKey(ctx, "web")
	if err != nil || wk2.Key == wk.Key {
		t.Fatalf("second CreateWriteKey: %v (same key: %v)", err, wk2.Key == wk.Key)
	}
	_, err = s.CreateWriteKey(ctx, "nope")
	wantErr(t, "CreateWriteKey for unknown source", err, store.ErrNotFound)
	resolve(t, s, wk.Key, "web")
	resolve(t, s, wk2.Key, "web")
	resolve(t, s, "wk_00000000000000000000000000000000", "")
	resolve(t, s, "", "")
	srcs, err := s.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 || srcs[0].Name != "app" || len(srcs[0].WriteKeys) != 0 || srcs[1].Name != "web" || len(srcs[1].WriteKeys) != 2 {
		t.Fatalf("Sources = %d sources; want app (no keys) and web (2 keys)", len(srcs))
	}
	if srcs[1].WriteKeys[0].Key != wk.Key || srcs[1].WriteKeys[1].Key != wk2.Key {
		t.Errorf("web's keys not in creation order")
	}
}

func testWriteKeyRevoke(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.CreateSource(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	keep, err := s.CreateWriteKey(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := s.CreateWriteKey(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	resolve(t, s, gone.Key, "web") // now cached
	if err := s.RevokeWriteKey(ctx, gone.Key); err != nil {
		t.Fatal(err)
	}
	resolve(t, s, gone.Key, "") // the cache must not answer with the revoked key
	resolve(t, s, keep.Key, "web")
	srcs, err := s.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var revokedAt = srcs[0].WriteKeys[1].RevokedAt
	if srcs[0].WriteKeys[1].Key != gone.Key || revokedAt.IsZero() || !srcs[0].WriteKeys[0].RevokedAt.IsZero() {
		t.Fatalf("Sources after revoke: want the revoked key listed with RevokedAt, the other active")
	}
	if err := s.RevokeWriteKey(ctx, gone.Key); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	if srcs, _ = s.Sources(ctx); !srcs[0].WriteKeys[1].RevokedAt.Equal(revokedAt) {
		t.Errorf("revoking twice moved RevokedAt from %v to %v", revokedAt, srcs[0].WriteKeys[1].RevokedAt)
	}
	unknown := "wk_ffffffffffffffffffffffffffffffff"
	err = s.RevokeWriteKey(ctx, unknown)
	wantErr(t, "revoking an unknown key", err, store.ErrNotFound)
	noSecret(t, "RevokeWriteKey", err, unknown)
}

func testWriteKeyConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.CreateSource(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		keys []string
		wg   sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if w%2 == 0 {
					k, err := s.CreateWriteKey(ctx, "web")
					if err != nil {
						t.Errorf("CreateWriteKey: %v", err)
						return
					}
					mu.Lock()
					keys = append(keys, k.Key)
					mu.Unlock()
					continue
				}
				if _, err := s.ResolveWriteKey(ctx, "wk_nope"); err == nil {
					t.Error("unknown key resolved")
				}
			}
		}()
	}
	wg.Wait()
	for _, k := range keys {
		resolve(t, s, k, "web")
	}
}

func testSeedSources(t *testing.T, s store.Store) {
	ctx := context.Background()
	cfg := []store.Source{
		{Name: "web", WriteKeys: []store.WriteKey{{Key: "WK_web_123"}, {Key: "WK_web_old"}}},
		{Name: "app", WriteKeys: []store.WriteKey{{Key: "WK_app_1"}}},
	}
	if err := s.SeedSources(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	resolve(t, s, "WK_web_123", "web")
	resolve(t, s, "WK_app_1", "app")
	console, err := s.CreateWriteKey(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeWriteKey(ctx, "WK_app_1"); err != nil { // revoked in the console
		t.Fatal(err)
	}
	// Restart with WK_web_old removed from the config.
	cfg[0].WriteKeys = cfg[0].WriteKeys[:1]
	if err := s.SeedSources(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := s.SeedSources(ctx, cfg); err != nil { // and again: idempotent
		t.Fatal(err)
	}
	resolve(t, s, "WK_web_123", "web")
	resolve(t, s, console.Key, "web") // console keys survive seeding
	resolve(t, s, "WK_web_old", "")   // gone from the config: revoked
	resolve(t, s, "WK_app_1", "")     // revoked stays revoked
	got := keysOf(t, s)
	want := map[string]map[string]bool{
		"web": {"WK_web_123": false, "WK_web_old": true, console.Key: false},
		"app": {"WK_app_1": true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("keys after seeding = %v, want %v", got, want)
	}
	srcs, err := s.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range srcs {
		for _, k := range src.WriteKeys {
			if k.Seeded != strings.HasPrefix(k.Key, "WK_") {
				t.Errorf("key %s: Seeded = %v", store.MaskKey(k.Key), k.Seeded)
			}
		}
	}
	// A source dropped from the config keeps its row (the log refers to it),
	// and its seeded keys are revoked.
	if err := s.SeedSources(ctx, cfg[:1]); err != nil {
		t.Fatal(err)
	}
	if _, ok := keysOf(t, s)["app"]; !ok {
		t.Error("source dropped from config was deleted")
	}
	// A key cannot move to another source.
	err = s.SeedSources(ctx, []store.Source{{Name: "app", WriteKeys: []store.WriteKey{{Key: "WK_web_123"}}}})
	wantErr(t, "seeding another source's key", err, store.ErrExists)
	noSecret(t, "SeedSources", err, "WK_web_123")
	resolve(t, s, "WK_web_123", "web") // the failed seed changed nothing
}

func testSeedSourcesInvalid(t *testing.T, s store.Store) {
	secret := "WK_very_secret_key_1234567890"
	tests := []struct {
		name string
		srcs []store.Source
	}{
		{"empty name", []store.Source{{Name: ""}}},
		{"duplicate source", []store.Source{{Name: "a"}, {Name: "a"}}},
		{"empty key", []store.Source{{Name: "a", WriteKeys: []store.WriteKey{{Key: ""}}}}},
		{"key with space", []store.Source{{Name: "a", WriteKeys: []store.WriteKey{{Key: secret + " "}}}}},
		{"key in two sources", []store.Source{{Name: "a", WriteKeys: []store.WriteKey{{Key: secret}}},
			{Name: "b", WriteKeys: []store.WriteKey{{Key: secret}}}}},
	}
	for _, tc := range tests {
		err := s.SeedSources(context.Background(), tc.srcs)
		wantErr(t, tc.name, err, store.ErrInvalid)
		noSecret(t, tc.name, err, secret)
	}
	if got := keysOf(t, s); len(got) != 0 {
		t.Errorf("invalid seeds wrote %v", got)
	}
}

func testSettings(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.DestSettings(ctx, "klaviyo")
	wantErr(t, "DestSettings before any save", err, store.ErrNotFound)
	v1 := json.RawMessage(`{"privateApiKey":"pk_secret","listId":"Xy12Ab"}`)
	got, err := s.PutDestSettings(ctx, "klaviyo", v1, 0)
	if err != nil || got.Version != 1 || got.UpdatedAt.IsZero() {
		t.Fatalf("first PutDestSettings = %+v, %v; want version 1", got, err)
	}
	_, err = s.PutDestSettings(ctx, "klaviyo", v1, 0)
	wantErr(t, "PutDestSettings(0) when one exists", err, store.ErrVersionConflict)
	v2 := json.RawMessage(`{ "privateApiKey": "pk_secret", "listId": "Other" }`)
	if got, err = s.PutDestSettings(ctx, "klaviyo", v2, 1); err != nil || got.Version != 2 {
		t.Fatalf("PutDestSettings(1) = %+v, %v; want version 2", got, err)
	}
	_, err = s.PutDestSettings(ctx, "klaviyo", v1, 1)
	wantErr(t, "PutDestSettings with a stale version", err, store.ErrVersionConflict)
	read, err := s.DestSettings(ctx, "klaviyo")
	if err != nil || string(read.Settings) != string(v2) || read.Version != 2 || !read.UpdatedAt.Equal(got.UpdatedAt) {
		t.Fatalf("DestSettings = %s v%d, %v; want v2 stored byte for byte", read.Settings, read.Version, err)
	}
	if got, err = s.PutDestSettings(ctx, "klaviyo", v1, store.AnyVersion); err != nil || got.Version != 3 {
		t.Errorf("PutDestSettings(AnyVersion) = %+v, %v; want version 3", got, err)
	}
	if _, err := s.PutDestSettings(ctx, "alpha", json.RawMessage(`{}`), store.AnyVersion); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListDestSettings(ctx)
	if err != nil || len(list) != 2 || list[0].Dest != "alpha" || list[1].Dest != "klaviyo" || list[1].Version != 3 {
		t.Errorf("ListDestSettings = %+v, %v; want alpha, klaviyo v3", list, err)
	}
}

func testSettingsInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	secret := `{"privateApiKey":"pk_secret_value"`
	_, err := s.PutDestSettings(ctx, "klaviyo", json.RawMessage(secret), store.AnyVersion)
	wantErr(t, "settings not JSON", err, store.ErrInvalid)
	noSecret(t, "settings not JSON", err, "pk_secret_value")
	_, err = s.PutDestSettings(ctx, "", json.RawMessage(`{}`), store.AnyVersion)
	wantErr(t, "empty dest", err, store.ErrInvalid)
	_, err = s.PutDestSettings(ctx, "k", nil, store.AnyVersion)
	wantErr(t, "no settings", err, store.ErrInvalid)
	_, err = s.PutDestSettings(ctx, "k", json.RawMessage(`{}`), -5)
	wantErr(t, "version -5", err, store.ErrInvalid)
}
