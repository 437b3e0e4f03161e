package milter

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Address is a milter listener in Postfix's notation (MILTER_README):
// "inet:HOST:PORT" (HOST may be an IPv6 address in brackets) or
// "unix:PATH". Sendmail's "inet:PORT@HOST" is not accepted: Postfix does
// not read it either.
type Address struct {
	Network string // "tcp" or "unix"
	Addr    string // host:port, or the socket path
}

// ParseAddress parses a listener address.
func ParseAddress(s string) (Address, error) {
	kind, rest, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return Address{}, fmt.Errorf(`parse milter address %q: want "inet:HOST:PORT" or "unix:PATH"`, s)
	case kind == "inet":
		if strings.Contains(rest, "@") {
			return Address{}, fmt.Errorf(`parse milter address %q: Postfix writes inet:HOST:PORT, not Sendmail's inet:PORT@HOST`, s)
		}
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return Address{}, fmt.Errorf(`parse milter address %q: want "inet:HOST:PORT": %w`, s, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Address{}, fmt.Errorf("parse milter address %q: port must be 1 to 65535", s)
		}
		if host == "" {
			return Address{}, fmt.Errorf("parse milter address %q: no host (use 127.0.0.1 for the local Postfix)", s)
		}
		return Address{Network: "tcp", Addr: net.JoinHostPort(host, port)}, nil
	case kind == "unix":
		if !filepath.IsAbs(rest) {
			return Address{}, fmt.Errorf("parse milter address %q: the socket path must be absolute", s)
		}
		return Address{Network: "unix", Addr: filepath.Clean(rest)}, nil
	}
	return Address{}, fmt.Errorf(`parse milter address %q: unknown type %q: want "inet:HOST:PORT" or "unix:PATH"`, s, kind)
}

func (a Address) String() string {
	if a.Network == "unix" {
		return "unix:" + a.Addr
	}
	return "inet:" + a.Addr
}

// SocketOptions set a unix socket's permissions. Postfix's smtpd opens the
// socket, as user postfix and usually chrooted in /var/spool/postfix
// (MILTER.md §1.4): the socket must be reachable and writable for it.
type SocketOptions struct {
	Mode  fs.FileMode // e.g. 0660; 0 leaves the umask's result
	Group string      // group name or number, e.g. "postfix"; "" keeps the process's
}

// Listen opens the listener of an address. A unix socket left behind by
// an earlier run is replaced; any other file at that path is an error.
func Listen(a Address, so SocketOptions) (net.Listener, error) {
	if a.Network != "unix" {
		ln, err := net.Listen(a.Network, a.Addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		return ln, nil
	}
	if fi, err := os.Lstat(a.Addr); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on %s: %s exists and is not a socket", a, a.Addr)
		}
		// A live socket means another milter serves it.
		if c, err := net.Dial("unix", a.Addr); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on %s: another process is listening there", a)
		}
		if err := os.Remove(a.Addr); err != nil {
			return nil, fmt.Errorf("listen on %s: remove stale socket: %w", a, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listen on %s: %w", a, err)
	}
	// The socket is made under a temporary name, given its group and mode,
	// and then renamed into place: Postfix never finds it with the
	// permissions the umask gave it.
	tmp := filepath.Join(filepath.Dir(a.Addr), "."+filepath.Base(a.Addr)+".tmp")
	os.Remove(tmp) // left by a crash
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", a, err)
	}
	ln.SetUnlinkOnClose(false)
	err = applySocketOptions(tmp, so)
	if err == nil {
		err = os.Rename(tmp, a.Addr)
	}
	if err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("listen on %s: %w", a, err)
	}
	return &unixListener{UnixListener: ln, path: a.Addr}, nil
}

// unixListener removes its socket file when it closes (the file was
// renamed, so the standard library would remove the old name).
type unixListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { os.Remove(l.path) })
	return err
}

func applySocketOptions(path string, so SocketOptions) error {
	if so.Group != "" {
		gid, err := lookupGroup(so.Group)
		if err != nil {
			return err
		}
		if err := os.Chown(path, -1, gid); err != nil {
			return fmt.Errorf("set socket group: %w", err)
		}
	}
	if so.Mode != 0 {
		if err := os.Chmod(path, so.Mode); err != nil {
			return fmt.Errorf("set socket mode: %w", err)
		}
	}
	return nil
}

func lookupGroup(g string) (int, error) {
	if n, err := strconv.Atoi(g); err == nil && n >= 0 {
		return n, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("look up socket group %q: %w", g, err)
	}
	gid, err := strconv.Atoi(grp.Gid)
	if err != nil {
		return 0, fmt.Errorf("look up socket group %q: gid %q: %w", g, grp.Gid, err)
	}
	return gid, nil
}
