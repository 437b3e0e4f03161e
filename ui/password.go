package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are the argon2id cost parameters of new password hashes.
// Stored hashes carry their own parameters, so changing these affects only
// hashes made afterwards.
type PasswordParams struct {
	Time      uint32 // passes over the memory
	MemoryKiB uint32
	Threads   uint8
}

// DefaultPasswordParams is RFC 9106 §4's second recommended option (t=3,
// 64 MiB, 4 lanes), for machines where 2 GiB per login is too much. It
// takes about 0.2 s on one core of a 2025 server.
var DefaultPasswordParams = PasswordParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}

// Salt and tag sizes recommended by RFC 9106 §3.1 (salt 128 bits) and §4
// (tag 256 bits).
const (
	saltLen = 16
	keyLen  = 32
)

// Limits on what a stored hash may ask for, so a damaged or hostile row
// cannot make one login allocate gigabytes or loop for minutes.
const (
	maxTime      = 16
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxThreads   = 16
)

// Password length limits: short ones are guessed, and very long ones cost
// hashing time for nothing (argon2 reads every byte).
const (
	MinPasswordLen = 10
	MaxPasswordLen = 1024
)

// HashPassword hashes a password with argon2id and returns it in the PHC
// string format that the reference implementation prints:
// $argon2id$v=19$m=65536,t=3,p=4$<salt>$<tag>, base64 without padding.
func HashPassword(password string, p PasswordParams) (string, error) {
	if p.Time == 0 || p.Time > maxTime || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB ||
		p.Threads == 0 || p.Threads > maxThreads {
		return "", fmt.Errorf("hash password: bad argon2id parameters %+v", p)
	}
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails (crypto/rand documentation, Go 1.24+)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

var errBadHash = errors.New("verify password: stored hash is not an argon2id hash this version can read")

// VerifyPassword reports whether password matches a hash made by
// HashPassword. The comparison takes the same time wherever the first
// difference is.
func VerifyPassword(hash, password string) (bool, error) {
	p, salt, want, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func parseHash(hash string) (PasswordParams, []byte, []byte, error) {
	var p PasswordParams
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, tag
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errBadHash
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, errBadHash
		}
		switch k {
		case "m":
			p.MemoryKiB = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > maxThreads {
				return p, nil, nil, errBadHash
			}
			p.Threads = uint8(n)
		default:
			return p, nil, nil, errBadHash
		}
	}
	if p.Time == 0 || p.Time > maxTime || p.MemoryKiB == 0 || p.MemoryKiB > maxMemoryKiB || p.Threads == 0 {
		return p, nil, nil, errBadHash
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}

// CheckPassword says what is wrong with a new password, or returns nil.
func CheckPassword(password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return errors.New("password is not valid UTF-8")
	case n < MinPasswordLen:
		return fmt.Errorf("password too short: at least %d characters", MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return fmt.Errorf("password too long: at most %d bytes", MaxPasswordLen)
	case strings.ContainsFunc(password, unicode.IsControl):
		return errors.New("password must not contain control characters")
	}
	return nil
}

// MaxUserNameLen bounds user names, which appear in logs and on every page.
const MaxUserNameLen = 64

// CheckUserName says what is wrong with a user name, or returns nil. Names
// are printable and without spaces, so they read unambiguously in logs.
func CheckUserName(name string) error {
	switch {
	case name == "":
		return errors.New("user name is empty")
	case !utf8.ValidString(name):
		return errors.New("user name is not valid UTF-8")
	case len(name) > MaxUserNameLen:
		return fmt.Errorf("user name too long: at most %d bytes", MaxUserNameLen)
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return errors.New("user name must not contain spaces or control characters")
	}
	return nil
}
