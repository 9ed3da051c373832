package kdest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
)

// Every setting of klaviyo.Settings is described for the console (with a
// description), and every described name and alias is one ParseSettings
// accepts: adding a setting without describing it fails here.
func TestEverySettingDescribed(t *testing.T) {
	fields := Fields()
	if err := destination.CheckFields(fields); err != nil {
		t.Fatal(err)
	}
	described := map[string]bool{}
	for _, f := range fields {
		described[f.Name] = true
		for _, n := range append([]string{f.Name}, f.Aliases...) {
			if _, err := klaviyo.ParseSettings([]byte(`{"` + n + `": null}`)); err != nil {
				t.Errorf("described setting %s: ParseSettings: %v", n, err)
			}
		}
	}
	st := reflect.TypeOf(klaviyo.Settings{})
	for i := range st.NumField() {
		name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" || !st.Field(i).IsExported() {
			continue
		}
		if !described[name] {
			t.Errorf("klaviyo.Settings.%s (%s) has no description in kdest.Fields", st.Field(i).Name, name)
		}
	}
}

func TestTypeRegisters(t *testing.T) {
	r, err := destination.NewRegistry(Type())
	if err != nil {
		t.Fatal(err)
	}
	typ, ok := r.Lookup("Klaviyo")
	if !ok {
		t.Fatal("klaviyo not found")
	}
	_, err = typ.Parse([]byte(`{"listMode":"x","defaultPhoneCountry":"ZZ"}`))
	ses := destination.SettingsErrors(err)
	if len(ses) != 2 || ses[0].Setting != "listMode" || !strings.HasPrefix(err.Error(), "klaviyo setting ") {
		t.Errorf("Parse errors = %v (%d named)", err, len(ses))
	}
	s, err := typ.Parse([]byte(`{"privateKey":"pk_x","listId":"L1"}`))
	if err != nil || s.(klaviyo.Settings).PrivateAPIKey != "pk_x" {
		t.Errorf("Parse = %+v, %v", s, err)
	}
}

func TestDescribePing(t *testing.T) {
	for _, tc := range []struct {
		err  error
		ok   bool
		want string
	}{
		{nil, true, "Connected: Klaviyo accepted the private key"},
		{&kapi.Error{Status: 401, Errors: []kapi.ErrorObject{{Code: "not_authenticated", Detail: "bad key"}}}, false, "Klaviyo refused the private key with 401 (not_authenticated: bad key)."},
		{&kapi.Error{Status: 429}, false, "rate limiting this key (429); the key itself was accepted"},
		{&kapi.Error{Status: 503}, false, "Klaviyo answered 503."},
		{errors.New("dial tcp: connection refused"), false, "Failed: dial tcp: connection refused"},
	} {
		ok, msg := describePing(tc.err)
		if ok != tc.ok || !strings.Contains(msg, tc.want) {
			t.Errorf("describePing(%v) = %v, %q; want %v, %q", tc.err, ok, msg, tc.ok, tc.want)
		}
	}
}
