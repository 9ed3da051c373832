package kdest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
)

// Klaviyo's per-request limits (internal/klaviyo/openapi README: item
// counts and 5 MB per job live only in the endpoint descriptions).
const (
	maxJobBytes        = 5 << 20
	maxEventsPerJob    = 1000
	maxProfilesPerJob  = 10000
	maxSubscribePerJob = 1000
	maxUnsubPerJob     = 100
	// jobByteBudget leaves room for the job envelope around the items.
	jobByteBudget = maxJobBytes - 64<<10
	// maxSplitDepth bounds how often a rejected request without item
	// pointers is halved to find the bad items: 2^11 > 1000 events.
	maxSplitDepth = 11
)

// group is operations that go out in the same kind of request.
type group struct {
	kind       klaviyo.OpKind
	listID     string
	historical bool
	source     string
	refs       []ref
}

func (g *group) key() string {
	return fmt.Sprintf("%s|%s|%t|%s", g.kind, g.listID, g.historical, g.source)
}

func (g *group) maxItems() int {
	switch g.kind {
	case klaviyo.OpEvent:
		return maxEventsPerJob
	case klaviyo.OpSubscribe:
		return maxSubscribePerJob
	case klaviyo.OpUnsubscribe:
		return maxUnsubPerJob
	case klaviyo.OpClientProfile, klaviyo.OpClientEvent, klaviyo.OpClientSubscribe:
		return 1 // client API: one call each
	case klaviyo.OpListRemove:
		return maxListRemovePerChunk
	}
	return maxProfilesPerJob
}

// deliver sends every operation of the batch: round by round the profile
// and list changes (in the order each profile's calls came), then every
// round's events together, so they fill bulk requests (Klaviyo orders
// events by their time; an event's own profile attributes are the ones its
// call carried).
func (b *batch) deliver(ctx context.Context) {
	rounds := b.rounds()
	var all []int
	for _, round := range rounds {
		for st := range stageEvent {
			b.sendStage(ctx, round, st)
		}
		all = append(all, round...)
	}
	slices.Sort(all)
	b.sendStage(ctx, all, stageEvent)
}

// sendStage sends one stage's operations of the given items, many requests
// at once (the client's rate limiter paces them per endpoint).
func (b *batch) sendStage(ctx context.Context, items []int, st stage) {
	// Chunk every group before sending any: chunking records the
	// duplicates that ride on another operation, which the sends then read.
	type work struct {
		g     *group
		chunk []ref
	}
	var todo []work
	for _, gr := range b.groups(items, st) {
		for _, chunk := range b.chunks(gr) {
			todo = append(todo, work{gr, chunk})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.s.cfg.Concurrency)
	for _, w := range todo {
		g.Go(func() error {
			b.sendChunk(gctx, w.g, w.chunk, 0)
			return nil
		})
	}
	_ = g.Wait()
}

// groups collects one stage's operations of a round by request kind, in
// job order.
func (b *batch) groups(round []int, st stage) []*group {
	byKey := map[string]*group{}
	var out []*group
	for _, i := range round {
		for j, op := range b.items[i].ops {
			if stageOf(op.Kind) != st {
				continue
			}
			g := &group{kind: op.Kind, listID: op.ListID, historical: op.HistoricalImport, source: op.CustomSource}
			if have, ok := byKey[g.key()]; ok {
				g = have
			} else {
				byKey[g.key()] = g
				out = append(out, g)
			}
			g.refs = append(g.refs, ref{i, j})
		}
	}
	return out
}

// chunks splits a group within the endpoint's item and byte limits. An
// event that repeats another of the batch exactly (same metric, profile and
// unique_id: an order listing one product twice, an SDK retry committed
// twice) is not sent at all: Klaviyo would drop it as a duplicate, and a
// job repeating a unique_id fails whole. It rides on the first one and
// shares its outcome. A unique_id repeated with a different profile or
// metric is a different event to Klaviyo: it goes in a later chunk.
func (b *batch) chunks(g *group) [][]ref {
	var out [][]ref
	var cur []ref
	size := 0
	inChunk := map[string]bool{} // unique ids in cur
	leaders := map[string]ref{}  // exact event → the op that carries it
	profiles := map[string]ref{} // profile key → the import carrying it
	var deferred []ref
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur, size, inChunk = nil, 0, map[string]bool{}
	}
	for len(g.refs) > 0 || len(deferred) > 0 {
		refs := g.refs
		g.refs, deferred = deferred, nil
		for _, r := range refs {
			op := b.op(r)
			uid := ""
			if op.Kind == klaviyo.OpEvent && op.Event != nil {
				uid = op.Event.UniqueID
			}
			if p := op.Profile; op.Kind == klaviyo.OpProfile && p != nil && p.Meta == nil && op.ProfileKey() != "" {
				// A later import of the same profile: merge it into the
				// first (rounds keeps imports with patch operations apart).
				if lead, ok := profiles[op.ProfileKey()]; ok {
					b.mergeInto(lead, p)
					b.followers[lead] = append(b.followers[lead], r)
					continue
				}
				profiles[op.ProfileKey()] = r
			}
			if uid != "" {
				exact := op.Event.Metric + "\x00" + op.ProfileKey() + "\x00" + uid
				if lead, ok := leaders[exact]; ok {
					b.followers[lead] = append(b.followers[lead], r)
					continue
				}
				if inChunk[uid] {
					deferred = append(deferred, r)
					continue
				}
				leaders[exact] = r
			}
			n := opSize(op)
			if len(cur) > 0 && (len(cur) >= g.maxItems() || size+n > jobByteBudget) {
				flush()
			}
			if uid != "" {
				inChunk[uid] = true
			}
			cur = append(cur, r)
			size += n
		}
		flush()
	}
	return out
}

// mergeInto makes lead's profile import carry p's values too, later values
// winning field by field and property by property: what importing the two
// one after the other leaves. The ops' maps may be shared with the event,
// so the merge builds new ones.
func (b *batch) mergeInto(lead ref, p *klaviyo.Profile) {
	op := &b.items[lead.item].ops[lead.op]
	m := *op.Profile
	a, n := &m.Attributes, p.Attributes
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&a.Email, n.Email}, {&a.PhoneNumber, n.PhoneNumber}, {&a.ExternalID, n.ExternalID}, {&a.AnonymousID, n.AnonymousID},
		{&a.FirstName, n.FirstName}, {&a.LastName, n.LastName}, {&a.Organization, n.Organization}, {&a.Title, n.Title}, {&a.Image, n.Image},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	if p.ID != "" {
		m.ID = p.ID
	}
	if n.Location != nil {
		loc := klaviyo.Location{}
		if a.Location != nil {
			loc = *a.Location
		}
		mergeLocation(&loc, n.Location)
		a.Location = &loc
	}
	if len(n.Properties) > 0 {
		props := make(map[string]any, len(a.Properties)+len(n.Properties))
		maps.Copy(props, a.Properties)
		maps.Copy(props, n.Properties)
		a.Properties = props
	}
	op.Profile = &m
}

func mergeLocation(dst, src *klaviyo.Location) {
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&dst.Address1, src.Address1}, {&dst.Address2, src.Address2}, {&dst.City, src.City}, {&dst.Region, src.Region},
		{&dst.Country, src.Country}, {&dst.Zip, src.Zip}, {&dst.Timezone, src.Timezone}, {&dst.IP, src.IP},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	if src.Latitude != nil {
		dst.Latitude = src.Latitude
	}
	if src.Longitude != nil {
		dst.Longitude = src.Longitude
	}
}

func opSize(op klaviyo.Op) int {
	n := 256
	if op.Profile != nil {
		b, _ := json.Marshal(op.Profile)
		n += len(b)
	}
	if op.Event != nil {
		b, _ := json.Marshal(op.Event)
		n += len(b)
	}
	return n
}

// request renders a chunk as one Klaviyo call: the single-call form for a
// lone event or profile (those endpoints have far larger rate limits), the
// bulk job otherwise. Item i of a bulk body is chunk[i].
func (b *batch) request(g *group, chunk []ref) klaviyo.Request {
	ops := make([]klaviyo.Op, len(chunk))
	for i, r := range chunk {
		ops[i] = b.op(r)
	}
	if len(ops) == 1 && (g.kind == klaviyo.OpEvent || g.kind == klaviyo.OpProfile || g.kind == klaviyo.OpClientProfile ||
		g.kind == klaviyo.OpClientEvent || g.kind == klaviyo.OpClientSubscribe) {
		return ops[0].Request(b.settings)
	}
	switch g.kind {
	case klaviyo.OpEvent:
		return klaviyo.EventBulkJob(ops)
	case klaviyo.OpSubscribe:
		return klaviyo.SubscribeJob(g.listID, g.historical, g.source, ops)
	case klaviyo.OpUnsubscribe:
		return klaviyo.UnsubscribeJob(g.listID, ops)
	case klaviyo.OpListAdd:
		return klaviyo.ProfileBulkImportJob(ops, g.listID)
	}
	return klaviyo.ProfileBulkImportJob(ops, "")
}

// sendChunk sends one request and settles every operation in it. A 4xx
// that names items fails only those and resends the rest; a 4xx that names
// none is split in halves until the bad items are alone.
func (b *batch) sendChunk(ctx context.Context, g *group, chunk []ref, depth int) {
	if g.kind == klaviyo.OpListRemove {
		b.sendListRemove(ctx, g, chunk)
		return
	}
	req := b.request(g, chunk)
	resp, err := b.s.send.Do(ctx, b.settings.PrivateAPIKey, req)
	b.s.metrics.request(req, len(chunk), err)
	if err == nil {
		if isImportJob(req) {
			b.followImportJob(chunk, resp)
			return
		}
		b.succeed(chunk)
		return
	}
	var kerr *kapi.Error
	if !errors.As(err, &kerr) || kapi.ClassOf(err) != kapi.Permanent {
		f := &failure{detail: err.Error()}
		if kerr != nil {
			f = failureOf(kerr, nil)
		}
		for _, r := range chunk {
			b.fail(r, f, true)
		}
		return
	}
	bad := b.itemsNamed(kerr, len(chunk))
	switch {
	case len(chunk) == 1 || wholeRequestProblem(kerr.Status):
		for _, r := range chunk {
			b.fail(r, failureOf(kerr, nil), false)
		}
	case len(bad) > 0 && depth < maxSplitDepth:
		var rest []ref
		for i, r := range chunk {
			if e, ok := bad[i]; ok {
				b.fail(r, failureOf(kerr, e), false)
			} else {
				rest = append(rest, r)
			}
		}
		if len(rest) > 0 {
			b.sendChunk(ctx, g, rest, depth+1)
		}
	case depth < maxSplitDepth:
		half := len(chunk) / 2
		b.sendChunk(ctx, g, chunk[:half], depth+1)
		b.sendChunk(ctx, g, chunk[half:], depth+1)
	default:
		for _, r := range chunk {
			b.fail(r, failureOf(kerr, nil), false)
		}
	}
}

// wholeRequestProblem: statuses that no item of the request caused, so
// splitting would only repeat them (a bad key, a missing scope).
func wholeRequestProblem(status int) bool {
	return status == 401 || status == 403 || status == 404 || status == 405
}

// itemsNamed maps the item indexes Klaviyo's error pointers name to the
// error object naming them.
func (b *batch) itemsNamed(kerr *kapi.Error, n int) map[int]*kapi.ErrorObject {
	out := map[int]*kapi.ErrorObject{}
	for i := range kerr.Errors {
		e := &kerr.Errors[i]
		if idx, ok := klaviyo.ItemIndex(e.Source.Pointer); ok && idx >= 0 && idx < n {
			if _, dup := out[idx]; !dup {
				out[idx] = e
			}
		}
	}
	return out
}

func failureOf(kerr *kapi.Error, e *kapi.ErrorObject) *failure {
	f := &failure{status: kerr.Status}
	if e == nil && len(kerr.Errors) > 0 {
		e = &kerr.Errors[0]
	}
	if e != nil {
		f.code, f.detail, f.pointer = e.Code, e.Detail, e.Source.Pointer
		if f.detail == "" {
			f.detail = e.Title
		}
	} else {
		f.detail = kerr.Error()
	}
	if kerr.Status == 429 {
		f.detail += " (retry after " + strconv.Itoa(int(kerr.RetryAfter.Seconds())) + "s)"
	}
	return f
}
