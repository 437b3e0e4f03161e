package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

// The user command is registered from this file; main.go's init, which
// sets the table, runs first because Go runs the init functions of a
// package's files in file-name order (go/build sorts them), and
// TestUserCommand fails if that ever changes.
func init() {
	commands = append(commands, command{"user", "add, change or delete a web console user (add|passwd|del NAME, list)", runUser})
}

// passwordInput is where a password comes from when no --password-file is
// given: the terminal on stdin. Tests replace it.
var passwordInput = func(stdin *os.File, prompt io.Writer) (string, error) {
	return readPasswordTTY(stdin, prompt)
}

const userUsage = `usage:
  posthorn user add NAME [--password-file FILE] [--config FILE]
  posthorn user passwd NAME [--password-file FILE] [--config FILE]
  posthorn user del NAME [--config FILE]
  posthorn user list [--config FILE]

The password is asked on the terminal (twice), or read from the first line of
FILE ("-" for standard input). A new password ends the user's console sessions.
`

func runUser(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("user", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, userUsage) }
	path := configFlag(fs)
	pwFile := fs.String("password-file", "", `read the password from the first line of this file ("-": standard input)`)
	// Flags may come before or after the action and its operands.
	pos, code, ok := parseInterleaved(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprint(stderr, userUsage)
		return exitConfig
	}
	action := pos[0]
	wantArgs := 2
	if action == "list" {
		wantArgs = 1
	}
	switch action {
	case "add", "passwd", "del", "list":
	default:
		fmt.Fprintf(stderr, "posthorn user: unknown action %q\n\n%s", action, userUsage)
		return exitConfig
	}
	if len(pos) != wantArgs {
		fmt.Fprintf(stderr, "posthorn user %s: want %d argument(s), got %d\n\n%s", action, wantArgs-1, len(pos)-1, userUsage)
		return exitConfig
	}
	name := ""
	if wantArgs == 2 {
		name = pos[1]
		if err := ui.CheckUserName(name); err != nil {
			fmt.Fprintf(stderr, "posthorn user %s: %v\n", action, err)
			return exitConfig
		}
	}
	if *pwFile != "" && action != "add" && action != "passwd" {
		fmt.Fprintf(stderr, "posthorn user %s: --password-file is only for add and passwd\n", action)
		return exitConfig
	}

	cfg, store, err := openStore(*path)
	if err != nil {
		return report(stderr, "posthorn user", err)
	}
	defer store.Close()

	switch action {
	case "list":
		users, err := store.Users(ctx)
		if err != nil {
			return report(stderr, "posthorn user", store.Explain(err))
		}
		for _, u := range users {
			fmt.Fprintln(stdout, u)
		}
		return exitOK
	case "del":
		if err := store.DeleteUser(ctx, name); err != nil {
			return report(stderr, "posthorn user", store.Explain(err))
		}
		fmt.Fprintf(stdout, "user %s deleted\n", name)
		return exitOK
	}

	if action == "add" {
		// Fail before asking for a password that would be thrown away.
		if _, ok, err := store.UserPasswordHash(ctx, name); err != nil {
			return report(stderr, "posthorn user", store.Explain(err))
		} else if ok {
			fmt.Fprintf(stderr, "posthorn user: add user %s: %v\n", name, sqlite.ErrUserExists)
			return exitFail
		}
	}
	password, err := readPassword(*pwFile, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "posthorn user %s: %v\n", action, err)
		return exitConfig
	}
	if err := ui.CheckPassword(password); err != nil {
		fmt.Fprintf(stderr, "posthorn user %s: %v\n", action, err)
		return exitConfig
	}
	hash, err := ui.HashPassword(password, ui.DefaultPasswordParams)
	if err != nil {
		fmt.Fprintln(stderr, "posthorn user:", err)
		return exitFail
	}
	if action == "add" {
		err = store.AddUser(ctx, name, hash)
	} else {
		err = store.SetUserPassword(ctx, name, hash)
	}
	if err != nil {
		return report(stderr, "posthorn user", store.Explain(err))
	}
	if action == "add" {
		fmt.Fprintf(stdout, "user %s added\n", name)
		if cfg.UI.Listen == "" {
			fmt.Fprintln(stdout, "note: the web console is off ([ui] listen is empty)")
		}
	} else {
		fmt.Fprintf(stdout, "password of %s changed; the user's sessions have ended\n", name)
	}
	return exitOK
}

// readPassword reads the new password from a file (its first line), or
// from the terminal, asked twice.
func readPassword(file string, prompt io.Writer) (string, error) {
	if file != "" {
		var r io.Reader = os.Stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return "", fmt.Errorf("read password: %w", err)
			}
			defer f.Close()
			r = f
		}
		line, err := bufio.NewReader(io.LimitReader(r, ui.MaxPasswordLen+2)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password: %w", err)
		}
		return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
	}
	fmt.Fprint(prompt, "Password: ")
	first, err := passwordInput(os.Stdin, prompt)
	if err != nil {
		return "", err
	}
	fmt.Fprint(prompt, "Password again: ")
	second, err := passwordInput(os.Stdin, prompt)
	if err != nil {
		return "", err
	}
	if first != second {
		return "", errors.New("the two passwords differ")
	}
	return first, nil
}

// readPasswordTTY reads one line from the terminal on f with echo off,
// restoring the terminal's mode afterwards.
func readPasswordTTY(f *os.File, prompt io.Writer) (string, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", errors.New("standard input is not a terminal: use --password-file FILE (or - for standard input)")
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return "", fmt.Errorf("turn off echo: %w", err)
	}
	defer func() {
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
		fmt.Fprintln(prompt)
	}()
	// One byte at a time: a buffered reader could swallow the second
	// answer's bytes along with the first.
	var b strings.Builder
	one := make([]byte, 1)
	for b.Len() <= ui.MaxPasswordLen {
		n, err := f.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return strings.TrimSuffix(b.String(), "\r"), nil
			}
			b.WriteByte(one[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return b.String(), nil
			}
			return "", fmt.Errorf("read password: %w", err)
		}
	}
	return "", fmt.Errorf("read password: longer than %d bytes", ui.MaxPasswordLen)
}
