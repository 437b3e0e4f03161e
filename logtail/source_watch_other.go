//go:build !linux

package logtail

// inotifyAvailable: elsewhere nxadm/tail's watch package uses fsnotify's
// kqueue or Windows backends, which do not need the probe.
func inotifyAvailable() error { return nil }
