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
	t, fast := parseUTC(s)
	if !fast {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return time.Time{}, false
		}
	}
	t = t.UTC()
	if !marshalable(t) {
		return time.Time{}, false
	}
	return t, true
}

// parseUTC reads the form nearly every SDK sends, UTC with 0 to 9
// fractional digits ("2024-05-01T00:00:00.010Z"), as time.Parse with
// RFC3339Nano reads it, without its general layout machinery (it was a
// few percent of `relay transform`'s CPU: an event has three or four
// timestamps). ok is false for anything else, valid or not: time.Parse
// decides those. FuzzParseUTC holds it to time.Parse.
func parseUTC(s string) (t time.Time, ok bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[len(s)-1] != 'Z' ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(from, to int) int {
		n := 0
		for _, c := range []byte(s[from:to]) {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	ns := 0
	if frac := s[19 : len(s)-1]; frac != "" {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		if ns = num(20, len(s)-1); ns < 0 {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			ns *= 10
		}
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 ||
		minute < 0 || minute > 59 || sec < 0 || sec > 59 || day > daysIn(time.Month(month), year) {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, ns, time.UTC), true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
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
