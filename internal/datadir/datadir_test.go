package datadir_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/datadir"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// A directory that existed with loose modes is owner-only after Open,
// everything in it too, each fix logged; files created later are
// owner-only from the start (umask).
func TestOpenMakesEverythingOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(dir, "backup"), 0o755); err != nil {
		t.Fatal(err)
	}
	loose := map[string]os.FileMode{
		dir:                                    0o755,
		filepath.Join(dir, "backup"):           0o775,
		filepath.Join(dir, "gatehouse.sqlite"): 0o644,
		filepath.Join(dir, "backup", "old.sqlite"): 0o666,
		filepath.Join(dir, "tool"):                 0o755,
	}
	for p, m := range loose {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			if err := os.WriteFile(p, []byte("x"), m); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	d, err := datadir.Open(dir, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for p, m := range loose {
		if got, want := mode(t, p), m&^0o077; got != want {
			t.Errorf("%s: mode %04o, want %04o", p, got, want)
		}
		if !strings.Contains(log.String(), "path="+p+" was=0"+strconv.FormatUint(uint64(m), 8)) {
			t.Errorf("no log line for the fix of %s:\n%s", p, &log)
		}
	}
	if got := mode(t, filepath.Join(dir, datadir.LockFile)); got != 0o600 {
		t.Errorf("lock file: mode %04o, want 0600", got)
	}
	fresh := filepath.Join(dir, "later.sqlite")
	if err := os.WriteFile(fresh, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, fresh); got != 0o600 {
		t.Errorf("a file created after Open with mode 0644: %04o, want 0600", got)
	}
}

// One process at a time: a second Open (a second open file description,
// as another process would have) is refused with a message naming the
// directory and the holder's pid, until the first closes.
func TestOpenIsExclusive(t *testing.T) {
	dir := t.TempDir()
	d, err := datadir.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = datadir.Open(dir, nil)
	var inUse *datadir.InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, datadir.ErrInUse) {
		t.Fatalf("second Open: %v, want an InUseError", err)
	}
	if inUse.PID != os.Getpid() || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second Open: %v (pid %d), want DATA_DIR and pid %d named", err, inUse.PID, os.Getpid())
	}
	d.Close()
	d, err = datadir.Open(dir, nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	d.Close()
}

// A directory or file of another user is refused, naming DATA_DIR: that
// user could read or change the data whatever the modes.
func TestOpenRefusesAnotherUsersFiles(t *testing.T) {
	for _, which := range []string{"dir", "file"} {
		t.Run(which, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			p := dir
			if which == "file" {
				p = filepath.Join(dir, "gatehouse.sqlite")
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Skipf("cannot give a file to another user (not root): %v", err)
			}
			d, err := datadir.Open(dir, nil)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), "DATA_DIR "+dir) || !strings.Contains(err.Error(), "uid 65534") {
				t.Errorf("Open: %v, want DATA_DIR and the owner named", err)
			}
		})
	}
}

// Sockets in a directory whose path is longer than a socket address holds
// (108 bytes) are bound and dialled through the open directory; a socket a
// dead process left behind is replaced; the socket is mode 0600.
func TestSocketsInALongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("long-directory-name/", 7))
	if len(dir) <= 120 {
		t.Fatalf("test path only %d bytes", len(dir))
	}
	d, err := datadir.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	// A crash leaves the socket file behind.
	addr, err := d.SocketAddr("x.sock")
	if err != nil {
		t.Fatal(err)
	}
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	ln, err := d.Listen("x.sock")
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	if got := mode(t, filepath.Join(dir, "x.sock")); got != 0o600 {
		t.Errorf("socket mode %04o, want 0600", got)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, dial := range map[string]func() (net.Conn, error){
		"Dir.Dial": func() (net.Conn, error) { return d.Dial(ctx, "x.sock") },
		"Dial":     func() (net.Conn, error) { return datadir.Dial(ctx, dir, "x.sock") },
	} {
		c, err := dial()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Errorf("%s: write: %v", name, err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Errorf("%s: echo %q, %v", name, buf, err)
		}
		c.Close()
	}
}

// Something that is not a socket where a socket goes is not removed.
func TestSocketAddrKeepsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	d, err := datadir.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := filepath.Join(dir, "x.sock")
	if err := os.WriteFile(p, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SocketAddr("x.sock"); err == nil {
		t.Error("SocketAddr over a regular file: nil error")
	}
	if b, _ := os.ReadFile(p); string(b) != "keep" {
		t.Error("the regular file was removed")
	}
}
