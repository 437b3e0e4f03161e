// Package zipaestest helps tests check AES-256 ZIP files with the real
// 7-Zip, as users open them.
package zipaestest

import (
	"os"
	"os/exec"
	"testing"
)

// SevenZip returns the 7-Zip command: 7z, or 7zz as Debian 12's 7zip
// package calls it. Without one the test is skipped, except in CI
// (.ci/setup installs 7zip), where it fails.
func SevenZip(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"7z", "7zz"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("7-Zip (7z or 7zz) is not installed; .ci/setup installs the Debian package 7zip")
	}
	t.Skip("7-Zip (7z or 7zz) is not installed (Debian package 7zip)")
	return ""
}
