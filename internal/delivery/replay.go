package delivery

import (
	"encoding/json"
	"time"

	"github.com/relaycdp/relay/internal/queue"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

// ReplayMessages turns dead letters back into queue messages, to be
// delivered again with the destination's current settings. The ordering
// key is recomputed from the stored event; a payload that no longer decodes
// gets none, and delivery dead-letters it again with the reason.
func ReplayMessages(dls []store.DeadLetter, now time.Time) []queue.Message {
	msgs := make([]queue.Message, len(dls))
	for i, dl := range dls {
		key := ""
		var ev spec.Event
		if json.Unmarshal(dl.Payload, &ev) == nil {
			key = ev.Key()
		}
		msgs[i] = queue.Message{
			Source:     dl.Source,
			Dest:       dl.Dest,
			Key:        key,
			MessageID:  dl.MessageID,
			Payload:    dl.Payload,
			ReceivedAt: now,
		}
	}
	return msgs
}
