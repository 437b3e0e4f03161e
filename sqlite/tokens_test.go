package sqlite

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func tokenHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestAPITokens(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, Options{})
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	crm, crm2, ops := tokenHash("crm"), tokenHash("crm 2"), tokenHash("ops")

	if err := s.AddAPIToken(ctx, "crm", crm, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAPIToken(ctx, "ops", ops, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAPIToken(ctx, "crm", crm2, t0); !errors.Is(err, ErrTokenExists) {
		t.Errorf("second live token named crm: %v, want ErrTokenExists", err)
	}
	if err := s.AddAPIToken(ctx, "other", crm, t0); err == nil || errors.Is(err, ErrTokenExists) {
		t.Errorf("a second token with the same hash: %v, want a constraint error", err)
	}

	name, revoked, used, ok, err := s.APIToken(ctx, crm)
	if err != nil || !ok || name != "crm" || revoked || !used.IsZero() {
		t.Fatalf("APIToken(crm) = %q %v %v %v %v", name, revoked, used, ok, err)
	}
	for _, h := range []string{tokenHash("unknown"), "", "x", strings.Repeat("G", 64), strings.ToUpper(crm)} {
		if _, _, _, ok, err := s.APIToken(ctx, h); ok || err != nil {
			t.Errorf("APIToken(%q) = %v, %v; want not found", h, ok, err)
		}
	}

	if err := s.TouchAPIToken(ctx, crm, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, used, _, _ := s.APIToken(ctx, crm); !used.Equal(t0.Add(time.Hour)) {
		t.Errorf("used after touch = %v", used)
	}

	// Revoked: still found, marked revoked; the name is free again.
	if err := s.RevokeAPIToken(ctx, "crm", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIToken(ctx, "crm", t0.Add(2*time.Hour)); !errors.Is(err, ErrNoToken) {
		t.Errorf("revoke twice: %v, want ErrNoToken", err)
	}
	if err := s.RevokeAPIToken(ctx, "nobody", t0); !errors.Is(err, ErrNoToken) {
		t.Errorf("revoke unknown: %v, want ErrNoToken", err)
	}
	if name, revoked, _, ok, err := s.APIToken(ctx, crm); err != nil || !ok || !revoked || name != "crm" {
		t.Errorf("APIToken(revoked crm) = %q %v %v %v", name, revoked, ok, err)
	}
	if err := s.AddAPIToken(ctx, "crm", crm2, t0.Add(3*time.Hour)); err != nil {
		t.Errorf("new crm after revoking the old: %v", err)
	}

	list, err := s.APITokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []APIToken{
		{Name: "crm", Created: t0, Used: t0.Add(time.Hour), Revoked: t0.Add(2 * time.Hour)},
		{Name: "crm", Created: t0.Add(3 * time.Hour)},
		{Name: "ops", Created: t0.Add(time.Minute)},
	}
	if len(list) != len(want) {
		t.Fatalf("APITokens = %+v", list)
	}
	for i := range want {
		g, w := list[i], want[i]
		if g.Name != w.Name || !g.Created.Equal(w.Created) || !g.Used.Equal(w.Used) || !g.Revoked.Equal(w.Revoked) {
			t.Errorf("APITokens[%d] = %+v, want %+v", i, g, w)
		}
	}
}

func TestAPITokenInput(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, Options{})
	for _, tc := range []struct{ name, hash, msg string }{
		{"", tokenHash("a"), "empty name"},
		{"a", "short", "want 64 hex digits"},
		{"a", strings.ToUpper(tokenHash("a")), "not lower-case hex"},
	} {
		if err := s.AddAPIToken(ctx, tc.name, tc.hash, time.Now()); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("AddAPIToken(%q, %q) = %v, want %q", tc.name, tc.hash, err, tc.msg)
		}
	}
}
