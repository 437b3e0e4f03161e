package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/posthorn/posthorn"

// The architecture's import rules (ARCHITECTURE.md, "Layout"): event and
// settings are leaves; the components import them and their own libraries,
// never each other; only cmd/posthorn wires them together and reads the
// config file. To change the architecture, change this table.
//
// internal/console is the one exception below cmd/posthorn: the console's
// adapters over the store (ui's PostLog and Spool over sqlite), kept out
// of cmd/posthorn so that ui's tests and the e2e benchmark run the
// production adapter; it imports what ui and sqlite import, and nothing
// but cmd/posthorn and tests import it.
var allowed = map[string][]string{
	"event":      {},
	"settings":   {"event"},
	"config":     {},
	"logtail":    {"event"},
	"sqlite":     {"event", "settings"},
	"dispatcher": {"event", "settings"},
	"milter":     {"event", "settings"},
	"ui":         {"event", "settings", "zipaes"},
	"zipaes":     {},
	"blocks":     {"event"},
	"internal":   {},

	"internal/console": {"event", "settings", "sqlite", "ui", "zipaes"},
}

// Third-party modules each package may use; anything else is refused so a
// new dependency is a deliberate change here.
var thirdParty = map[string][]string{
	"event":      {},
	"settings":   {"golang.org/x/net", "golang.org/x/text"},
	"config":     {"github.com/pelletier/go-toml/v2"},
	"logtail":    {"github.com/nxadm/tail", "github.com/fsnotify/fsnotify", "gopkg.in/tomb.v1", "golang.org/x/sys"},
	"sqlite":     {"github.com/mattn/go-sqlite3", "golang.org/x/net", "golang.org/x/text"},
	"dispatcher": {"golang.org/x/net", "golang.org/x/text"},
	"milter":     {"github.com/d--j/go-milter", "github.com/emersion/go-message", "golang.org/x/net", "golang.org/x/text"},
	"ui":         {"github.com/a-h/templ", "golang.org/x/crypto", "golang.org/x/net", "golang.org/x/sys", "golang.org/x/text"},
	"zipaes":     {},
	"blocks":     {},
	"internal":   {},

	"internal/console": {"github.com/a-h/templ", "github.com/mattn/go-sqlite3", "golang.org/x/crypto", "golang.org/x/net",
		"golang.org/x/sys", "golang.org/x/text"},
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := strings.TrimPrefix(fields[0], module+"/"), fields[1:]
		top := group(pkg)
		if top == "cmd" || top == "e2e" || pkg == module {
			continue
		}
		rules, ok := allowed[top]
		if !ok {
			t.Errorf("package %s is not in the import rules: add it to allowed in deps_test.go", pkg)
			continue
		}
		for _, d := range deps {
			switch {
			case strings.HasPrefix(d, module+"/"):
				dtop := group(strings.TrimPrefix(d, module+"/"))
				if dtop != top && !slices.Contains(rules, dtop) {
					t.Errorf("%s imports %s: not allowed (allowed: %v)", pkg, d, rules)
				}
			case isStdlib(d):
			default:
				if !slices.ContainsFunc(thirdParty[top], func(m string) bool { return d == m || strings.HasPrefix(d, m+"/") }) {
					t.Errorf("%s depends on third-party %s: not in its list in deps_test.go", pkg, d)
				}
			}
		}
	}
}

// group is the entry of the import rules a package falls under: its top
// directory, or its top two when the table has an entry for those
// (internal/console).
func group(pkg string) string {
	parts := strings.SplitN(pkg, "/", 3)
	if len(parts) > 1 {
		if _, ok := allowed[parts[0]+"/"+parts[1]]; ok {
			return parts[0] + "/" + parts[1]
		}
	}
	return parts[0]
}

// isStdlib: standard library paths have no dot in their first element.
func isStdlib(path string) bool {
	first := strings.SplitN(path, "/", 2)[0]
	return !strings.Contains(first, ".")
}
