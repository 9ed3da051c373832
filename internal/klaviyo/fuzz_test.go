package klaviyo

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/relaycdp/relay/internal/spec"
)

// FuzzTransform runs arbitrary input through TransformOutput (what `relay
// transform` prints and exits with) with default settings and with every
// option on: it never panics; exit 2 comes with an error wrapping
// spec.ErrMalformed and no output; otherwise the output is a valid JSON
// array with one element per event, each element is exactly one of error
// or requests, and the exit code is 1 exactly when an element has an error.
// Run it with: go test ./internal/klaviyo -run '^$' -fuzz FuzzTransform -fuzztime 20s
func FuzzTransform(f *testing.F) {
	for _, path := range goldenFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		var gc goldenCase
		if err := json.Unmarshal(data, &gc); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(gc.Input))
	}
	f.Add([]byte(`{"type":"track","event":"Order Completed","userId":"u","properties":{"products":[{"id":1e400}]}}`))
	f.Add([]byte(`{"type":"identify","anonymousId":"a","traits":{"phone":"+1","address":"x","company":{"name":3}}}`))
	f.Add([]byte(`[{"type":"group","groupId":"g","traits":{"subscribe":true},"context":{"traits":{"email":"a@b","phone":"\u0000"}}}]`))

	all := DefaultSettings()
	all.ListID, all.PublicAPIKey, all.ListMode = "L1", "PK", ListModeAdd
	all.Consent, all.SMSConsent, all.ConfirmOptin = []string{"email", "sms", "web"}, true, false
	all.EnforceEmailAsPrimary, all.FallbackOnAnonymousID = true, true
	all.SendPageAsTrack, all.AdditionalPageInfo, all.FlattenProperties = true, true, true
	all.DefaultPhoneCountry, all.StrictPhone = "US", true
	all.EventNameMap = map[string]string{"Placed Order": "P", "Clicked": "C"}
	all.PrivateAPIKey = "pk_fuzz"
	publicOnly, _ := PresetSettings(CompatRudderStack)
	publicOnly.PublicAPIKey, publicOnly.ListID = "PK", "L1"
	settings := []Settings{DefaultSettings(), all, publicOnly}

	f.Fuzz(func(t *testing.T, body []byte) {
		for _, s := range settings {
			out, code, err := TransformOutput(body, spec.Options{MaxEventBytes: 32768}, s)
			if code == ExitBadInput {
				if err == nil || out != nil {
					t.Fatalf("exit 2 with err %v and %d bytes of output", err, len(out))
				}
				if !errors.Is(err, spec.ErrMalformed) {
					t.Fatalf("error does not wrap spec.ErrMalformed: %v", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("exit %d with error %v", code, err)
			}
			var arr []map[string]json.RawMessage
			if err := json.Unmarshal(out, &arr); err != nil {
				t.Fatalf("output is not a JSON array: %v\n%s", err, out)
			}
			outs, err := Transform(body, spec.Options{MaxEventBytes: 32768}, s)
			if err != nil || len(arr) != len(outs) {
				t.Fatalf("%d elements for %d events (%v)", len(arr), len(outs), err)
			}
			anyErr := false
			for i, el := range arr {
				_, hasErr := el["error"]
				_, hasReq := el["requests"]
				if hasErr == hasReq {
					t.Fatalf("element %d has error=%v requests=%v: %s", i, hasErr, hasReq, out)
				}
				_, hasFailures := el["failures"]
				anyErr = anyErr || hasErr || hasFailures
			}
			if anyErr != (code == ExitEventErr) {
				t.Fatalf("exit %d, output errors = %v", code, anyErr)
			}
		}
	})
}

// FuzzMap builds events field by field (so the fuzzer reaches the mapping
// with odd identifiers, names, values and traits rather than mostly
// invalid JSON) and checks that Map never panics, that every error is a
// *MapError naming a field, and that every request renders as valid JSON
// with no anonymous_id in profile imports.
func FuzzMap(f *testing.F) {
	f.Add("track", "Order Completed", "u1", "", "a@b.co", "+14155552671",
		`{"order_id":"o","revenue":"12.5","products":[{"sku":"s","price":2,"quantity":"3"}]}`, `{"listId":"L","subscribe":true}`)
	f.Add("identify", "", "", "anon", "", "415 555 2671", `{}`, `{"consent":["sms","web"],"smsConsent":true}`)
	f.Add("group", "", "u", "", "x@y.z", "", `{"subscribe":false}`, `{"fieldsToUnset":["a"],"fieldsToAppend":{"b":1}}`)
	f.Add("page", "Home", "u", "a", "", "", `{"category":"Docs","nested":{"a":{"b":null}}}`, `{}`)
	f.Add("screen", "S", "", "", "", "1-800", `{"total":true}`, `{"listId":3}`)
	f.Add("identify", "", "u", "", "a@b.co", "020 7946 0958", `{"removeFromList":true,"listId":"L"}`, `{"phoneCountry":"GB","removeFromList":"L2"}`)
	f.Add("track", "Checkout Started", "", "a", "x@gmail..com", "", `{"products":[{"productId":"p"}],"phone_number":"+14155552671"}`, `{"removeFromList":1}`)
	all := DefaultSettings()
	all.ListID, all.PublicAPIKey, all.ListMode, all.SMSConsent, all.ConfirmOptin = "L1", "PK", ListModeAdd, true, false
	all.EnforceEmailAsPrimary, all.FallbackOnAnonymousID, all.SendPageAsTrack, all.AdditionalPageInfo = true, true, true, true
	all.FlattenProperties, all.DefaultPhoneCountry = true, "GB"
	settings := []Settings{DefaultSettings(), all}
	f.Fuzz(func(t *testing.T, typ, name, userID, anonID, email, phone, props, opts string) {
		var p, o map[string]any
		_ = json.Unmarshal([]byte(props), &p)
		_ = json.Unmarshal([]byte(opts), &o)
		ev := &spec.Event{Type: typ, MessageID: "m", UserID: userID, AnonymousID: anonID, Event: name, Name: name,
			GroupID: name, Properties: p, Traits: map[string]any{"email": email, "phone": phone, "properties": o},
			Context:      map[string]any{"traits": map[string]any{"email": email, "phone": phone, "subscribe": o["subscribe"]}, "page": p},
			Integrations: map[string]any{"Klaviyo": o}}
		if p != nil {
			for k, v := range p {
				ev.Traits[k] = v
			}
		}
		for _, s := range settings {
			res, err := Map(ev, s)
			if err != nil {
				var me *MapError
				if !errors.As(err, &me) || me.Message == "" {
					t.Fatalf("error %T %v is not a *MapError with a message", err, err)
				}
				continue
			}
			for _, op := range res.Ops {
				r := op.Request(s)
				b, err := json.Marshal(r.Body)
				if err != nil || !json.Valid(b) {
					t.Fatalf("%s body: %v %s", op.Kind, err, b)
				}
				if r.Path == "/api/profile-import" {
					var doc any
					_ = json.Unmarshal(b, &doc)
					if _, has := dig(doc, "data", "attributes").(map[string]any)["anonymous_id"]; has {
						t.Fatalf("profile-import with anonymous_id: %s", b)
					}
				}
			}
		}
	})
}
