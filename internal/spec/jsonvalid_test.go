package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var validSeeds = []string{
	``, ` `, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e`, `1e+`, `1E-7`, `1e07`, `-1.5e3`, `+1`, `0x1`,
	`"`, `""`, `"a\"b"`, `"\u00e9"`, `"\u00e"`, `"\u00eG"`, `"\x"`, `"\/"`, "\"\x01\"", "\"\x7f\"", "\"\xff\xfe\"",
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `nulll`,
	`{}`, `{ }`, `{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":}`, `{"a":1 "b":2}`, `{,}`, `{"a":1}}`,
	`[]`, `[ ]`, `[1,]`, `[,1]`, `[1 2]`, `[1,[2,[3]]]`, `]`, `[`, `[}`, `{]`,
	" \t\r\n[1] \n", "[1]\f", `1 2`, `{"a":[1,{"b":null}],"s":"é"}`,
	strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting),
	strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1),
	strings.Repeat(`{"a":`, maxNesting) + "1" + strings.Repeat("}", maxNesting),
	strings.Repeat(`{"a":`, maxNesting+1) + "1" + strings.Repeat("}", maxNesting+1),
}

func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range validSeeds {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid says %v", s, got, want)
		}
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "wire", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !validJSON(b) {
			t.Errorf("%s: valid JSON refused", name)
		}
		for _, cut := range []int{1, len(b) / 2, len(b) - 1} {
			if got, want := validJSON(b[:cut]), json.Valid(b[:cut]); got != want {
				t.Errorf("%s cut at %d: validJSON %v, json.Valid %v", name, cut, got, want)
			}
		}
	}
}

// FuzzValidJSON holds validJSON to json.Valid on any input.
func FuzzValidJSON(f *testing.F) {
	for _, s := range append(validSeeds[:len(validSeeds)-4], splitSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join("testdata", "wire", "*.json"))
	var body []byte
	for _, name := range files {
		c, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		if len(c) > len(body) {
			body = c
		}
	}
	for _, impl := range []struct {
		name  string
		valid func([]byte) bool
	}{{"validJSON", validJSON}, {"json.Valid", json.Valid}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !impl.valid(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
