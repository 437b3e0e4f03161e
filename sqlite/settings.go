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
	return s.SaveSettings(ctx, &ew, nil, allowHTTP)
}

// SaveSettings saves the Event Webhook's and the Inbound Webhook's
// settings together — `posthorn settings import` of a document with both
// maps — all or nothing: both are validated first (the inbound ones
// normalized as SaveInboundSettings does), and both rows are written in one
// transaction, so a refused or failed save changes neither. A nil part is
// left as it is. allowHTTP is the daemon config's allow_insecure_http.
func (s *Store) SaveSettings(ctx context.Context, ew *settings.EventWebhook, in *settings.Inbound, allowHTTP bool) error {
	type row struct{ name, value string }
	var rows []row
	if ew != nil {
		if err := ew.Validate(allowHTTP); err != nil {
			return fmt.Errorf("save event webhook settings: %w", err)
		}
		value, err := json.Marshal(ew)
		if err != nil {
			return fmt.Errorf("save event webhook settings: %w", err)
		}
		rows = append(rows, row{settingEventWebhook, string(value)})
	}
	if in != nil {
		n := in.Normalized()
		if err := n.Validate(allowHTTP); err != nil {
			return fmt.Errorf("save inbound settings: %w", err)
		}
		value, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("save inbound settings: %w", err)
		}
		rows = append(rows, row{settingInbound, string(value)})
	}
	if len(rows) == 0 {
		return nil
	}
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
				r.name, r.value, s.now().UnixNano()); err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}
