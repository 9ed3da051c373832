package spec

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var splitSeeds = []string{
	`{}`, `[]`, ` { "a" : 1 , "b":[1,{"c":"]}"}], "d":"\"}", "e":null,"f":true,"g":-1.5e3 } `,
	`[1, "x", {"a":[]}, [[]], null, false, "\\"]`,
	`{"type":"track","type":"identify"}`, `{"\u0074ype":"x","a\\b":1}`,
	`{"a":{"b":{"c":[1,2,{"d":"}"}]}}}`, "{\"a\xff\":\"\xfe\"}", `[`, `{"a":`, `{"a" 1}`, `["\`,
}

// TestSplitMatchesEncodingJSON checks the splitter against encoding/json on
// the seeds; FuzzSplit does the same on generated input.
func TestSplitMatchesEncodingJSON(t *testing.T) {
	for _, s := range splitSeeds {
		checkSplit(t, []byte(s))
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkSplit(t, b) })
}

// checkSplit: on valid JSON the splitter must cut exactly the spans that
// encoding/json's RawMessage does; on anything else it must not panic.
func checkSplit(t *testing.T, b []byte) {
	t.Helper()
	b = bytes.TrimLeft(b, " \t\r\n")
	if !json.Valid(b) {
		if len(b) > 0 && (b[0] == '{' || b[0] == '[') {
			_ = rawMembers(b)
			it := newArrIter(b)
			for _, ok := it.next(); ok; _, ok = it.next() {
			}
			_ = splitFields(b)
		}
		_ = skipValue(b, 0)
		return
	}
	if end := skipValue(b, 0); len(bytes.TrimSpace(b[end:])) != 0 {
		t.Fatalf("skipValue(%q) stopped at %d, before the end of the value", b, end)
	}
	switch b[0] {
	case '{':
		var want map[string]json.RawMessage
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got := rawMembers(b)
		if d := cmp.Diff(asStrings(want), asStrings(got)); d != "" {
			t.Fatalf("rawMembers(%q) (-encoding/json +ours):\n%s", b, d)
		}
	case '[':
		var want []json.RawMessage
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		var got []string
		it := newArrIter(b)
		for v, ok := it.next(); ok; v, ok = it.next() {
			got = append(got, string(v))
		}
		var ws []string
		for _, v := range want {
			ws = append(ws, string(v))
		}
		if d := cmp.Diff(ws, got); d != "" {
			t.Fatalf("arrIter(%q) (-encoding/json +ours):\n%s", b, d)
		}
	}
}

func asStrings[V ~[]byte](m map[string]V) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}
