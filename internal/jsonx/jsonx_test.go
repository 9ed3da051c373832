package jsonx

import (
	"encoding/json"
	"testing"
)

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          `"plain"`,
		"q\"b\\":         `"q\"b\\"`,
		"\n\r\t\x01\x1f": `"\n\r\t\u0001\u001f"`,
		"é\u2028":        `"é\u2028"`,
		"bad\xffutf8":    `"bad\ufffdutf8"`,
		"":               `""`,
	} {
		if got := string(AppendString(nil, in)); got != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
	}
}

// Whatever the string, it decodes to what encoding/json's own encoding of
// it decodes to.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00\u2029", "\xed\xa0\x80", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString([]byte("x"), s)[1:]
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("AppendString(%q) = %s: not JSON: %v", s, got, err)
		}
		std, _ := json.Marshal(s)
		if err := json.Unmarshal(std, &b); err != nil || a != b {
			t.Fatalf("AppendString(%q) decodes to %q, encoding/json's to %q", s, a, b)
		}
	})
}

// plainPrefixBytes is PlainPrefix a byte at a time.
func plainPrefixBytes(b []byte) int {
	for i, c := range b {
		if c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return len(b)
}

func TestPlainPrefix(t *testing.T) {
	for in, want := range map[string]int{
		"": 0, "abc": 3, `abcdefgh"`: 8, `abcdefghijklmno\p`: 15, "é\u2028\xff\x7f0123456789": 17,
		"0123456\x1f": 7, "\x00": 0, "01234567890123456789": 20, `0"23456789`: 1, "\x20\x21\x5b\x5d": 4,
	} {
		if got := PlainPrefix([]byte(in)); got != want {
			t.Errorf("PlainPrefix(%q) = %d, want %d", in, got, want)
		}
	}
}

// FuzzPlainPrefix holds PlainPrefix and PlainASCIIPrefix to byte loops.
func FuzzPlainPrefix(f *testing.F) {
	f.Add([]byte(`0123456789abcdef"x`))
	f.Add([]byte("\xff\xfe\x80\x1f\x7f\"\\"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := PlainPrefix(b), plainPrefixBytes(b); got != want {
			t.Fatalf("PlainPrefix(%q) = %d, want %d", b, got, want)
		}
		want := 0
		for want < len(b) && b[want] != '"' && b[want] != '\\' && b[want] >= 0x20 && b[want] < 0x80 {
			want++
		}
		if got := PlainASCIIPrefix(b); got != want {
			t.Fatalf("PlainASCIIPrefix(%q) = %d, want %d", b, got, want)
		}
	})
}

// BenchmarkPlainPrefix scans a 40-byte string body, 8 bytes at a time
// and a byte at a time.
func BenchmarkPlainPrefix(b *testing.B) {
	s := []byte(`https://shop.example.com/products/p-1234"`)
	b.Run("PlainPrefix", func(b *testing.B) {
		for b.Loop() {
			PlainPrefix(s)
		}
	})
	b.Run("bytes", func(b *testing.B) {
		for b.Loop() {
			plainPrefixBytes(s)
		}
	})
}

// BenchmarkAppendString appends a 45-byte URL.
func BenchmarkAppendString(b *testing.B) {
	s := "https://shop.example.com/products/p-1234?ref=x"
	var buf []byte
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}
