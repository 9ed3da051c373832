package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `
admin: { token: a-long-enough-admin-token }
sources: [{name: web, writeKeys: [WK_1]}]
destinations:
  - {name: klaviyo, type: klaviyo, sources: [web], settings: {privateApiKey: pk_x, listId: L1}}
`)
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"valid", []string{"config", "check", "--config", good}, 0, "good.yaml: ok (1 sources, 1 destinations, queue sqlite, store sqlite)", ""},
		{"unknown key", []string{"config", "check", "--config", write("typo.yaml", "adress: x\n")}, 1, "", "field adress not found"},
		{"bad field", []string{"config", "check", "--config", write("queue.yaml", "queue: kafka\n")}, 1, "", `queue: "kafka" is not one of sqlite, jetstream`},
		{"bad settings", []string{"config", "check", "--config", write("settings.yaml",
			"sources: [{name: web}]\ndestinations: [{name: k, type: klaviyo, settings: {listMode: sometimes}}]\n")}, 1, "", "destinations k.settings"},
		{"unset variable", []string{"config", "check", "--config", write("env.yaml", "admin: {token: ${RELAY_TEST_UNSET_XYZ}}\n")}, 1, "", "admin.token (line 1): environment variable not set: RELAY_TEST_UNSET_XYZ"},
		// relay serve refuses it at start, so the check must too.
		{"short admin token", []string{"config", "check", "--config", write("short.yaml", "admin: {token: change-me}\n")}, 1, "", "admin.token: must be at least 16 characters, got 9"},
		{"short deletion key", []string{"config", "check", "--config", write("shortdk.yaml", "admin: {deletionKey: dk_1}\n")}, 1, "", "admin.deletionKey: must be at least 16 characters, got 4"},
		{"webhook", []string{"config", "check", "--config", write("webhook.yaml",
			"sources: [{name: web}]\ndestinations: [{name: hook, type: webhook, settings: {url: 'https://example.com/in', mode: batch}}]\n")}, 0, "webhook.yaml: ok (1 sources, 1 destinations", ""},
		{"unknown type", []string{"config", "check", "--config", write("type.yaml",
			"destinations: [{name: m, type: mailchimp}]\n")}, 1, "", `destinations[0].type: "mailchimp" is not a known destination type (klaviyo, webhook)`},
		// Every problem at once, each on its own line, file and settings alike.
		{"several problems", []string{"config", "check", "--config", write("many.yaml", `
queue: kafka
log: {level: loud}
admin: {token: change-me}
destinations:
  - {name: hook, type: webhook, settings: {url: 'ftp://x', timeout: 0s}}
  - {name: k, type: klaviyo, settings: {listMode: sometimes}}
`)}, 1, "", "many.yaml: 6 problems\n" +
			"  - queue: \"kafka\" is not one of sqlite, jetstream\n" +
			"  - log.level: \"loud\" is not one of debug, info, warn, error\n" +
			"  - admin.token: must be at least 16 characters, got 9; generate one with `openssl rand -hex 16`\n" +
			"  - destinations hook.settings: webhook setting url: want an http or https URL\n" +
			"  - destinations hook.settings: webhook setting timeout: want 1s to 5m\n" +
			"  - destinations k.settings: klaviyo setting listMode: want \"subscribe\" or \"add\"\n"},
		{"missing file", []string{"config", "check", "--config", filepath.Join(dir, "nope.yaml")}, 1, "", "no such file"},
		{"no subcommand", []string{"config"}, 2, "", "usage: relay config check"},
		{"stray argument", []string{"config", "check", "--config", good, "extra"}, 2, "", `unexpected argument "extra"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCmd(tc.args...)
			if code != tc.wantCode || !strings.Contains(out, tc.wantOut) || !strings.Contains(errs, tc.wantErr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout ⊇ %q, stderr ⊇ %q",
					code, out, errs, tc.wantCode, tc.wantOut, tc.wantErr)
			}
		})
	}
	// Secrets from the file never appear in the messages.
	_, out, errs := runCmd("config", "check", "--config", write("dup.yaml",
		"sources: [{name: a, writeKeys: [WK_secret_1]}, {name: b, writeKeys: [WK_secret_1]}]\n"))
	if strings.Contains(out+errs, "WK_secret_1") {
		t.Errorf("config check prints a write key: %s%s", out, errs)
	}
}

func TestHealthCommand(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" {
			w.WriteHeader(status)
			w.Write([]byte(`{"ready":` + map[bool]string{true: "true", false: "false"}[status == 200] + "}\n"))
			return
		}
		if r.URL.Path == "/health" {
			w.Write([]byte(`{"ok":true}` + "\n"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if code, out, errs := runCmd("health", "--addr", addr); code != 0 || !strings.Contains(out, `"ok":true`) {
		t.Errorf("health: exit %d %q %q", code, out, errs)
	}
	if code, _, errs := runCmd("health", "--ready", "--addr", addr); code != 0 {
		t.Errorf("ready: exit %d %q", code, errs)
	}
	status = http.StatusServiceUnavailable
	if code, _, errs := runCmd("health", "--ready", "--addr", addr); code != 1 || !strings.Contains(errs, "503") {
		t.Errorf("not ready: exit %d %q, want 1 naming the 503", code, errs)
	}
	srv.Close()
	if code, _, _ := runCmd("health", "--addr", addr); code != 1 {
		t.Errorf("nothing listening: exit %d, want 1", code)
	}
	if code, _, _ := runCmd("health", "--addr", "nonsense"); code != 2 {
		t.Errorf("bad --addr: exit %d, want 2", code)
	}
	for in, want := range map[string]string{":8080": "http://127.0.0.1:8080", "0.0.0.0:9": "http://127.0.0.1:9",
		"[::]:9": "http://127.0.0.1:9", "10.1.2.3:80": "http://10.1.2.3:80"} {
		if got, _ := localURL(in); got != want {
			t.Errorf("localURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVersionUnstamped(t *testing.T) {
	code, out, _ := runCmd("version")
	if code != 0 || !strings.HasPrefix(out, "relay dev\n") || !strings.Contains(out, "go: "+runtime.Version()) {
		t.Errorf("version: exit %d %q", code, out)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestRelease runs `make release` for this machine's platform (the cached
// build is quick) and checks what it promises: a static binary that
// `relay version` shows stamped, and SHA256SUMS matching it. Every
// release platform's build graph is checked to resolve with CGO off.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	root := repoRoot(t)
	dir := t.TempDir()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command("make", "--no-print-directory", "-C", root, "release", "PLATFORMS="+platform, "RELEASE_DIR="+dir,
		"VERSION=v1.2.3-test", "COMMIT=0123abcd", "BUILD_DATE=2026-01-02T03:04:05Z")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "relay-v1.2.3-test-"+runtime.GOOS+"-"+runtime.GOARCH)
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	want := "relay v1.2.3-test\ncommit: 0123abcd\ngo: " + runtime.Version() + " " + platform + "\nbuilt: 2026-01-02T03:04:05Z\n"
	if string(out) != want {
		t.Errorf("version output\n%s\nwant\n%s", out, want)
	}
	if runtime.GOOS == "linux" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("release binary has an ELF interpreter: it is dynamically linked (CGO on?)")
			}
		}
		f.Close()
	}
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(bin)
	sum := sha256.Sum256(raw)
	if line := hex.EncodeToString(sum[:]) + "  " + filepath.Base(bin); !strings.Contains(string(sums), line) {
		t.Errorf("SHA256SUMS %q lacks %q", sums, line)
	}

	for _, p := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"} {
		goos, goarch, _ := strings.Cut(p, "/")
		list := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{if .Error}}ERROR {{.Error}}{{end}}", "./cmd/relay")
		list.Dir = root
		list.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		out, err := list.CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("ERROR")) {
			t.Errorf("%s with CGO_ENABLED=0: %v\n%s", p, err, out)
		}
	}
}

// unitDirectives reads a systemd unit's Key=Value lines.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not Key=Value", path, line)
		}
		d[k] = append(d[k], v)
	}
	return d
}

func TestSystemdUnit(t *testing.T) {
	d := unitDirectives(t, filepath.Join(repoRoot(t), "deploy", "relay.service"))
	want := map[string]string{
		"DynamicUser": "yes", "StateDirectory": "relay", "Environment": "RELAY_DATA=/var/lib/relay",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "CapabilityBoundingSet": "", "Restart": "on-failure", "WantedBy": "multi-user.target",
	}
	for k, v := range want {
		if got := d[k]; len(got) == 0 || got[len(got)-1] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := d["ExecStart"]; len(got) != 1 || !strings.HasPrefix(got[0], "/usr/local/bin/relay serve ") {
		t.Errorf("ExecStart = %q", got)
	}
	if got := d["ExecStartPre"]; len(got) != 1 || !strings.Contains(got[0], "relay config check --config") {
		t.Errorf("ExecStartPre = %q, want the config checked before start", got)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		out, _ := exec.Command("systemd-analyze", "verify", filepath.Join(repoRoot(t), "deploy", "relay.service")).CombinedOutput()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			// The binary is not installed on the test machine; anything
			// else systemd says about the unit is a fault.
			if line != "" && !strings.Contains(line, "/usr/local/bin/relay is not executable") {
				t.Errorf("systemd-analyze verify: %s", line)
			}
		}
	}
}

// TestDockerfile checks the Dockerfile's essentials by reading it: no
// Docker engine runs the tests, so the image itself is not built here.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var final []string // instructions of the last stage
	var buildLines []string
	for _, line := range strings.Split(strings.ReplaceAll(string(raw), "\\\n", " "), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			buildLines = append(buildLines, final...)
			final = nil
		}
		final = append(final, line)
	}
	has := func(lines []string, prefix string, parts ...string) bool {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				ok := true
				for _, p := range parts {
					ok = ok && strings.Contains(l, p)
				}
				if ok {
					return true
				}
			}
		}
		return false
	}
	checks := []struct {
		what  string
		lines []string
		inst  string
		parts []string
	}{
		{"static build", buildLines, "RUN ", []string{"CGO_ENABLED=0", "go build", "-X main.version=", "-X main.commit=", "-X main.buildDate="}},
		{"distroless base", final, "FROM ", []string{"gcr.io/distroless/static", "nonroot"}},
		{"non-root user", final, "USER ", []string{"65532"}},
		{"data volume", final, "VOLUME ", []string{"/data"}},
		{"data dir in env", final, "ENV ", []string{"RELAY_DATA=/data"}},
		{"healthcheck without curl", final, "HEALTHCHECK ", []string{`"/usr/local/bin/relay", "health"`}},
		{"entrypoint", final, "ENTRYPOINT ", []string{"/usr/local/bin/relay"}},
	}
	for _, c := range checks {
		if !has(c.lines, c.inst, c.parts...) {
			t.Errorf("%s: no %s line with %q", c.what, strings.TrimSpace(c.inst), c.parts)
		}
	}
	if has(final, "USER ", "root") && !has(final, "USER ", "nonroot") {
		t.Error("final stage runs as root")
	}
}

// relay -h / --help / help is a request for the usage, not an unknown
// command: usage on stdout, exit 0.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "help"} {
		code, out, errs := runCmd(arg)
		if code != 0 || !strings.Contains(out, "usage: relay <command>") || errs != "" {
			t.Errorf("relay %s: exit %d, stdout %q, stderr %q", arg, code, out, errs)
		}
	}
	if code, _, errs := runCmd("--nope"); code == 0 || !strings.Contains(errs, `unknown command "--nope"`) {
		t.Errorf("relay --nope: exit %d, stderr %q", code, errs)
	}
}
