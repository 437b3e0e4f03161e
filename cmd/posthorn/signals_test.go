package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/config"
)

func TestDiffConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *config.Config)
		want   []string
	}{
		{"nothing", func(c *config.Config) {}, nil},
		{"top level", func(c *config.Config) { c.Hostname = "other" }, []string{"hostname"}},
		{"table key", func(c *config.Config) { c.Log.Level = "debug" }, []string{"log.level"}},
		{"duration", func(c *config.Config) { c.Maillog.MessageTTL = config.Duration(time.Hour) }, []string{"maillog.message_ttl"}},
		{"list", func(c *config.Config) { c.Maillog.JournaldUnits = []string{"postfix@-.service"} }, []string{"maillog.journald_units"}},
		{"several, in file order", func(c *config.Config) {
			c.Log.Format = "json"
			c.Store.Path = "/elsewhere.db"
			c.Maillog.Journald = true
		}, []string{"store.path", "maillog.journald", "log.format"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := config.Default(), config.Default()
			tc.change(b)
			if got := diffConfig(a, b); !slices.Equal(got, tc.want) {
				t.Errorf("diffConfig = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDiffConfigKnowsEveryKey changes each documented key in turn: the
// diff must name exactly that key, or a reload could miss a change.
func TestDiffConfigKnowsEveryKey(t *testing.T) {
	for _, f := range config.Doc() {
		if f.Type == "table" {
			continue
		}
		a, b := config.Default(), config.Default()
		v, ok := fieldByKey(reflect.ValueOf(b).Elem(), f.Key)
		if !ok {
			t.Errorf("documented key %s has no field with that toml tag", f.Key)
			continue
		}
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.ValueOf("x")))
		default:
			t.Fatalf("%s: no way to change a %s; extend this test", f.Key, v.Type())
		}
		if got := diffConfig(a, b); !slices.Equal(got, []string{f.Key}) {
			t.Errorf("changing %s: diffConfig = %q", f.Key, got)
		}
	}
}

// fieldByKey finds the settable field of a dotted key by its toml tags.
func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	name, rest, nested := strings.Cut(key, ".")
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if tag != name {
			continue
		}
		if nested {
			return fieldByKey(v.Field(i), rest)
		}
		return v.Field(i), true
	}
	return reflect.Value{}, false
}

// reloadCase is one config file written before a SIGHUP.
type reloadCase struct {
	name      string
	file      string // what the file holds at the reload
	wantLevel slog.Level
	wantLog   []string // substrings of the reloader's log
	changed   []string
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "posthorn.toml")
	base := "hostname = \"h\"\n[maillog]\npath = \"/var/log/mail.log\"\n"
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(base)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := newReloader(path, cfg, level, log, &notifier{})
	var handled []string
	r.handle([]string{"maillog.batch_lines"}, func(c *config.Config) {
		handled = append(handled, c.Log.Level)
	})

	// The steps run in order on one reloader: each starts from what the
	// previous one left in effect.
	for _, tc := range []reloadCase{
		{"unchanged", base, slog.LevelInfo, []string{"configuration unchanged"}, nil},
		{"level applied", base + "[log]\nlevel = \"debug\"\n", slog.LevelDebug,
			[]string{"configuration applied", "applied=[log.level]"}, []string{"log.level"}},
		{"registered key applied", base + "batch_lines = 10\n[log]\nlevel = \"debug\"\n", slog.LevelDebug,
			[]string{"configuration applied", "applied=[maillog.batch_lines]"}, []string{"maillog.batch_lines"}},
		{"restart needed", "hostname = \"h\"\n[maillog]\npath = \"/var/log/other.log\"\n[log]\nlevel = \"warn\"\n", slog.LevelWarn,
			[]string{"level=WARN", "only after a restart", `applied="[maillog.batch_lines log.level]"`, "restart_needed=[maillog.path]"},
			[]string{"maillog.path", "maillog.batch_lines", "log.level"}},
		{"restart still needed", "hostname = \"h\"\n[maillog]\npath = \"/var/log/other.log\"\n[log]\nlevel = \"warn\"\n", slog.LevelWarn,
			[]string{"applied=[]", "restart_needed=[maillog.path]"}, nil},
		{"broken file ignored", "[log]\nlevel = \"loud\"\n", slog.LevelWarn,
			[]string{"level=ERROR", "keeping the running configuration", "log.level"}, nil},
		{"restart undone", base, slog.LevelInfo,
			[]string{"configuration applied", "applied=[log.level]"}, []string{"maillog.path", "log.level"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logBuf.Reset()
			write(tc.file)
			changed := r.reload()
			if !slices.Equal(changed, tc.changed) {
				t.Errorf("changed = %q, want %q", changed, tc.changed)
			}
			if got := level.Level(); got != tc.wantLevel {
				t.Errorf("level = %v, want %v", got, tc.wantLevel)
			}
			for _, s := range tc.wantLog {
				if !strings.Contains(logBuf.String(), s) {
					t.Errorf("log lacks %q:\n%s", s, logBuf.String())
				}
			}
		})
	}
	// The handler ran for the reloads in which batch_lines changed.
	if want := []string{"debug", "warn"}; !slices.Equal(handled, want) {
		t.Errorf("handler saw levels %q, want %q", handled, want)
	}
}

// TestReloaderRun drives the signal loop: a hangup is acknowledged to the
// service manager as RELOADING=1 then READY=1, and the end of the context
// as STOPPING=1.
func TestReloaderRun(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "posthorn.toml")
	if err := os.WriteFile(path, []byte("hostname = \"h\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "notify")
	conn := listenNotify(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	n, err := newNotifier()
	if err != nil {
		t.Fatal(err)
	}
	r := newReloader(path, cfg, new(slog.LevelVar), slog.New(slog.DiscardHandler), n)
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() { r.run(ctx, hup); close(done) }()

	hup <- os.Interrupt // any value: the loop does not look at it
	if got := readNotify(t, conn); got != notifyReloading {
		t.Errorf("first = %q, want %q", got, notifyReloading)
	}
	if got := readNotify(t, conn); !strings.HasPrefix(got, notifyReady+"\nSTATUS=reloaded ") {
		t.Errorf("second = %q, want READY=1 and a status", got)
	}
	cancel()
	if got := readNotify(t, conn); got != notifyStopping {
		t.Errorf("at shutdown = %q, want %q", got, notifyStopping)
	}
	<-done
}
