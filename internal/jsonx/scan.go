package jsonx

import "encoding/binary"

// PlainPrefix returns how many bytes at the start of b a JSON string
// holds as they are: the bytes before the first quote, backslash or
// control character (len(b) if there is none). It tests 8 bytes at a
// time: the parsers walk every string of an event several times (split,
// validate, decode), and byte-at-a-time loops over them were a fifth of
// `relay transform`'s CPU (BenchmarkPlainPrefix).
func PlainPrefix(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if special(binary.LittleEndian.Uint64(b[i:])) {
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return i
}

// PlainASCIIPrefix is PlainPrefix stopping also at the first byte that
// is not ASCII: the run of a string's bytes a decoder can take as they
// are without checking UTF-8.
func PlainASCIIPrefix(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if specialOrHigh(binary.LittleEndian.Uint64(b[i:])) {
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 || c >= 0x80 {
			return i
		}
	}
	return i
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special reports whether any byte of w is a quote, a backslash or below
// 0x20. (x - ones) &^ x & highs is non-zero exactly when some byte of x is
// zero (x is w xor the quote, or xor the backslash), and
// (w - 0x20 each) &^ w & highs exactly when some byte of w is below 0x20:
// borrows only spill past a byte that already matched.
func special(w uint64) bool {
	q := w ^ (ones * '"')
	bs := w ^ (ones * '\\')
	return ((q-ones)&^q|(bs-ones)&^bs|(w-ones*0x20)&^w)&highs != 0
}

// specialOrHigh is special, or a byte of w is not ASCII (AppendString
// decodes those).
func specialOrHigh(w uint64) bool {
	return special(w) || w&highs != 0
}

// load64 reads s's first 8 bytes little-endian (one load once compiled).
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
