package kdest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
)

// maxListRemovePerChunk bounds a list removal chunk: each op may need its
// own profile lookup (GET /api/profiles) before the one DELETE, which
// takes at most 1,000 ids.
const maxListRemovePerChunk = 100

// sendListRemove ends the list membership of a chunk's profiles (one
// list): the profile id the event carried, else the ids a lookup by
// email, phone number or external_id finds; then one
// DELETE /api/lists/{id}/relationships/profiles. A profile Klaviyo does
// not know is on no list: nothing to remove, and the op succeeds.
func (b *batch) sendListRemove(ctx context.Context, g *group, chunk []ref) {
	var ids []string
	var found []ref
	for _, r := range chunk {
		op := b.op(r)
		if op.Profile != nil && op.Profile.ID != "" {
			ids = append(ids, op.Profile.ID)
			found = append(found, r)
			continue
		}
		got, err := b.lookupProfile(ctx, op)
		if err != nil {
			b.failSend(r, err)
			continue
		}
		if len(got) == 0 {
			b.succeed([]ref{r})
			continue
		}
		ids = append(ids, got...)
		found = append(found, r)
	}
	if len(found) == 0 {
		return
	}
	req := klaviyo.ListRemoveRequest(g.listID, ids)
	_, err := b.s.send.Do(ctx, b.settings.PrivateAPIKey, req)
	b.s.metrics.request(req, len(found), err)
	if err != nil {
		for _, r := range found {
			b.failSend(r, err)
		}
		return
	}
	b.succeed(found)
}

// lookupProfile returns the ids of the profiles matching op's identifier.
func (b *batch) lookupProfile(ctx context.Context, op klaviyo.Op) ([]string, error) {
	field, value := op.LookupKey()
	if field == "" {
		return nil, nil
	}
	req := klaviyo.ProfileLookupRequest(field, value)
	resp, err := b.s.send.Do(ctx, b.settings.PrivateAPIKey, req)
	b.s.metrics.request(req, 1, err)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &doc); err != nil {
		return nil, fmt.Errorf("profile lookup by %s: decode: %w", field, err)
	}
	var ids []string
	for _, d := range doc.Data {
		if d.ID != "" {
			ids = append(ids, d.ID)
		}
	}
	return ids, nil
}

// failSend fails one op with a send error: permanent when Klaviyo said
// so, retryable otherwise.
func (b *batch) failSend(r ref, err error) {
	var kerr *kapi.Error
	if errors.As(err, &kerr) {
		b.fail(r, failureOf(kerr, nil), kapi.ClassOf(err) != kapi.Permanent)
		return
	}
	b.fail(r, &failure{detail: err.Error()}, true)
}
