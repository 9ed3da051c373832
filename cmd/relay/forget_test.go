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
// data dir. One serve never used, taken from the config, is refused by
// name and left as it was (a request stored there would wait for a server
// that never reads it); naming it with --data stores the request there
// for the first relay serve that runs with it, which replay refuses (it
// would have nothing to replay).
func TestOfflineCommandsRefuseUnusedDataDir(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "relay.yaml")
	if err := os.WriteFile(cfg, []byte("addr: 127.0.0.1:1\ndata: "+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"forget", "--config", cfg, "--user", "u1"},
		{"forget", "--config", cfg, "--email", "a@example.com", "--suppress-only"},
		{"replay", "--config", cfg, "--dest", "klaviyo"},
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
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"forget", "--config", cfg, "--data", data, "--user", "u1"}, nil, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "stored; the next relay serve processes it") {
		t.Errorf("forget --data: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
