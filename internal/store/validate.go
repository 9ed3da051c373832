package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// WriteKeyPrefix starts every key made by CreateWriteKey.
const WriteKeyPrefix = "wk_"

// maxName bounds source and destination names.
const maxName = 128

// MaskKey shows a secret key the way pages and logs may: its prefix ("wk_",
// "pk_", … up to the first underscore within four characters), the next two
// characters and the last two, as in "wk_ab…9f". Keys too short to hide
// enough of are shown as prefix + "…" only.
func MaskKey(k string) string {
	if k == "" {
		return ""
	}
	r := []rune(k)
	pre := 0
	if i := strings.IndexByte(k, '_'); i >= 0 && i < 4 {
		pre = utf8.RuneCountInString(k[:i+1])
	}
	// Reveal 4 characters only when at least 12 others stay hidden.
	if len(r)-pre < 16 {
		return string(r[:pre]) + "…"
	}
	return string(r[:pre+2]) + "…" + string(r[len(r)-2:])
}

// NewWriteKey returns a random write key: WriteKeyPrefix and 128 bits as 32
// hex digits.
func NewWriteKey() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate write key: %w", err)
	}
	return WriteKeyPrefix + hex.EncodeToString(b[:]), nil
}

// checkName validates a source or destination name.
func checkName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty: %w", what, ErrInvalid)
	case len(name) > maxName:
		return fmt.Errorf("%s name is longer than %d bytes: %w", what, maxName, ErrInvalid)
	case !utf8.ValidString(name):
		return fmt.Errorf("%s name is not UTF-8: %w", what, ErrInvalid)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%s name %q has leading or trailing space: %w", what, name, ErrInvalid)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%s name %q has a control character: %w", what, name, ErrInvalid)
	}
	return nil
}

// checkKey validates a configured write key without putting it in the error.
func checkKey(source, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("source %q: write key is empty: %w", source, ErrInvalid)
	case len(key) > 256:
		return fmt.Errorf("source %q: write key %s is longer than 256 bytes: %w", source, MaskKey(key), ErrInvalid)
	case strings.TrimSpace(key) != key || strings.IndexFunc(key, unicode.IsControl) >= 0:
		return fmt.Errorf("source %q: write key %s has spaces or control characters: %w", source, MaskKey(key), ErrInvalid)
	}
	return nil
}

// checkEntry validates a log entry; i is its index in the batch.
func checkEntry(i int, e *LogEntry) error {
	switch {
	case e.MessageID == "":
		return fmt.Errorf("log entry %d: messageId is empty: %w", i, ErrInvalid)
	case !e.Status.Valid():
		return fmt.Errorf("log entry %d (messageId %q): unknown status %q: %w", i, e.MessageID, e.Status, ErrInvalid)
	case e.Attempts < 0:
		return fmt.Errorf("log entry %d (messageId %q): attempts %d is negative: %w", i, e.MessageID, e.Attempts, ErrInvalid)
	}
	return nil
}

// checkDeadLetter validates a dead letter; i is its index in the batch.
func checkDeadLetter(i int, d *DeadLetter) error {
	switch {
	case d.MessageID == "":
		return fmt.Errorf("dead letter %d: messageId is empty: %w", i, ErrInvalid)
	case d.Dest == "":
		return fmt.Errorf("dead letter %d (messageId %q): dest is empty: %w", i, d.MessageID, ErrInvalid)
	case len(d.Payload) == 0:
		return fmt.Errorf("dead letter %d (messageId %q): payload is empty: %w", i, d.MessageID, ErrInvalid)
	case !json.Valid(d.Payload):
		return fmt.Errorf("dead letter %d (messageId %q): payload is not JSON: %w", i, d.MessageID, ErrInvalid)
	case d.Attempts < 0:
		return fmt.Errorf("dead letter %d (messageId %q): attempts %d is negative: %w", i, d.MessageID, d.Attempts, ErrInvalid)
	}
	return nil
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut
// with "…" (counted in n).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// prefixEnd returns the smallest string greater than every string that
// starts with p (for a range scan p <= x < prefixEnd(p) in byte order), and
// false when there is none or p is not UTF-8 (then match p exactly).
func prefixEnd(p string) (string, bool) {
	if !utf8.ValidString(p) {
		return "", false
	}
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		next := r + 1
		if next == 0xD800 { // skip the surrogates, which UTF-8 cannot encode
			next = 0xE000
		}
		if next <= unicode.MaxRune {
			return p + string(next), true
		}
	}
	return "", false
}

// clampLimit applies the default and maximum page size.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 1000:
		return 1000
	}
	return n
}

// textSafe is s as every store can keep it in a text column: PostgreSQL's
// text holds neither NUL nor invalid UTF-8 (one such value failed a whole
// batch), so both become U+FFFD. Stores that keep them (SQLite) need not
// call it; lookups of a stored value map their argument the same way.
func textSafe(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
