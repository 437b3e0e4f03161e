package sqlite

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/posthorn/posthorn/settings"
)

// TestSaveSettingsAllOrNothing: an import of both maps changes both or
// neither, whether the second part is refused by validation or its write
// fails in the database.
func TestSaveSettingsAllOrNothing(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	ew := settings.Default()
	ew.Endpoint, ew.Deliveries = "https://hook.example/one", true
	in := settings.Inbound{Domains: []string{"shop.example"},
		Filters: []settings.InboundFilter{settings.NewInboundFilter("f", "https://hook.example/in", settings.Condition{Header: "To", Pattern: "^a@"})}}
	if err := s.SaveSettings(ctx, &ew, &in, false); err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		gotEW, _, err1 := s.EventWebhookSettings(ctx)
		gotIn, _, err2 := s.InboundSettings(ctx)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if gotEW != ew || !reflect.DeepEqual(gotIn, in) {
			t.Errorf("%s changed the settings: %v / %v", what, gotEW, gotIn)
		}
	}

	ew2 := ew
	ew2.Endpoint = "https://hook.example/two"
	bad := in
	bad.Domains = []string{"not a domain"}
	err := s.SaveSettings(ctx, &ew2, &bad, false)
	var ie settings.InboundErrors
	if !errors.As(err, &ie) || ie["domains[0]"] == "" {
		t.Errorf("invalid inbound part: %v", err)
	}
	unchanged("a refused inbound part")

	// A write that fails after the first row: the transaction is undone.
	if _, err := s.w.Exec(`CREATE TRIGGER refuse_inbound BEFORE INSERT ON settings WHEN NEW.name = 'inbound'
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(`DELETE FROM settings WHERE name = 'inbound'`); err != nil {
		t.Fatal(err)
	}
	in = settings.Inbound{} // what reads back with the row gone
	err = s.SaveSettings(ctx, &ew2, &settings.Inbound{Domains: []string{"other.example"}}, false)
	if err == nil || !strings.Contains(err.Error(), "refused by the test") {
		t.Errorf("failing write: %v", err)
	}
	unchanged("a failed inbound write")
	if _, err := s.w.Exec(`DROP TRIGGER refuse_inbound`); err != nil {
		t.Fatal(err)
	}

	// Either part alone leaves the other as it is.
	if err := s.SaveSettings(ctx, &ew2, nil, false); err != nil {
		t.Fatal(err)
	}
	ew = ew2
	unchanged("saving the event webhook alone")
	if err := s.SaveSettings(ctx, nil, nil, false); err != nil {
		t.Errorf("nothing to save: %v", err)
	}
}
