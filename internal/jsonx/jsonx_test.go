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
