package klaviyo

import (
	"strings"
	"testing"
	"unicode"
)

func TestIsEmail(t *testing.T) {
	for s, want := range map[string]bool{
		"user@example.com":        true,
		"first.last+tag@a.b.co":   true,
		"u@sub.domain.museum":     true,
		"u@bücher.de":             true,
		"u@example.xn--p1ai":      true,
		"user@1":                  false, // no dot
		"user@domain.c":           false, // one-letter TLD
		"x@gmail..com":            false, // empty label
		"x@.gmail.com":            false,
		"x@gmail.com.":            false,
		"x@gmail.c0m":             false, // TLD with a digit
		"@example.com":            false,
		"user@":                   false,
		"a@b@c.com":               false,
		"us er@example.com":       false,
		"user-42":                 false,
		"":                        false,
		"user@localhost":          false,
		"user@192.168.0.1":        false, // numeric TLD
		"a,b@example.com":         false,
		"<user@example.com>":      false,
		"user@example.com\n":      false,
		"name@mail.example.co.uk": true,
	} {
		if got := isEmail(s); got != want {
			t.Errorf("isEmail(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzIsEmail checks isEmail against Klaviyo's rule stated independently:
// an accepted address has one @, a domain of non-empty labels with at
// least one dot, and a TLD of two or more letters (or xn--).
func FuzzIsEmail(f *testing.F) {
	for _, s := range []string{"user@example.com", "user@1", "x@gmail..com", "user@domain.c", "a@b.xn--p1ai", "a@b.cd", "@", "a@.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isEmail(s) {
			return
		}
		local, domain, ok := strings.Cut(s, "@")
		if !ok || local == "" || strings.Contains(domain, "@") {
			t.Fatalf("accepted %q: not one @ with a local part", s)
		}
		if strings.ContainsFunc(s, unicode.IsSpace) && strings.ContainsAny(s, " \t\r\n") {
			t.Fatalf("accepted %q with white space", s)
		}
		labels := strings.Split(domain, ".")
		if len(labels) < 2 {
			t.Fatalf("accepted %q: domain without a dot", s)
		}
		for _, l := range labels {
			if l == "" {
				t.Fatalf("accepted %q: empty domain label", s)
			}
		}
		tld := labels[len(labels)-1]
		if strings.HasPrefix(strings.ToLower(tld), "xn--") {
			return
		}
		letters := 0
		for _, r := range tld {
			if !unicode.IsLetter(r) {
				t.Fatalf("accepted %q: TLD %q has a non-letter", s, tld)
			}
			letters++
		}
		if letters < 2 {
			t.Fatalf("accepted %q: TLD %q shorter than two letters", s, tld)
		}
	})
}

// FuzzParseSettings: any document either parses or is a *SettingsError
// (never a panic), and never echoes a value (keys are secrets).
func FuzzParseSettings(f *testing.F) {
	for _, s := range []string{`{"compat":"rudderstack","listMode":"subscribe"}`, `compat: segment`, `{"compat":1}`,
		`{"privateApiKey":"pk_secret","eventFilteringOption":"whitelistedEvents","whitelistedEvents":[{"eventName":"A"}]}`,
		"apiKey: AbC\nprivateKey: pk_secret\n", `{"consent":"sms","customSource":"Shop"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		s, err := ParseSettings([]byte(doc))
		if err != nil {
			// The private key's value never appears in an error (unless
			// the document also uses it as a setting name).
			raw, _ := decodeSettingsDoc([]byte(doc))
			for k, v := range raw {
				str, ok := v.(string)
				if ok && len(str) >= 8 && containsFold([]string{"privateApiKey", "privateKey", "apiSecret"}, k) &&
					strings.Contains(err.Error(), str) && !strings.Contains(keysOf(raw), str) {
					t.Fatalf("error echoes the value of %s: %v", k, err)
				}
			}
			return
		}
		_ = s.Validate()
		_ = s.Warnings()
		if _, ok := presetByName(s.Compat); !ok && s.Validate() == nil {
			t.Fatalf("compat %q validated", s.Compat)
		}
	})
}

func keysOf(m map[string]any) string {
	var b strings.Builder
	for k := range m {
		b.WriteString(k)
		b.WriteByte(0)
	}
	return b.String()
}
