package kdest

import (
	"slices"

	"github.com/relaycdp/relay/internal/klaviyo"
)

// stage orders operations inside a round: a profile exists (with its
// attributes) before it is subscribed or added to a list. Events go after
// every round (see deliver).
type stage int

const (
	stageProfile stage = iota
	stageList
	stageEvent
	stageCount
)

func stageOf(k klaviyo.OpKind) stage {
	switch k {
	case klaviyo.OpProfile, klaviyo.OpClientProfile:
		return stageProfile
	case klaviyo.OpSubscribe, klaviyo.OpUnsubscribe, klaviyo.OpListAdd, klaviyo.OpListRemove, klaviyo.OpClientSubscribe:
		return stageList
	}
	return stageEvent
}

// rounds splits the batch so that, for each key, the changes that do not
// commute are sent in the order they were received: list and consent
// changes (subscribe then unsubscribe must end unsubscribed) and profile
// imports with patch operations (append, unset). Jobs of one key go in one
// round until a second such job arrives: that job starts the key's next
// round. Plain profile imports of one key in one round are merged into one
// (later values win, see chunks), which is what sending them one by one
// would leave. Events never start a round (Klaviyo orders events by their
// time, and their unique ids make them independent); deliver sends the
// events of all rounds together after the last one.
func (b *batch) rounds() [][]int {
	type keyState struct {
		round      int
		hasOrdered bool // the key's current round holds an order-sensitive change
	}
	keys := map[string]*keyState{}
	var out [][]int
	for i := range b.items {
		it := &b.items[i]
		if len(it.ops) == 0 || it.permanent != nil || it.held {
			continue
		}
		ordered := slices.ContainsFunc(it.ops, orderSensitive)
		r := 0
		if it.job.Key != "" {
			ks := keys[it.job.Key]
			switch {
			case ks == nil:
				ks = &keyState{}
				keys[it.job.Key] = ks
			case ordered && ks.hasOrdered:
				ks.round++
				ks.hasOrdered = false
			}
			r = ks.round
			ks.hasOrdered = ks.hasOrdered || ordered
		}
		for len(out) <= r {
			out = append(out, nil)
		}
		out[r] = append(out[r], i)
	}
	return out
}

// orderSensitive: a change whose result depends on its order relative to
// another change of the same profile.
func orderSensitive(op klaviyo.Op) bool {
	switch op.Kind {
	case klaviyo.OpSubscribe, klaviyo.OpUnsubscribe, klaviyo.OpListAdd, klaviyo.OpListRemove, klaviyo.OpClientSubscribe:
		return true
	case klaviyo.OpProfile, klaviyo.OpClientProfile:
		return op.Profile != nil && op.Profile.Meta != nil
	}
	return false
}
