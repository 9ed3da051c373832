package delivery

import "github.com/relaycdp/relay/internal/klaviyo"

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
	case klaviyo.OpSubscribe, klaviyo.OpUnsubscribe, klaviyo.OpListAdd:
		return stageList
	}
	return stageEvent
}

// rounds splits the batch so that, for each key, profile and list changes
// are sent in the order they were received. Jobs of one key go in one round
// until a second job with a profile or list change arrives: that job starts
// the key's next round. Events never start a round (Klaviyo orders events by
// their time, and their unique ids make them independent); deliver sends
// the events of all rounds together after the last one.
func (b *batch) rounds() [][]int {
	type keyState struct {
		round      int
		hasChanges bool // the key's current round holds a profile/list change
	}
	keys := map[string]*keyState{}
	var out [][]int
	for i := range b.items {
		it := &b.items[i]
		if len(it.ops) == 0 || it.permanent != nil || it.held {
			continue
		}
		changes := false
		for _, op := range it.ops {
			if stageOf(op.Kind) != stageEvent {
				changes = true
				break
			}
		}
		r := 0
		if it.job.Key != "" {
			ks := keys[it.job.Key]
			switch {
			case ks == nil:
				ks = &keyState{}
				keys[it.job.Key] = ks
			case changes && ks.hasChanges:
				ks.round++
				ks.hasChanges = false
			}
			r = ks.round
			ks.hasChanges = ks.hasChanges || changes
		}
		for len(out) <= r {
			out = append(out, nil)
		}
		out[r] = append(out[r], i)
	}
	return out
}
