package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestForgetBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give at least one of --user ID, --email E or --phone P"},
		{[]string{"--user", " "}, "give at least one of"},
		{[]string{"--user", "u1", "extra"}, `unexpected argument "extra"`},
		{[]string{"--nope"}, "flag provided but not defined"},
		{[]string{"--user", "u1", "--suppress", "--unsuppress"}, "exclude each other"},
		{[]string{"--user", "u1", "--regulation", "sup_1"}, "--regulation goes with --unsuppress"},
		{[]string{"--unsuppress"}, "give at least one of"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"forget"}, tc.args...), nil, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// --server names an address where nothing listens: a clear error, exit 1
// (only without --server does relay forget fall back to the store).
func TestForgetServerDown(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"forget", "--user", "u1", "--server", "http://127.0.0.1:1", "--token", "x"}, nil, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "does not answer") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// With no server answering, relay forget and relay replay work on serve's
// data dir; one serve never used is refused by name and left as it was
// (a request stored in a fresh dir would wait for a server that never
// reads it).
func TestOfflineCommandsRefuseUnusedDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "relay.yaml")
	if err := os.WriteFile(cfg, []byte("addr: 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	for _, args := range [][]string{
		{"forget", "--config", cfg, "--data", data, "--user", "u1"},
		{"forget", "--config", cfg, "--data", data, "--email", "a@example.com", "--suppress-only"},
		{"replay", "--config", cfg, "--data", data, "--dest", "klaviyo"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, nil, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), `data dir "`+data+`" holds no Relay data (no state.db)`) {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Fatalf("%v: the data dir was created (%v)", args, err)
		}
	}
}
