package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/datadir"
	"github.com/relaycdp/relay/internal/delivery"
	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/store"
)

// Enqueuer makes messages durable.
type Enqueuer interface {
	Enqueue(ctx context.Context, msgs []queue.Message) error
}

// ReplayDeadLetters re-enqueues the selected dead letters for delivery with
// the destination's current settings. The store marks them replayed only
// if the enqueue committed, so a dead letter is never lost in between.
func ReplayDeadLetters(ctx context.Context, r store.Replayer, q Enqueuer, sel store.ReplaySelector, now time.Time) (int, error) {
	return r.TakeForReplay(ctx, sel, func(ctx context.Context, dls []store.DeadLetter) error {
		return q.Enqueue(ctx, delivery.ReplayMessages(dls, now))
	})
}

// ReplayOptions select what `relay replay` re-enqueues.
type ReplayOptions struct {
	ConfigPath string
	Data       string
	Dest       string    // every pending dead letter of this destination
	ID         int64     // or just this one
	Since      time.Time // with Dest: only those created at or after
	Env        func(string) (string, bool)
}

// Replay re-enqueues dead letters. When another process holds the data
// dir (a running relay serve), it asks that server through its admin API
// with the admin token, so the server's own queue takes them; otherwise it
// opens the store and queue itself, holding the data dir's lock meanwhile.
// With PostgreSQL and JetStream nothing is local and it opens them beside
// the running nodes.
func Replay(ctx context.Context, o ReplayOptions) (int, error) {
	cfg, err := config.Load(o.ConfigPath, o.Env)
	if err != nil {
		return 0, err
	}
	if o.Data != "" {
		cfg.Data = o.Data
	}
	log := newLogger(cfg.Log, discard{})
	b, err := openExistingBackends(ctx, cfg, o.Env, log)
	if held, ok := errors.AsType[*datadir.HeldError](err); ok {
		return replayRemote(ctx, cfg.Admin.Token, held, o)
	}
	if err != nil {
		return 0, err
	}
	defer b.close(log)
	return ReplayDeadLetters(ctx, b.store, b.queue, store.ReplaySelector{ID: o.ID, Dest: o.Dest, Since: o.Since}, time.Now())
}

// replayRemote asks the server holding the data dir to replay.
func replayRemote(ctx context.Context, token string, held *datadir.HeldError, o ReplayOptions) (int, error) {
	switch {
	case token == "":
		return 0, fmt.Errorf("%w; to replay beside it, give both the same admin token (admin.token or RELAY_ADMIN_TOKEN) "+
			"so replay can ask it, or use the console's dead-letter page", held)
	case held.AdminURL == "":
		return 0, fmt.Errorf("%w, which has not published its admin address yet; retry in a moment", held)
	}
	body, _ := json.Marshal(struct {
		ID    int64     `json:"id,omitempty"`
		Dest  string    `json:"dest,omitempty"`
		Since time.Time `json:"since,omitzero"`
	}{o.ID, o.Dest, o.Since})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, held.AdminURL+"/api/replay", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("replay through relay (pid %d): %w", held.PID, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("replay through relay (pid %d) at %s: %w", held.PID, held.AdminURL, err)
	}
	defer resp.Body.Close()
	var out struct {
		Replayed int    `json:"replayed"`
		Error    string `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != http.StatusOK {
		msg := out.Error
		if msg == "" {
			msg = strings.TrimSpace(string(raw))
		}
		return out.Replayed, fmt.Errorf("replay through relay (pid %d): %s: %s", held.PID, resp.Status, msg)
	}
	return out.Replayed, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
