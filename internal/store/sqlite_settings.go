package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// DestSettings implements SettingsStore (dialect.go).
func (s *SQLite) DestSettings(ctx context.Context, dest string) (DestSettings, error) {
	return destSettings(ctx, sqliteDialect{s.r}, dest)
}

// ListDestSettings implements SettingsStore (dialect.go).
func (s *SQLite) ListDestSettings(ctx context.Context) ([]DestSettings, error) {
	return listDestSettings(ctx, sqliteDialect{s.r})
}

// PutDestSettings implements SettingsStore.
func (s *SQLite) PutDestSettings(ctx context.Context, dest string, settings json.RawMessage, ifVersion int64) (DestSettings, error) {
	if err := checkSettings(dest, settings, ifVersion); err != nil {
		return DestSettings{}, fmt.Errorf("save settings: %w", err)
	}
	d := DestSettings{Dest: dest, Settings: append(json.RawMessage(nil), settings...), UpdatedAt: fromNanos(s.now().UnixNano())}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var cur int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM dest_settings WHERE dest = ?`, dest).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if ifVersion != AnyVersion && ifVersion != cur {
			return fmt.Errorf("stored version is %d, not %d: %w", cur, ifVersion, ErrVersionConflict)
		}
		d.Version = cur + 1
		_, err = tx.ExecContext(ctx, `
INSERT INTO dest_settings (dest, settings, version, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (dest) DO UPDATE SET settings = excluded.settings, version = excluded.version, updated_at = excluded.updated_at`,
			dest, string(settings), d.Version, toNanos(d.UpdatedAt))
		return err
	})
	if err != nil {
		return DestSettings{}, fmt.Errorf("save settings of destination %q: %w", dest, err)
	}
	return d, nil
}

func checkSettings(dest string, settings json.RawMessage, ifVersion int64) error {
	if err := checkName("destination", dest); err != nil {
		return err
	}
	// The error names no content: settings hold API keys.
	if len(settings) == 0 || !json.Valid(settings) {
		return fmt.Errorf("settings of destination %q are not valid JSON: %w", dest, ErrInvalid)
	}
	if ifVersion < AnyVersion {
		return fmt.Errorf("settings of destination %q: version %d is negative: %w", dest, ifVersion, ErrInvalid)
	}
	return nil
}
