package spec

import "time"

// parseTime reads an RFC 3339 timestamp with any fractional precision
// (analytics.js sends milliseconds, analytics-go nanoseconds) and any UTC
// offset, and returns it in UTC. Anything else — not a string, not RFC 3339
// (Segment's own docs show "2015-2-02T…"), or outside the years JSON can
// carry — reports false, and the caller falls back as clients.md §1 says.
func parseTime(raw []byte) (time.Time, bool) { return (*text)(nil).parseTime(raw) }

// parseTime is the package's parseTime reading the string from tx.
func (tx *text) parseTime(raw []byte) (time.Time, bool) {
	s, ok := tx.decodeString(raw)
	if !ok || s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	if !marshalable(t) {
		return time.Time{}, false
	}
	return t, true
}

// marshalable reports whether t fits time.Time.MarshalJSON (years 0–9999),
// so every Event Parse returns can be stored as JSON.
func marshalable(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}

// times sets the four timestamps, following clients.md §1 ("Recommended
// normalisation for us"):
//
//	receivedAt = Options.ReceivedAt, or (only when that is zero) the event's receivedAt
//	orig       = originalTimestamp ?? timestamp ?? receivedAt
//	sent       = event sentAt ?? envelope sentAt ?? receivedAt
//	timestamp  = receivedAt − (sent − orig)
//
// An unparseable value counts as absent. The skew correction is applied
// only when Options.ReceivedAt is set (the server saw the request) and the
// body gave both orig and sent; otherwise timestamp = orig, which is what the
// formula yields when sent defaults to receivedAt. (With orig unknown and sent
// known the formula would move the event by the client's skew in the wrong
// direction, so timestamp = receivedAt then.) relay transform passes a zero
// ReceivedAt and gets timestamp = orig, uncorrected; when nothing at all is
// known every time is zero.
func (p *parser) times(f *fields, env *envelope, ev *Event) {
	recv := p.recv
	if recv.IsZero() {
		recv, _ = p.text.parseTime(f[fReceivedAt])
	}
	orig, origKnown := p.text.parseTime(f[fOriginalTimestamp])
	if !origKnown {
		orig, origKnown = p.text.parseTime(f[fTimestamp])
	}
	sent, sentKnown := p.text.parseTime(f[fSentAt])
	if !sentKnown && env.hasSentAt {
		sent, sentKnown = env.sentAt, true
	}

	ts := orig
	switch {
	case !origKnown:
		orig, ts = recv, recv
	case sentKnown && !p.recv.IsZero():
		if c := recv.Add(orig.Sub(sent)); marshalable(c) {
			ts = c
		}
	}
	if !sentKnown {
		sent = recv
	}
	ev.Timestamp = ts
	ev.OriginalTimestamp = orig
	ev.SentAt = sent
	ev.ReceivedAt = recv
}
