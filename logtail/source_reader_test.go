package logtail

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const readerSample = "testdata/source/reader/maillog.txt"

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// readAll reads a source to io.EOF, max lines per Read.
func readAll(t *testing.T, src Source, max int) ([]Line, error) {
	t.Helper()
	var out []Line
	for i := 0; ; i++ {
		buf, err := src.Read(context.Background(), nil, max)
		if len(buf) > max {
			t.Fatalf("Read returned %d lines, max %d", len(buf), max)
		}
		out = append(out, buf...)
		if err != nil {
			return out, err
		}
		if len(buf) == 0 {
			t.Fatalf("Read returned nothing and no error")
		}
	}
}

func TestReaderSource(t *testing.T) {
	sample, err := os.ReadFile(readerSample)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gzNoSuffix := write("maillog.1", gzipped(t, sample))
	gzSuffix := write("maillog.2.gz", gzipped(t, sample))
	// gzip(1) of two files concatenated: RFC 1952 §2.2 allows members in a row.
	multi := write("multi.gz", append(gzipped(t, []byte("first member\nsplit ")), gzipped(t, []byte("across members\n"))...))
	empty := write("empty", nil)
	plainGz := write("plain.gz", []byte("not compressed despite the name\n"))

	tests := []struct {
		name    string
		paths   []string
		stdin   string
		maxLine int
	}{
		{name: "plain", paths: []string{readerSample}},
		{name: "gzip-by-magic", paths: []string{gzNoSuffix}},
		{name: "gzip-by-name", paths: []string{gzSuffix}},
		{name: "gzip-members", paths: []string{multi}},
		{name: "gz-name-plain-content", paths: []string{plainGz}},
		{name: "empty", paths: []string{empty}},
		{name: "stdin", stdin: "from stdin\r\nno newline at the end"},
		{name: "files-and-stdin", paths: []string{empty, gzNoSuffix, Stdin, readerSample}, stdin: "piped 1\npiped 2\n"},
		{name: "cut-long-lines", paths: []string{readerSample}, maxLine: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := NewReaderSource(tt.paths, ReaderOptions{MaxLine: tt.maxLine, Stdin: strings.NewReader(tt.stdin)})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			lines, err := readAll(t, src, 2)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("ended with %v, want io.EOF", err)
			}
			if _, err := src.Read(context.Background(), nil, 2); !errors.Is(err, io.EOF) {
				t.Errorf("Read after the end: %v, want io.EOF", err)
			}
			var b strings.Builder
			for _, l := range lines {
				if strings.HasPrefix(l.Cursor.Source, "file:") && (l.Cursor.Inode == 0) {
					t.Errorf("%s: no inode", l.Cursor.Source)
				}
				fmt.Fprintf(&b, "%s %d %q", strings.ReplaceAll(l.Cursor.Source, tmp, "TMP"), l.Cursor.Offset, l.Text)
				if l.Cut {
					b.WriteString(" cut")
				}
				b.WriteByte('\n')
			}
			checkGolden(t, "reader/"+tt.name+".golden", []byte(b.String()))
		})
	}
}

func TestReaderSourceErrors(t *testing.T) {
	dir := t.TempDir()
	sample, err := os.ReadFile(readerSample)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzipped(t, bytes.Repeat(sample, 50))
	cut := filepath.Join(dir, "cut.gz")
	if err := os.WriteFile(cut, gz[:len(gz)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	badHeader := filepath.Join(dir, "bad.gz")
	if err := os.WriteFile(badHeader, []byte{0x1f, 0x8b, 99, 0, 0, 0, 0, 0, 0, 0, 0}, 0o644); err != nil {
		t.Fatal(err)
	}
	shortHeader := filepath.Join(dir, "short.gz")
	if err := os.WriteFile(shortHeader, []byte("\x1f\x8bgarbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.log")

	t.Run("at start", func(t *testing.T) {
		for _, tt := range []struct {
			paths []string
			want  string
		}{
			{[]string{readerSample, dir}, "read log " + dir + ": is a directory"},
			{[]string{missing}, "read log: stat " + missing + ": no such file or directory"},
		} {
			if _, err := NewReaderSource(tt.paths, ReaderOptions{}); err == nil || err.Error() != tt.want {
				t.Errorf("NewReaderSource(%q) = %v, want %q", tt.paths, err, tt.want)
			}
		}
	})

	t.Run("while reading", func(t *testing.T) {
		for _, tt := range []struct {
			path      string
			want      string
			someLines bool
		}{
			{cut, "read log " + cut + ": gzip data truncated: the lines up to the cut were read", true},
			{badHeader, "read log " + badHeader + ": not a gzip file or truncated: its gzip header cannot be read", false},
			{shortHeader, "read log " + shortHeader + ": not a gzip file or truncated: its gzip header cannot be read", false},
		} {
			src, err := NewReaderSource([]string{readerSample, tt.path, readerSample}, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			lines, err := readAll(t, src, 1000)
			if err == nil || err.Error() != tt.want {
				t.Errorf("%s: error %v, want %q", tt.path, err, tt.want)
			}
			var fromBad int
			for _, l := range lines {
				if l.Cursor.Source == "file:"+tt.path {
					fromBad++
				}
			}
			if (fromBad > 0) != tt.someLines || len(lines) < 6 {
				t.Errorf("%s: %d lines, %d of them from it", tt.path, len(lines), fromBad)
			}
			if _, again := src.Read(context.Background(), nil, 10); again == nil || again.Error() != tt.want {
				t.Errorf("error is not sticky: %v", again)
			}
		}
	})

	t.Run("unreadable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads files whatever their mode; the gzip cases above cover read failures")
		}
		p := filepath.Join(dir, "secret.log")
		if err := os.WriteFile(p, []byte("x\n"), 0); err != nil {
			t.Fatal(err)
		}
		src, err := NewReaderSource([]string{p}, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readAll(t, src, 10); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("error %v does not name %s", err, p)
		}
	})
}

func TestReaderSourceCancel(t *testing.T) {
	src, err := NewReaderSource([]string{readerSample}, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if lines, err := src.Read(ctx, nil, 10); !errors.Is(err, context.Canceled) || len(lines) != 0 {
		t.Errorf("Read with a done context: %d lines, %v", len(lines), err)
	}
	src.Close()
	if _, err := src.Read(context.Background(), nil, 10); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
}
