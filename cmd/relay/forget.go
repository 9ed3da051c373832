package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/relaycdp/relay/internal/app"
	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/store"
)

// runForget asks a running relay serve to forget a user (POST
// /admin/api/deletions with the admin token), or, when none answers,
// stores the request for the next one to process.
func runForget(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("forget", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "the userId to forget")
	email := fs.String("email", "", "the email address to forget")
	phone := fs.String("phone", "", "the phone number to forget (E.164, or national in the destination's defaultPhoneCountry)")
	dests := fs.String("dest", "", "comma-separated destinations to ask Klaviyo through (default: every one)")
	localOnly := fs.Bool("local-only", false, "forget the user in Relay only; ask no destination")
	cfgPath := fs.String("config", "", "relay.yaml (default: ./relay.yaml if present, else embedded defaults)")
	data := fs.String("data", "", "data directory, when no relay serve runs (overrides config)")
	server := fs.String("server", "", "the running relay's base URL (default: http:// + config adminAddr, else addr)")
	token := fs.String("token", "", "admin token or deletion key (default: RELAY_ADMIN_TOKEN, then config admin.token, then admin.deletionKey)")
	wait := fs.Duration("wait", 0, "wait this long for the deletion to finish, printing its progress (e.g. 2m)")
	suppress := fs.Bool("suppress", false, "also suppress the user: drop their future events (SUPPRESS_WITH_DELETE)")
	suppressOnly := fs.Bool("suppress-only", false, "suppress the user's future events without deleting anything (SUPPRESS_ONLY)")
	unsuppress := fs.Bool("unsuppress", false, "lift the suppressions of the identifiers given, or of --regulation")
	regulation := fs.String("regulation", "", "with --unsuppress: the regulation id to lift (sup_3, or the del_7 of a --suppress)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relay forget: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	subj := store.DeletionSubject{UserID: strings.TrimSpace(*user), Email: strings.TrimSpace(*email), Phone: strings.TrimSpace(*phone)}
	if n := countTrue(*suppress, *suppressOnly, *unsuppress); n > 1 {
		fmt.Fprintln(stderr, "relay forget: --suppress, --suppress-only and --unsuppress exclude each other")
		return 2
	}
	if *regulation != "" && !*unsuppress {
		fmt.Fprintln(stderr, "relay forget: --regulation goes with --unsuppress")
		return 2
	}
	if subj.Empty() && !(*unsuppress && *regulation != "") {
		fmt.Fprintln(stderr, "relay forget: give at least one of --user ID, --email E or --phone P")
		return 2
	}
	var destList []string
	for _, d := range strings.Split(*dests, ",") {
		if d = strings.TrimSpace(d); d != "" {
			destList = append(destList, d)
		}
	}
	*cfgPath = configPath(*cfgPath)
	cfg, err := config.Load(*cfgPath, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "relay forget: %v\n", err)
		return 2
	}
	base := *server
	if base == "" {
		// The deletion API lives with /admin: on adminAddr when set.
		addr := cfg.Addr
		if cfg.AdminAddr != "" {
			addr = cfg.AdminAddr
		}
		host, port, _ := net.SplitHostPort(addr)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		base = "http://" + net.JoinHostPort(host, port)
	}
	tok := *token
	for _, t := range []string{tok, cfg.Admin.Token, cfg.Admin.DeletionKey} {
		if tok == "" {
			tok = t
		}
	}
	c := &forgetClient{base: strings.TrimSuffix(base, "/"), token: tok, http: &http.Client{Timeout: 30 * time.Second}}
	if *suppressOnly || *unsuppress {
		opts := app.ForgetOptions{ConfigPath: *cfgPath, Data: *data, Subject: subj, Env: os.LookupEnv}
		return c.suppression(ctx, *unsuppress, *regulation, opts, *server != "", stdout, stderr)
	}
	body, _ := json.Marshal(map[string]any{"userId": subj.UserID, "email": subj.Email, "phone": subj.Phone,
		"destinations": destList, "localOnly": *localOnly, "suppress": *suppress, "origin": "cli"})
	var view map[string]any
	status, err := c.do(ctx, "POST", "/admin/api/deletions", body, &view)
	if isNoServer(err) {
		if *server != "" {
			fmt.Fprintf(stderr, "relay forget: %s does not answer: %v\n", base, err)
			return 1
		}
		d, serr := app.StoreDeletion(ctx, app.ForgetOptions{ConfigPath: *cfgPath, Data: *data, Subject: subj, Dests: destList, LocalOnly: *localOnly, Suppress: *suppress, Env: os.LookupEnv})
		if serr != nil {
			fmt.Fprintf(stderr, "relay forget: no relay serve answers at %s, and storing the request failed: %v\n", base, serr)
			return 1
		}
		fmt.Fprintf(stdout, "no relay serve answers at %s: deletion del_%d stored; the next relay serve processes it\n", base, d.ID)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "relay forget: %v\n", err)
		return 1
	}
	if status != http.StatusCreated {
		fmt.Fprintf(stderr, "relay forget: %s answered %d: %v\n", base, status, view["error"])
		if status == http.StatusUnauthorized {
			fmt.Fprintln(stderr, "relay forget: pass the admin token with --token or RELAY_ADMIN_TOKEN")
		}
		return 1
	}
	d, _ := view["deletion"].(map[string]any)
	id, _ := d["id"].(string)
	fmt.Fprintf(stdout, "deletion %s accepted (%v)\n", id, d["state"])
	if *wait <= 0 {
		return 0
	}
	return c.follow(ctx, id, *wait, stdout, stderr)
}

type forgetClient struct {
	base, token string
	http        *http.Client
}

func (c *forgetClient) do(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("server URL: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s answered %d with no JSON: %w", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}

// follow polls the deletion until it is done or failed, or wait passes.
func (c *forgetClient) follow(ctx context.Context, id string, wait time.Duration, stdout, stderr io.Writer) int {
	deadline := time.Now().Add(wait)
	last := ""
	for {
		var view map[string]any
		if _, err := c.do(ctx, "GET", "/admin/api/deletions/"+id, nil, &view); err != nil {
			fmt.Fprintf(stderr, "relay forget: %v\n", err)
			return 1
		}
		d, _ := view["deletion"].(map[string]any)
		state, _ := d["state"].(string)
		line := fmt.Sprintf("%s: %s (attempts %v)", id, state, d["attempts"])
		if e, _ := d["lastError"].(string); e != "" {
			line += ": " + e
		}
		if line != last {
			fmt.Fprintln(stdout, line)
			last = line
		}
		switch state {
		case "done":
			return 0
		case "failed":
			return 1
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "relay forget: %s is still %s after %v; it goes on in the server\n", id, state, wait)
			return 1
		}
		select {
		case <-ctx.Done():
			return 1
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// isNoServer reports whether nothing listens at the address.
func isNoServer(err error) bool {
	var op *net.OpError
	return err != nil && (errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial"))
}

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// suppression suppresses (--suppress-only) or lifts suppressions
// (--unsuppress) through the running server, or in the store when none
// answers (and --server was not given).
func (c *forgetClient) suppression(ctx context.Context, unsuppress bool, regulation string, o app.ForgetOptions, explicit bool, stdout, stderr io.Writer) int {
	subj := map[string]any{"userId": o.Subject.UserID, "email": o.Subject.Email, "phone": o.Subject.Phone}
	body, _ := json.Marshal(subj)
	var (
		view   map[string]any
		status int
		err    error
		want   = http.StatusCreated
	)
	switch {
	case !unsuppress:
		status, err = c.do(ctx, "POST", "/admin/api/suppressions", body, &view)
	case regulation != "":
		want = http.StatusOK
		status, err = c.do(ctx, "DELETE", "/admin/api/suppressions/"+url.PathEscape(regulation), nil, &view)
		if err == nil && status == want && !o.Subject.Empty() {
			status, err = c.do(ctx, "POST", "/admin/api/suppressions/remove", body, &view)
		}
	default:
		want = http.StatusOK
		status, err = c.do(ctx, "POST", "/admin/api/suppressions/remove", body, &view)
	}
	if isNoServer(err) && !explicit {
		msg, serr := app.StoreSuppression(ctx, o, unsuppress, regulation)
		if serr != nil {
			fmt.Fprintf(stderr, "relay forget: no relay serve answers at %s, and the store failed: %v\n", c.base, serr)
			return 1
		}
		fmt.Fprintf(stdout, "no relay serve answers at %s: %s in the store; a running relay serve applies it within seconds\n", c.base, msg)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "relay forget: %v\n", err)
		return 1
	}
	if status != want {
		fmt.Fprintf(stderr, "relay forget: %s answered %d: %v\n", c.base, status, view["error"])
		return 1
	}
	if unsuppress {
		fmt.Fprintf(stdout, "%v suppression(s) lifted\n", view["unsuppressed"])
		return 0
	}
	s, _ := view["suppression"].(map[string]any)
	fmt.Fprintf(stdout, "suppression %v stored: the user's events are no longer delivered\n", s["regulation"])
	return 0
}
