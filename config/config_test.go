package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func golden(path string) string {
	return strings.TrimSuffix(path, ".toml") + ".golden"
}

func testFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in testdata/%s: %v", dir, err)
	}
	return files
}

// TestValid loads each valid file and compares the result, as JSON, with its
// golden file.
func TestValid(t *testing.T) {
	for _, path := range testFiles(t, "valid") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(struct {
				Config   *Config
				Location string
			}{c, c.Maillog.Location().String()}, "", "\t")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, golden(path), append(got, '\n'))
		})
	}
}

// TestInvalid loads each invalid file and compares the error text with its
// golden file.
func TestInvalid(t *testing.T) {
	for _, path := range testFiles(t, "invalid") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := Load(path)
			if err == nil {
				t.Fatalf("loaded without error: %+v", c)
			}
			if c != nil {
				t.Errorf("got a config along with the error")
			}
			// Every problem is an *Error naming the file and a line.
			for _, e := range unjoin(err) {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != path || ce.Line == 0 {
					t.Errorf("problem without file and line: %v", e)
				}
			}
			checkGolden(t, golden(path), []byte(err.Error()+"\n"))
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, make([]byte, maxSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.toml")
	tests := []struct {
		path string
		want string
		is   error
	}{
		{missing, "read config: open " + missing + ": no such file or directory", fs.ErrNotExist},
		{dir, "read config: " + dir + " is a directory, not a file", nil},
		{big, "read config: " + big + " is larger than 65536 bytes", nil},
	}
	for _, tt := range tests {
		_, err := Load(tt.path)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Load(%q) = %v, want %q", tt.path, err, tt.want)
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("Load(%q) = %v, want errors.Is %v", tt.path, err, tt.is)
		}
	}
}

// An empty file is the default configuration, and the defaults are valid.
func TestEmptyIsDefault(t *testing.T) {
	got, err := Parse("empty.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	if want.Hostname == "" {
		t.Fatal("Default() has no host name")
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Maillog{})); diff != "" {
		t.Errorf("(-Default +Parse):\n%s", diff)
	}
	if got.Maillog.Location() != time.Local {
		t.Errorf("Location() = %v, want time.Local", got.Maillog.Location())
	}
}

func TestHostnameDefaults(t *testing.T) {
	system, err := os.Hostname()
	if err != nil {
		t.Skip("no system host name:", err)
	}
	tests := []struct {
		doc, host, comp string
	}{
		{``, system, system},
		{`hostname = ""`, system, system},
		{`hostname = "mx1.example.org"`, "mx1.example.org", "mx1.example.org"},
		{`server_composition = "eu"`, system, "eu"},
		{"hostname = \"mx1\"\nserver_composition = \"eu\"", "mx1", "eu"},
	}
	for _, tt := range tests {
		c, err := Parse("t.toml", []byte(tt.doc))
		if err != nil {
			t.Errorf("%q: %v", tt.doc, err)
			continue
		}
		if c.Hostname != tt.host || c.ServerComposition != tt.comp {
			t.Errorf("%q: hostname %q, server_composition %q; want %q, %q", tt.doc, c.Hostname, c.ServerComposition, tt.host, tt.comp)
		}
	}
}

// With journald, the default path is cleared so that consumers need only
// look at Journald.
func TestJournaldClearsPath(t *testing.T) {
	c, err := Parse("t.toml", []byte("[maillog]\njournald = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Maillog.Journald || c.Maillog.Path != "" {
		t.Errorf("journald %v, path %q; want true, empty", c.Maillog.Journald, c.Maillog.Path)
	}
}

func TestErrorFields(t *testing.T) {
	_, err := Parse("posthorn.toml", []byte("# comment\n\n[maillog]\nstart = \"middle\"\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an *Error", err)
	}
	want := &Error{File: "posthorn.toml", Line: 4, Key: "maillog.start", Msg: `must be "begin" or "end", got "middle"`}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := e.Error(); got != `posthorn.toml:4: maillog.start: must be "begin" or "end", got "middle"` {
		t.Errorf("Error() = %q", got)
	}
}

// Arbitrary input must produce a config or errors, never a panic, and every
// error must carry a line.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.toml"))
		for _, path := range files {
			data, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c, err)
		}
		for _, e := range unjoin(err) {
			var ce *Error
			if err != nil && (!errors.As(e, &ce) || ce.Line == 0) {
				t.Errorf("problem without a line: %v", e)
			}
		}
	})
}
