package ui

import (
	"strings"
	"testing"
)

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse battery", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q is not in the PHC format", h)
	}
	h2, _ := HashPassword("correct horse battery", cheap)
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batter": false, "": false} {
		if ok, err := VerifyPassword(h, pw); ok != want || err != nil {
			t.Errorf("VerifyPassword(%q) = %v %v, want %v", pw, ok, err, want)
		}
	}
	// RFC 9106 test vectors are for the raw function; check at least that
	// stored parameters are the ones used, not the defaults.
	def, err := HashPassword("x", PasswordParams{Time: 2, MemoryKiB: 128, Threads: 2})
	if err != nil || !strings.Contains(def, "$m=128,t=2,p=2$") {
		t.Fatalf("hash with other parameters: %q %v", def, err)
	}
	if ok, _ := VerifyPassword(def, "x"); !ok {
		t.Error("hash with other parameters does not verify")
	}

	for _, bad := range []string{
		"",
		"plain",
		"$2a$10$abcdefghijklmnopqrstuu", // bcrypt
		"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // not id
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 95 GiB
		"$argon2id$v=19$m=64,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=255$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,x=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA", // tag too short
	} {
		if ok, err := VerifyPassword(bad, "x"); ok || err == nil {
			t.Errorf("VerifyPassword accepted hash %q", bad)
		}
	}
	for _, p := range []PasswordParams{{}, {Time: 1, MemoryKiB: 4, Threads: 1}, {Time: 1, MemoryKiB: 2 << 20, Threads: 1}, {Time: 99, MemoryKiB: 64, Threads: 1}} {
		if _, err := HashPassword("x", p); err == nil {
			t.Errorf("HashPassword accepted parameters %+v", p)
		}
	}
}

func TestCheckPasswordAndName(t *testing.T) {
	for pw, ok := range map[string]bool{
		"long enough pw": true,
		"パスワードはこれで十分な長さです": true,
		"short":                   false,
		"ten chars\x00":           false,
		strings.Repeat("a", 1025): false,
		"\xff\xfe invalid utf8":   false,
	} {
		if err := CheckPassword(pw); (err == nil) != ok {
			t.Errorf("CheckPassword(%q) = %v", pw, err)
		}
	}
	for name, ok := range map[string]bool{
		"alice": true, "admin@example.org": true, "管理者": true,
		"": false, "two words": false, "tab\tname": false, strings.Repeat("n", 65): false,
	} {
		if err := CheckUserName(name); (err == nil) != ok {
			t.Errorf("CheckUserName(%q) = %v", name, err)
		}
	}
}
