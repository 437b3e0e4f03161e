package zipaes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/zipaes/zipaestest"
)

// TestEncryptedZipOpensWith7Zip: the archive opens with the real 7-Zip and
// the right password, its content intact, and not with a wrong one.
func TestEncryptedZipOpensWith7Zip(t *testing.T) {
	bin := zipaestest.SevenZip(t)
	var big strings.Builder
	for i := 0; big.Len() < 3<<20; i++ {
		fmt.Fprintf(&big, "2026-03-14T09:30:%02d+09:00,succeeded,山田 <a@example.jp>,orders@shop.example,mx%d,<m%d@x>,orders,\n", i%60, i%7, i)
	}
	for _, c := range []struct {
		name, content, password string
	}{
		{"empty", "", "pw"},
		{"small", "received,status\n", `p@ss "wörd" 日本 `},
		{"large", big.String(), "correct horse battery staple"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			zipPath := filepath.Join(dir, "log.zip")
			f, err := os.Create(zipPath)
			if err != nil {
				t.Fatal(err)
			}
			err = Write(f, "inbound-log.csv", c.password, time.Date(2026, 3, 14, 9, 30, 0, 0, time.Local), func(w io.Writer) error {
				// Written in pieces, as the export writes rows.
				for rest := c.content; rest != ""; {
					n := min(len(rest), 4097)
					if _, err := io.WriteString(w, rest[:n]); err != nil {
						return err
					}
					rest = rest[n:]
				}
				return nil
			})
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			cmd := exec.Command(bin, "x", "-p"+c.password, "-o"+out, zipPath)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("7-Zip cannot extract: %v\n%s", err, msg)
			}
			got, err := os.ReadFile(filepath.Join(out, "inbound-log.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.content {
				t.Errorf("extracted %d bytes, want %d", len(got), len(c.content))
			}
			// 7-Zip's test command checks the authentication code.
			if msg, err := exec.Command(bin, "t", "-p"+c.password, zipPath).CombinedOutput(); err != nil || !bytes.Contains(msg, []byte("Everything is Ok")) {
				t.Errorf("7-Zip test: %v\n%s", err, msg)
			}
			if msg, err := exec.Command(bin, "t", "-pwrong", zipPath).CombinedOutput(); err == nil {
				t.Errorf("7-Zip accepted a wrong password:\n%s", msg)
			}
			// The listing shows AES-256 encryption.
			msg, err := exec.Command(bin, "l", "-slt", "-p"+c.password, zipPath).CombinedOutput()
			if err != nil || !bytes.Contains(msg, []byte("AES-256")) || !bytes.Contains(msg, []byte("Encrypted = +")) {
				t.Errorf("7-Zip listing lacks AES-256 encryption: %v\n%s", err, msg)
			}
		})
	}
}

func TestEncryptedZipErrors(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, "x.csv", "", time.Now(), func(io.Writer) error { return nil }); err == nil {
		t.Error("empty password accepted")
	}
	boom := errors.New("boom")
	if err := Write(&b, "x.csv", "pw", time.Now(), func(io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("fill error = %v", err)
	}
	if tm, dt := dosDateTime(time.Date(2026, 3, 14, 9, 30, 59, 0, time.Local)); tm != 9<<11|30<<5|29 || dt != 46<<9|3<<5|14 {
		t.Errorf("dosDateTime = %#x %#x", tm, dt)
	}
}
