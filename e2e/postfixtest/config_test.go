package postfixtest

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenLayout is a fixed layout so generated files are comparable.
var goldenLayout = layout{
	dir:       "/INSTANCE",
	smtpdPort: 10025,
	sinkPorts: map[string]int{
		DomainOK: 20001, DomainRcpt5xx: 20002, DomainData5xx: 20003,
		DomainDefer: 20004, DomainFlaky: 20005, DomainDead: 20006,
	},
}

func TestConfigFilesGolden(t *testing.T) {
	cases := []struct {
		name string
		o    Options
	}{
		{"default", Options{}},
		{"custom", Options{
			LongQueueIDs:  true,
			QueueLifetime: 1500 * time.Millisecond,
			MainCF: []string{
				"smtpd_milters = inet:127.0.0.1:9000",
				"myhostname=relay.posthorn.test",
				"local_recipient_maps = proxy:unix:passwd.byname $alias_maps",
				"smtp_connect_timeout =",
			},
			MasterCF:   []string{"127.0.0.1:10026 inet n - n - - smtpd", "  -o content_filter="},
			Transports: map[string]string{"filter.test": "smtp:[127.0.0.1]:10024", "a.test": "discard:"},
			Aliases:    map[string]string{"forward": "x@ok.test", "team": "a@ok.test, b@defer.test"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files, err := configFiles(goldenLayout, c.o)
			if err != nil {
				t.Fatal(err)
			}
			for name, got := range files {
				path := filepath.Join("testdata", "config", c.name, name)
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if diff := cmp.Diff(string(want), got); diff != "" {
					t.Errorf("%s differs from %s (-want +got):\n%s", name, path, diff)
				}
			}
		})
	}
}

// TestMainCFDefinesEachParameterOnce: Postfix silently keeps the last of
// two definitions, so an override must replace, not add.
func TestMainCFDefinesEachParameterOnce(t *testing.T) {
	main, err := mainCF(goldenLayout, Options{MainCF: []string{"myhostname = other.test", "new_param = 1"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(main, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSetting(line)
		if err != nil {
			t.Fatalf("generated line: %v", err)
		}
		seen[s.name]++
		if s.name == "myhostname" && s.value != "other.test" {
			t.Errorf("myhostname = %q, want the override", s.value)
		}
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s defined %d times", name, n)
		}
	}
	if seen["new_param"] != 1 {
		t.Errorf("appended parameter missing")
	}
}

func TestParseSetting(t *testing.T) {
	cases := []struct {
		line    string
		want    setting
		wantErr bool
	}{
		{"a = b", setting{"a", "b"}, false},
		{"a=b", setting{"a", "b"}, false},
		{"  a  =  b c  ", setting{"a", "b c"}, false},
		{"a =", setting{"a", ""}, false},
		{"a = x = y", setting{"a", "x = y"}, false},
		{"no equals sign", setting{}, true},
		{"= value", setting{}, true},
		{"two words = v", setting{}, true},
		{"# comment = v", setting{}, true},
		{"", setting{}, true},
	}
	for _, c := range cases {
		got, err := parseSetting(c.line)
		if (err != nil) != c.wantErr {
			t.Errorf("parseSetting(%q) error = %v, want error %v", c.line, err, c.wantErr)
			continue
		}
		if got != c.want {
			t.Errorf("parseSetting(%q) = %+v, want %+v", c.line, got, c.want)
		}
	}
}

func TestLifetimeString(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "30s"},
		{-time.Second, "30s"},
		{time.Millisecond, "1s"},
		{1500 * time.Millisecond, "2s"},
		{45 * time.Second, "45s"},
		{2 * time.Minute, "120s"},
	}
	for _, c := range cases {
		if got := lifetimeString(c.d); got != c.want {
			t.Errorf("lifetimeString(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestInCI(t *testing.T) {
	cases := []struct {
		v    string
		want bool
	}{
		{"", false}, {"true", true}, {"1", true}, {"false", false}, {"0", false},
		{"yes", true}, {" true ", true}, {"TRUE", true},
	}
	for _, c := range cases {
		t.Setenv("CI", c.v)
		if got := inCI(); got != c.want {
			t.Errorf("CI=%q: inCI() = %v, want %v", c.v, got, c.want)
		}
	}
}
