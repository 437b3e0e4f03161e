package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/posthorn/posthorn/settings"
)

// settingEventWebhook is the settings row of the Event Webhook.
const settingEventWebhook = "event_webhook"

// EventWebhookSettings returns the saved Event Webhook settings; ok is
// false (and the settings are settings.Default()) when none were saved.
// A field missing from the stored value keeps its default, so a value
// written by an older version reads as it meant.
func (s *Store) EventWebhookSettings(ctx context.Context) (settings.EventWebhook, bool, error) {
	out := settings.Default()
	var value string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, settingEventWebhook).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return out, false, nil
	}
	if err != nil {
		return out, false, fmt.Errorf("read event webhook settings: %w", err)
	}
	if err := json.Unmarshal([]byte(value), &out); err != nil {
		return settings.Default(), false, fmt.Errorf("read event webhook settings: stored value: %w", err)
	}
	return out, true, nil
}

// SaveEventWebhookSettings validates the settings and saves them; invalid
// settings are refused with the settings.FieldErrors of Validate. Plain
// http:// endpoints are refused here: whether the daemon accepts them is
// its config's allow_insecure_http, which SaveEventWebhookSettingsHTTP
// passes on.
func (s *Store) SaveEventWebhookSettings(ctx context.Context, ew settings.EventWebhook) error {
	return s.SaveEventWebhookSettingsHTTP(ctx, ew, false)
}

// SaveEventWebhookSettingsHTTP is SaveEventWebhookSettings for a daemon
// whose config sets allow_insecure_http.
func (s *Store) SaveEventWebhookSettingsHTTP(ctx context.Context, ew settings.EventWebhook, allowHTTP bool) error {
	if err := ew.Validate(allowHTTP); err != nil {
		return fmt.Errorf("save event webhook settings: %w", err)
	}
	value, err := json.Marshal(ew)
	if err != nil {
		return fmt.Errorf("save event webhook settings: %w", err)
	}
	err = s.write(ctx, false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			settingEventWebhook, string(value), s.now().UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("save event webhook settings: %w", err)
	}
	return nil
}
