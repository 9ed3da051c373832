package readiness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// probeSize is enough to need a fresh block on the data dir's file
// system, so a full disk fails the probe as it fails the queue's writes.
const probeSize = 8 << 10

// WritableDir returns a check that writes, syncs and removes a small file
// in dir: a full or read-only disk fails it the way it fails every queue
// write, without touching the queue's own files.
func WritableDir(dir string) func(ctx context.Context) error {
	return func(context.Context) error {
		f, err := os.CreateTemp(dir, ".ready-probe-*")
		if err != nil {
			return fmt.Errorf("data dir not writable: %w", err)
		}
		name := f.Name()
		defer os.Remove(name)
		_, err = f.Write(make([]byte, probeSize))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("data dir %s not writable: %w", filepath.Base(dir), err)
		}
		return nil
	}
}
