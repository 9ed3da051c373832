package spec

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func unmarshalAny(b []byte) (any, bool) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, false
	}
	return v, true
}

var decodeSeeds = []string{
	`{}`, `[]`, `{"a":1,"b":[true,false,null,"x",-0.5e-3,{"c":{}}],"a":2}`, ` { "k" : "v" } `,
	`{"esc":"a\"b\\c\/d\n\u00e9\ud83d\ude00\ud800x"}`, `{"utf8":"héllo"}`, "{\"bad\":\"\xff\xfe\"}", "\"\xc3\"",
	`{"big":1e400}`, `[1e308, -1e-400, 0, -0, 12345678901234567890]`, `{"k\u0000":"\u2028"}`, `"plain"`, `3`, `null`,
}

func TestDecodeValid(t *testing.T) {
	for _, s := range decodeSeeds {
		if !validJSON([]byte(s)) {
			t.Fatalf("seed %q is not JSON", s)
		}
		got, gotOK := decodeValid([]byte(s))
		want, wantOK := unmarshalAny([]byte(s))
		if gotOK != wantOK || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decodeValid = %#v, %v; json.Unmarshal = %#v, %v", s, got, gotOK, want, wantOK)
		}
	}
}

// FuzzDecodeValid: on every input validJSON accepts, decodeValid gives
// what json.Unmarshal into an `any` gives (and fails where it fails); on
// any other input it does not panic.
func FuzzDecodeValid(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotOK := decodeValid(b)
		if !validJSON(b) {
			return
		}
		want, wantOK := unmarshalAny(b)
		if gotOK != wantOK || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decodeValid = %#v, %v; json.Unmarshal = %#v, %v", b, got, gotOK, want, wantOK)
		}
	})
}

func BenchmarkDecodeObject(b *testing.B) {
	raw := []byte(`{"email":"jane@example.com","firstName":"Jane","lastName":"Doe","phone":"+14155552671","city":"San Francisco",
"country":"US","plan":"pro","logins":17,"products":[{"product_id":"p-1","sku":"SKU-1","price":12.55,"quantity":1,"url":"https://shop.example/p/1"}]}`)
	b.Run("decodeValid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decodeValid(raw)
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			unmarshalAny(raw)
		}
	})
}

// FuzzDecodeObjectKeys: decoding an object keeping some keys (as
// Options.ContextKeys asks) gives json.Unmarshal's map without the other
// keys, and fails where json.Unmarshal fails, whatever the left-out
// values hold; maps lent by a Maps and taken back decode the next object
// as new ones do.
func FuzzDecodeObjectKeys(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s), "a,k")
	}
	f.Add([]byte(`{"traits":{"a":1},"library":{"n":1e400},"ip":"1.2.3.4"}`), "traits,ip")
	f.Add([]byte(`{"tr\u0061its":{"a":1},"page":{"url":"x"},"page":null}`), "traits,page")
	f.Add([]byte(`{"a":[1,{"b":2}],"x":-12e-5,"a":"z"}`), "x")
	var ms Maps
	f.Fuzz(func(t *testing.T, b []byte, keys string) {
		keep := strings.Split(keys, ",")
		ms.Reset()
		got, gotOK := decodeObjectWith(b, &text{src: b}, &ms, keep)
		if !validJSON(b) || b[0] != '{' { // as Parse hands objects over
			return
		}
		want, wantOK := unmarshalAny(b)
		wm, isObj := want.(map[string]any)
		if !isObj {
			if gotOK {
				t.Fatalf("%q is not an object, yet decoded to %#v", b, got)
			}
			return
		}
		maps.DeleteFunc(wm, func(k string, _ any) bool { return !slices.Contains(keep, k) })
		if len(wm) == 0 {
			wm = nil
		}
		if gotOK != wantOK || !reflect.DeepEqual(got, wm) {
			t.Fatalf("%q keeping %q: got %#v, %v; want %#v, %v", b, keep, got, gotOK, wm, wantOK)
		}
		ms.Reset()
		whole, ok := decodeObjectWith(b, nil, &ms, nil)
		all, _ := decodeObject(b)
		if ok != wantOK || !reflect.DeepEqual(whole, all) {
			t.Fatalf("%q with reused maps: %#v, %v; want %#v", b, whole, ok, all)
		}
	})
}
