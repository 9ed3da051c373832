package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDeletionKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(path, []byte("admin: { token: adm, deletionKey: dk_file }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, envOf(nil))
	if err != nil || cfg.Admin.DeletionKey != "dk_file" || cfg.Admin.Token != "adm" {
		t.Fatalf("file: %+v, %v", cfg.Admin, err)
	}
	cfg, err = Load(path, envOf(map[string]string{"RELAY_DELETION_KEY": "dk_env"}))
	if err != nil || cfg.Admin.DeletionKey != "dk_env" {
		t.Fatalf("env: %+v, %v", cfg.Admin, err)
	}
}
