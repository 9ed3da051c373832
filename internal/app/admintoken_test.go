package app

import (
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/config"
	"github.com/relaycdp/relay/internal/destination"
)

func TestAdminSecrets(t *testing.T) {
	tests := []struct {
		admin   config.Admin
		wantErr []string
	}{
		{admin: config.Admin{}}, // a token generated for the run, no deletion key
		{admin: config.Admin{Token: "0123456789abcdef", DeletionKey: "dk_0123456789abcd"}},
		{admin: config.Admin{Token: "0123456789abcde"}, wantErr: []string{"admin.token: must be at least 16 characters, got 15"}},
		{admin: config.Admin{Token: "change-me"}, wantErr: []string{"got 9"}},
		{admin: config.Admin{Token: "0123456789abcdef", DeletionKey: "dk_short"}, wantErr: []string{"admin.deletionKey: must be at least 16 characters, got 8"}},
		{admin: config.Admin{Token: "Xq9", DeletionKey: "Zz"}, wantErr: []string{"admin.token:", "admin.deletionKey:"}},
	}
	for _, tc := range tests {
		cfg := config.Default()
		cfg.Admin = tc.admin
		err := checkStart(cfg, mustTypes(t))
		if len(tc.wantErr) == 0 && err != nil {
			t.Errorf("%+v: %v", tc.admin, err)
		}
		for _, want := range tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%+v: error %v, want %q", tc.admin, err, want)
			}
		}
		for _, secret := range []string{tc.admin.Token, tc.admin.DeletionKey} {
			if err != nil && secret != "" && strings.Contains(err.Error(), secret) {
				t.Errorf("%+v: the error shows a secret: %v", tc.admin, err)
			}
		}
	}
	if got, err := adminToken(""); err != nil || len(got) < config.MinSecretLen {
		t.Errorf("generated token %d characters, %v", len(got), err)
	}
}

func mustTypes(t *testing.T) *destination.Registry {
	t.Helper()
	types, err := Types()
	if err != nil {
		t.Fatal(err)
	}
	return types
}
