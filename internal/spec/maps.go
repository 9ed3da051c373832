package spec

// Maps lends Parse the maps it decodes objects into (Options.Maps), so
// that a caller parsing event after event, and done with each event before
// the next, reuses them instead of allocating new ones: making and growing
// the events' maps was the largest share of `relay transform`'s
// allocations (docs/BENCHMARKS.md). Maps come back emptied, with the
// room they grew to, in the order they were lent, so an event shaped like
// the one before it decodes without growing a map.
//
// The zero value is ready to use. A Maps is not safe for concurrent use.
type Maps struct {
	lent []map[string]any
	n    int // lent[:n] are in use
}

// maxKeptMap is the most entries a map may have held and still be lent
// again: a rare huge object should not make every later, small one that
// gets its map slow to clear and to iterate.
const maxKeptMap = 64

// Reset takes back every map lent since the last Reset. The caller must no
// longer use any Event (or value taken from one) parsed with them: their
// maps are emptied and refilled by the next Parse.
func (ms *Maps) Reset() {
	for i, m := range ms.lent[:ms.n] {
		if len(m) > maxKeptMap {
			ms.lent[i] = nil
			continue
		}
		clear(m)
	}
	ms.n = 0
}

// Get lends an empty map until the next Reset, to a caller building maps
// it is done with by then (relay transform's mapping).
func (ms *Maps) Get() map[string]any { return ms.get() }

// get lends an empty map; a nil Maps makes a new one.
func (ms *Maps) get() map[string]any {
	if ms == nil {
		return map[string]any{}
	}
	if ms.n == len(ms.lent) {
		ms.lent = append(ms.lent, nil)
	}
	m := ms.lent[ms.n]
	if m == nil {
		m = map[string]any{}
		ms.lent[ms.n] = m
	}
	ms.n++
	return m
}
