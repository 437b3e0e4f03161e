package ui

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/posthorn/posthorn/settings"
)

// secretInput is one secret field of a settings form. The page says "set"
// only for what is stored. A value typed into a form that is shown again
// (an error, "+" in the filter form) is never echoed: it travels sealed in
// a hidden field, the page says "entered, not saved yet", and the next
// submit uses it when the field is left empty.
type secretInput struct {
	Field    string
	Stored   bool   // a value is saved
	Sealed   string // a value typed but not saved yet, sealed (sealSecret)
	Clear    bool   // "Remove" is ticked
	Generate bool   // "generate" is ticked (signing secrets)
}

// newSealer makes the AEAD of sealed form values. Its key lives in this
// process only: a sealed value is a secret's way through one re-rendered
// form, so a restart losing it only asks for the value again.
func newSealer() cipher.AEAD {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand documentation, Go 1.24+)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// sealAD binds a sealed value to its form, field and session (through the
// session's form token), so that it cannot be replayed into another
// field, another form or by another user.
func sealAD(ctx context.Context, form, field string) []byte {
	return []byte("posthorn sealed secret\x00" + form + "\x00" + field + "\x00" + infoFrom(ctx).csrf)
}

func (s *Server) sealSecret(ctx context.Context, form, field, value string) string {
	nonce := make([]byte, s.sealer.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.sealer.Seal(nonce, nonce, []byte(value), sealAD(ctx, form, field)))
}

// openSecret returns the value sealSecret sealed; ok is false for anything
// else (tampered, another session, a restarted server).
func (s *Server) openSecret(ctx context.Context, form, field, sealed string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	n := s.sealer.NonceSize()
	if err != nil || len(b) < n+s.sealer.Overhead() {
		return "", false
	}
	plain, err := s.sealer.Open(nil, b[:n], b[n:], sealAD(ctx, form, field))
	if err != nil || len(plain) == 0 {
		return "", false
	}
	return string(plain), true
}

// readSecret decides a secret field's value from a posted form: "Remove"
// clears it; a typed value replaces it (the Basic password only when its
// confirmation matches); else a value typed before the form was shown
// again; else the stored one stays. Problems go into errs under field.
func (s *Server) readSecret(ctx context.Context, form url.Values, formName, field string, stored settings.Secret, errs map[string]string) (settings.Secret, *secretInput) {
	in := &secretInput{Field: field, Stored: stored != ""}
	typed := form.Get(field)
	if field != "basic_password" {
		typed = strings.TrimSpace(typed)
	}
	switch {
	case form.Get(field+"_clear") != "":
		in.Clear = true
		return "", in
	case typed != "":
		if field == "basic_password" && typed != form.Get("basic_password_confirm") {
			// Not kept: which of the two was meant is for the user to say.
			errs[field] = tr(ctx, "err.mismatch")
			return settings.Secret(typed), in
		}
		in.Sealed = s.sealSecret(ctx, formName, field, typed)
		return settings.Secret(typed), in
	case form.Get(field+"_sealed") != "":
		plain, ok := s.openSecret(ctx, formName, field, form.Get(field+"_sealed"))
		if !ok {
			errs[field] = tr(ctx, "err.sealed")
			return stored, in
		}
		in.Sealed = form.Get(field + "_sealed")
		return settings.Secret(plain), in
	}
	return stored, in
}

// readSigningSecret is readSecret with "generate": a generated secret is
// made for the save only; the page shows it after it was stored, never on
// a form shown again, which keeps the tick instead.
func (s *Server) readSigningSecret(ctx context.Context, form url.Values, formName string, stored settings.Secret, errs map[string]string) (value settings.Secret, in *secretInput, generated bool) {
	if form.Get("signing_secret_generate") != "" {
		return settings.NewSigningSecret(), &secretInput{Field: "signing_secret", Stored: stored != "", Generate: true}, true
	}
	value, in = s.readSecret(ctx, form, formName, "signing_secret", stored, errs)
	return value, in, false
}

// secretErrs keeps only the secret fields' errors, for a form shown again
// without validating it ("+").
func secretErrs(errs map[string]string) map[string]string {
	out := map[string]string{}
	for _, f := range []string{"basic_password", "api_key", "signing_secret"} {
		if m, ok := errs[f]; ok {
			out[f] = m
		}
	}
	return out
}
