package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestExpandInsideValues(t *testing.T) {
	env := envOf(map[string]string{
		"TOKEN":   "abc #x",
		"WORKERS": "7",
		"WAIT":    "250ms",
		"NULLISH": "null",
		"EMPTY":   "",
		"HOST":    "127.0.0.1",
		"PORT":    "9000",
		"LIST":    "Xy 12: {Ab}",
	})
	cases := []struct {
		name  string
		yaml  string
		check func(Config) bool
	}{
		{"hash stays in the value", "admin:\n  token: ${TOKEN}\n", func(c Config) bool { return c.Admin.Token == "abc #x" }},
		{"flow mapping", "admin: { token: ${TOKEN} }", func(c Config) bool { return c.Admin.Token == "abc #x" }},
		{"quoted", `admin: {token: "${TOKEN}"}`, func(c Config) bool { return c.Admin.Token == "abc #x" }},
		{"block literal", "admin:\n  token: |-\n    ${TOKEN}\n", func(c Config) bool { return c.Admin.Token == "abc #x" }},
		{"number", "delivery: {workers: ${WORKERS}}", func(c Config) bool { return c.Delivery.Workers == 7 }},
		{"duration", "delivery: {batchWait: ${WAIT}}", func(c Config) bool { return c.Delivery.BatchWait == 250*time.Millisecond }},
		{"null text stays a string", "admin: {token: ${NULLISH}}", func(c Config) bool { return c.Admin.Token == "null" }},
		{"empty", "admin: {token: ${EMPTY}}", func(c Config) bool { return c.Admin.Token == "" }},
		{"several in one value", "addr: ${HOST}:${PORT}", func(c Config) bool { return c.Addr == "127.0.0.1:9000" }},
		{"settings map", "sources: [{name: w}]\ndestinations: [{name: k, type: klaviyo, settings: {listId: ${LIST}}}]",
			func(c Config) bool { return c.Destinations[0].Settings["listId"] == "Xy 12: {Ab}" }},
		{"comment not expanded", "# uses ${UNSET_IN_COMMENT}\naddr: 127.0.0.1:1 # ${ALSO_UNSET}\n", func(c Config) bool { return c.Addr == "127.0.0.1:1" }},
		{"no reference", "admin: {token: plain}", func(c Config) bool { return c.Admin.Token == "plain" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			if err := Parse([]byte(tc.yaml), env, &cfg); err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg) {
				t.Errorf("cfg = %+v", cfg)
			}
		})
	}
}

func TestExpandErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unset names var and field", "admin:\n  token: ${ADMIN_TOKEN}\n", []string{"admin.token", "ADMIN_TOKEN", "line 2"}},
		{"unset in a list", "sources:\n  - name: web\n    writeKeys: [a, ${WK}]\n", []string{"sources[0].writeKeys[1]", "WK"}},
		{"unset in settings", "destinations: [{name: k, settings: {privateApiKey: ${PK}}}]", []string{"destinations[0].settings.privateApiKey", "PK"}},
		{"reference in a key is no field", "${K}: 1", []string{"field ${K} not found"}},
		{"unknown nested key", "admin: {tokn: x}", []string{"line 1", "field tokn not found"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			err := Parse([]byte(tc.yaml), envOf(nil), &cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q does not mention %q", err, w)
				}
			}
		})
	}
	cfg := Default()
	if err := Parse([]byte("admin: {token: ${X}}"), envOf(nil), &cfg); !errors.Is(err, ErrMissingEnv) {
		t.Errorf("err %v is not ErrMissingEnv", err)
	}
}

// FuzzParse: the config parser never panics on any file, and a ${V}
// reference always expands to exactly the variable's value, whatever it
// holds.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample), "abc #x")
	f.Add([]byte("admin: { token: ${V} }\nsources: [{name: a, writeKeys: [${V}]}]"), "}{,: '\"")
	f.Add([]byte("delivery: {workers: ${V}, batchWait: ${V}}\n<<: {addr: x}\n&a b: *a"), "3")
	f.Add([]byte("relayenv_V_relayenv: ${V}"), "null")
	f.Fuzz(func(t *testing.T, raw []byte, val string) {
		env := envOf(map[string]string{"V": val, "ADMIN": val})
		cfg := Default()
		_ = Parse(raw, env, &cfg) // must not panic
		for _, doc := range []string{"admin:\n  token: ${V}\n", "admin: {token: ${V}}", "admin: {token: \"x${V}y\"}"} {
			cfg := Default()
			if err := Parse([]byte(doc), env, &cfg); err != nil {
				t.Fatalf("%q with V=%q: %v", doc, val, err)
			}
			want := val
			if strings.Contains(doc, "x${V}y") {
				want = "x" + val + "y"
			}
			if cfg.Admin.Token != want {
				t.Fatalf("%q with V=%q: token %q", doc, val, cfg.Admin.Token)
			}
		}
	})
}
