package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/posthorn/posthorn/config"
)

// hangups starts catching SIGHUP. Call it before anything else in a
// daemon: the default action of SIGHUP ends the process, and the unit's
// ExecReload may send one at any moment after the start.
func hangups() (c <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// reloader re-reads the config file on SIGHUP (systemctl reload). What can
// change in a running daemon is applied; a change of anything else is
// logged as needing a restart, and the running daemon keeps the value it
// started with. A file that no longer loads is reported and ignored, so a
// typo followed by a reload never takes the service down.
type reloader struct {
	path   string
	log    *slog.Logger
	level  *slog.LevelVar // the daemon logger's level: log.level is live
	notify *notifier

	mu       sync.Mutex
	started  *config.Config // what the daemon started with
	cur      *config.Config // the file as last loaded
	live     map[string]bool
	handlers []reloadHandler
}

type reloadHandler struct {
	keys []string
	fn   func(*config.Config)
}

func newReloader(path string, cfg *config.Config, level *slog.LevelVar, log *slog.Logger, n *notifier) *reloader {
	return &reloader{
		path: path, started: cfg, cur: cfg, level: level, log: log, notify: n,
		live: map[string]bool{"log.level": true},
	}
}

// handle registers fn to be called with the new configuration after each
// reload in which one of keys changed: components that can apply those
// keys while running (a listener's limits, a retention period) register
// here when serve wires them.
func (r *reloader) handle(keys []string, fn func(*config.Config)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		r.live[k] = true
	}
	r.handlers = append(r.handlers, reloadHandler{keys, fn})
}

// run reloads on every signal from hup until ctx is done, then tells the
// service manager that the daemon is stopping.
func (r *reloader) run(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			r.sendState(notifyStopping)
			return
		case <-hup:
			r.sendState(notifyReloading)
			r.reload()
			r.sendState(notifyReady, status("reloaded "+r.path))
		}
	}
}

// reload reads the file once and applies it. It logs what it applied and
// what needs a restart, and returns the keys that changed since the last
// load.
func (r *reloader) reload() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := config.Load(r.path)
	if err != nil {
		r.log.Error("reload: keeping the running configuration", "err", err)
		return nil
	}
	changed := diffConfig(r.cur, next)
	var applied, restart []string
	for _, k := range changed {
		if r.live[k] {
			applied = append(applied, k)
		}
	}
	// Measured from the start, so a change that needs a restart is
	// reported at every reload until the restart happens.
	for _, k := range diffConfig(r.started, next) {
		if !r.live[k] {
			restart = append(restart, k)
		}
	}
	if slices.Contains(applied, "log.level") {
		r.level.Set(logLevel(next.Log.Level))
	}
	for _, h := range r.handlers {
		if slices.ContainsFunc(h.keys, func(k string) bool { return slices.Contains(applied, k) }) {
			h.fn(next)
		}
	}
	r.cur = next
	attrs := []any{"config", r.path, "applied", applied}
	switch {
	case len(restart) > 0:
		r.log.Warn("reload: some changes take effect only after a restart (systemctl restart posthorn)",
			append(attrs, "restart_needed", restart)...)
	case len(applied) > 0:
		r.log.Info("reload: configuration applied", attrs...)
	default:
		r.log.Info("reload: configuration unchanged", "config", r.path)
	}
	return changed
}

func (r *reloader) sendState(states ...string) {
	if err := r.notify.notify(states...); err != nil {
		r.log.Warn("notify service manager", "err", err)
	}
}

// diffConfig returns the dotted keys (as in the file and config.Doc) whose
// values differ between a and b, in file order.
func diffConfig(a, b *config.Config) []string {
	var out []string
	diffStruct(reflect.ValueOf(*a), reflect.ValueOf(*b), "", &out)
	return out
}

func diffStruct(a, b reflect.Value, prefix string, out *[]string) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		key := prefix + name
		av, bv := a.Field(i), b.Field(i)
		// A table is a struct without methods of its own (Duration has
		// some, and is compared as a value).
		if f.Type.Kind() == reflect.Struct && f.Type.NumMethod() == 0 {
			diffStruct(av, bv, key+".", out)
			continue
		}
		if !reflect.DeepEqual(av.Interface(), bv.Interface()) {
			*out = append(*out, key)
		}
	}
}

// logLevel maps log.level (already validated by config) to a slog level.
func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
