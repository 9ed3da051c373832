package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const sample = `
addr: 127.0.0.1:9999
data: /tmp/relay
admin: { token: ${ADMIN} }
sources:
  - name: web
    writeKeys: [WK_web_123]
destinations:
  - name: klaviyo
    type: klaviyo
    sources: [web]
    endpoint: http://127.0.0.1:9090
    settings: { privateApiKey: pk_file, listId: Xy12Ab }
`

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(path, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, envOf(map[string]string{
		"ADMIN":                            "s3cret",
		"RELAY_DEST_KLAVIYO_PRIVATEAPIKEY": "pk_env",
		"RELAY_ADDR":                       "127.0.0.1:7777",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:7777" || cfg.Admin.Token != "s3cret" || cfg.Data != "/tmp/relay" {
		t.Errorf("cfg = %+v", cfg)
	}
	if got := cfg.Destinations[0].Settings["privateApiKey"]; got != "pk_env" {
		t.Errorf("privateApiKey = %v, want env override", got)
	}
	if got := cfg.Destinations[0].Settings["listId"]; got != "Xy12Ab" {
		t.Errorf("listId = %v", got)
	}
	if cfg.Queue != "sqlite" || cfg.Limits.MaxEventBytes != 32<<10 {
		t.Errorf("defaults lost: %+v", cfg)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"unknown key", "adr: x", nil, "field adr not found"},
		{"missing env", "admin: {token: ${NOPE}}", nil, "NOPE"},
		{"bad addr", "addr: nothing", nil, "addr:"},
		{"bad queue", "queue: kafka", nil, `queue: "kafka"`},
		{"postgres without dsn", "store: postgres", nil, "postgres.dsn"},
		{"dup source", "sources: [{name: a}, {name: a}]", nil, "sources[1].name"},
		{"dup key", "sources: [{name: a, writeKeys: [k]}, {name: b, writeKeys: [k]}]", nil, "sources[1].writeKeys[0]"},
		{"unknown dest source", "sources: [{name: a}]\ndestinations: [{name: k, type: klaviyo, sources: [b]}]", nil, "destinations[0].sources[0]"},
		{"no dest type", "destinations: [{name: k}]", nil, "destinations[0].type"},
		{"bad endpoint", "destinations: [{name: k, type: klaviyo, endpoint: 'ftp://x'}]", nil, "destinations[0].endpoint"},
		{"bad level", "log: {level: loud}", nil, "log.level"},
		{"bad depth env", "", map[string]string{"RELAY_LIMITS_MAX_QUEUE_DEPTH": "lots"}, "RELAY_LIMITS_MAX_QUEUE_DEPTH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "relay.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, envOf(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.yaml")
	y := "sources: [{name: a, writeKeys: [WK_secret]}, {name: b, writeKeys: [WK_secret]}]"
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, envOf(nil))
	if err == nil || strings.Contains(err.Error(), "WK_secret") {
		t.Fatalf("err = %v: must fail without naming the key", err)
	}
}

func TestDefaultsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Load("", envOf(nil)); err != nil {
		t.Fatal(err)
	}
}

func TestAdminAddrAndProxies(t *testing.T) {
	cfg, err := Load("", envOf(map[string]string{"RELAY_ADMIN_ADDR": "127.0.0.1:9091", "RELAY_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminAddr != "127.0.0.1:9091" || len(cfg.TrustedProxies) != 2 || cfg.TrustedProxies[1] != "::1" {
		t.Errorf("cfg = %+v", cfg)
	}
	for y, want := range map[string]string{
		"adminAddr: nothing":                        "adminAddr:",
		"addr: 127.0.0.1:1\nadminAddr: 127.0.0.1:1": "adminAddr:",
		"trustedProxies: [10.0.0.0/8, proxy.local]": "trustedProxies[1]",
	} {
		path := filepath.Join(t.TempDir(), "relay.yaml")
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path, envOf(nil)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want it to mention %q", y, err, want)
		}
	}
}

// Every problem is reported at once, each naming its field.
func TestValidateListsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.yaml")
	y := "queue: kafka\nlog: {level: loud, format: xml}\nsources: [{name: a}, {name: a}]\ndestinations: [{name: k}]\n"
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, envOf(nil))
	var p Problems
	if !errors.As(err, &p) || len(p) != 5 {
		t.Fatalf("err = %v, want 5 problems", err)
	}
	for _, want := range []string{"queue:", "log.level:", "log.format:", "sources[1].name:", "destinations[0].type:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %q: one line for logs", err)
	}
}

func TestRetention(t *testing.T) {
	cfg, err := Load("", envOf(nil))
	if err != nil || cfg.Retention.LogMaxRows != 1_000_000 || cfg.Retention.LogMaxAge != 30*24*time.Hour || cfg.Retention.AuditMaxAge != 0 {
		t.Fatalf("defaults: %+v, %v (the audit log is kept unless asked)", cfg.Retention, err)
	}
	path := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(path, []byte("retention: {auditMaxAge: 2190h, logMaxRows: 0, logMaxAge: -1h}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path, envOf(nil))
	if err == nil || !strings.Contains(err.Error(), "retention.logMaxAge: must not be negative") {
		t.Fatalf("negative: %v", err)
	}
	if err := os.WriteFile(path, []byte("retention: {auditMaxAge: 2190h, logMaxRows: 0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(path, envOf(nil))
	if err != nil || cfg.Retention.AuditMaxAge != 2190*time.Hour || cfg.Retention.LogMaxRows != 0 || cfg.Retention.LogMaxAge != 30*24*time.Hour {
		t.Fatalf("file: %+v, %v", cfg.Retention, err)
	}
}

func TestSourceShareLimit(t *testing.T) {
	for y, want := range map[string]string{
		"limits: {maxBodyBytesInFlightPerSource: 1000}":                                     "limits.maxBodyBytesInFlightPerSource: must be at least limits.maxRequestBytes",
		"limits: {maxBodyBytesInFlight: 50000000, maxBodyBytesInFlightPerSource: 60000000}": "must not be over limits.maxBodyBytesInFlight",
		"limits: {maxBodyBytesInFlightPerSource: 20000000}":                                 "",
	} {
		path := filepath.Join(t.TempDir(), "relay.yaml")
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path, envOf(nil))
		switch {
		case want == "" && (err != nil || cfg.Limits.MaxBodyBytesInFlightPerSource != 20000000):
			t.Errorf("%q: %v, %+v", y, err, cfg.Limits)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: err %v, want %q", y, err, want)
		}
	}
}
