package app

import (
	"strings"
	"testing"
)

func TestAdminToken(t *testing.T) {
	tests := []struct {
		configured string
		wantErr    string
	}{
		{configured: "", wantErr: ""}, // generated for the run
		{configured: "0123456789abcdef", wantErr: ""},
		{configured: "0123456789abcde", wantErr: "admin.token: must be at least 16 characters, got 15"},
		{configured: "change-me", wantErr: "got 9"},
	}
	for _, tc := range tests {
		got, err := adminToken(tc.configured)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.configured, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want %q", tc.configured, err, tc.wantErr)
		case tc.wantErr != "" && strings.Contains(err.Error(), tc.configured):
			t.Errorf("%q: the error shows the token: %v", tc.configured, err)
		case err == nil && len(got) < minAdminTokenLen:
			t.Errorf("%q: token %d characters", tc.configured, len(got))
		}
	}
}
