// Package datadir makes the embedded database's directory (DATA_DIR) private
// to the one process that uses it:
//
//   - owner-only: the directory and everything in it lose group and other
//     access, and a directory or file of another user refuses the start;
//   - one process at a time: an exclusive flock on DATA_DIR/gatehouse.lock,
//     held until Close (the kernel drops it when the process dies);
//   - unix sockets inside it whatever the length of its path: past the
//     107 bytes a socket address holds, sockets are bound and dialled
//     through /proc/self/fd/<the open directory>/<name> (Linux).
//
// Unix only (flock, umask, file owners).
package datadir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the name of the lock file in the directory.
const LockFile = "gatehouse.lock"

// MaxSocketPath is the longest path a unix socket address holds: sun_path
// is 108 bytes on Linux (104 on the BSDs), with a terminating NUL.
const MaxSocketPath = 103

// ErrInUse means another process holds the directory's lock.
var ErrInUse = errors.New("datadir: in use by another process")

// InUseError is the error of Open when another process holds the lock.
// It matches ErrInUse with errors.Is.
type InUseError struct {
	Dir string // the directory, absolute
	PID int    // the holder's process id, 0 if unknown
}

func (e *InUseError) Error() string {
	holder := "another gatehouse process"
	if e.PID > 0 {
		holder += " (pid " + strconv.Itoa(e.PID) + ")"
	}
	return fmt.Sprintf("DATA_DIR %s is in use by %s: one process at a time owns the data", e.Dir, holder)
}

// Is makes errors.Is(err, ErrInUse) true.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// Dir is a data directory this process holds. Its methods are safe for
// concurrent use.
type Dir struct {
	path string
	lock *os.File // flocked
	dir  *os.File // open, for socket paths through /proc/self/fd
}

// Open creates the directory path (mode 0700) if it does not exist, takes
// its lock, and makes it and everything in it owner-only, logging each mode
// it fixes at warn level (log may be nil). It fails with an *InUseError
// while another process holds the lock, and with an error naming the
// directory when it or anything in it belongs to another user or cannot
// be fixed.
//
// Open also sets the process's umask to 077 (as PostgreSQL does), so that
// the files the engine creates later (a new database, a journal) are
// owner-only from the start.
func Open(path string, log *slog.Logger) (_ *Dir, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	syscall.Umask(0o077)
	path, err = filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("DATA_DIR %s: %w%s", path, err, remedy(err))
	}
	// The directory first, so that nobody else can open what is in it
	// from here on.
	if err := private(path, path, log); err != nil {
		return nil, err
	}
	d := &Dir{path: path}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.dir, err = os.Open(path); err != nil {
		return nil, fmt.Errorf("DATA_DIR %s: %w%s", path, err, remedy(err))
	}
	if d.lock, err = os.OpenFile(filepath.Join(path, LockFile), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("DATA_DIR %s: lock: %w%s", path, err, remedy(err))
	}
	if err := syscall.Flock(int(d.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, &InUseError{Dir: path, PID: Holder(path)}
	} else if err != nil {
		return nil, fmt.Errorf("DATA_DIR %s: lock: %w%s", path, err, remedy(err))
	}
	// The pid is for other processes' error messages only: the lock is
	// the flock, which the kernel drops when this process dies.
	if err := d.lock.Truncate(0); err == nil {
		_, _ = d.lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	err = filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("DATA_DIR %s: %w%s", path, err, remedy(err))
		}
		if p == path || e.Type()&fs.ModeSymlink != 0 {
			return nil // done above; a link's own mode means nothing
		}
		return private(path, p, log)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// private makes p (in the data directory root) owner-only, or says why it
// cannot be.
func private(root, p string, log *slog.Logger) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("DATA_DIR %s: %w%s", root, err, remedy(err))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("DATA_DIR %s: %s belongs to uid %d, not to this process's user (uid %d): "+
			"that user could read or change the data; chown it", root, p, st.Uid, os.Geteuid())
	}
	mode := fi.Mode().Perm()
	if mode&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(p, mode&^0o077); err != nil {
		return fmt.Errorf("DATA_DIR %s: %s is mode %04o and cannot be made owner-only: %w%s", root, p, mode, err, remedy(err))
	}
	log.Warn("DATA_DIR: removed group and other access", "path", p, "was", fmt.Sprintf("%04o", mode), "now", fmt.Sprintf("%04o", mode&^0o077))
	return nil
}

// remedy is what to do about err, an operation on DATA_DIR that failed
// (after "; "), or "" when it is not about the directory's file system.
func remedy(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "; the file system of DATA_DIR is full: free space on it (or set DATA_DIR to a directory on a disk with room), then start again"
	case errors.Is(err, syscall.EROFS):
		return "; DATA_DIR is on a read-only file system: mount it read-write, or set DATA_DIR to a writable directory"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Sprintf("; this process (uid %d) may not read and write there: make DATA_DIR and its parent directories usable by that user (chown, chmod u+rwx), "+
			"or set DATA_DIR to a directory it owns", os.Geteuid())
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EEXIST):
		return "; DATA_DIR must be a directory, and so must every directory above it: move the file that is in the way, or set DATA_DIR elsewhere"
	}
	return ""
}

// Explain returns err, a failure to start on the data directory at path,
// with what to fix when the cause is the directory's file system: it
// writes and removes a small probe file there, and if that fails, says
// whether the disk is full, read-only or not writable by this process. An
// error it cannot explain so comes back as it is.
func Explain(path string, err error) error {
	if err == nil {
		return nil
	}
	perr := probe(path)
	if perr == nil {
		return err
	}
	return fmt.Errorf("DATA_DIR %s: %v%s (%w)", path, perr, remedy(perr), err)
}

// probe writes 64 KiB (a few database pages) to a new file in path, syncs
// and removes it.
func probe(path string) (err error) {
	f, err := os.CreateTemp(path, ".probe-*")
	if err != nil {
		return err
	}
	defer func() {
		_ = f.Close()
		if rerr := os.Remove(f.Name()); err == nil && rerr != nil {
			err = rerr
		}
	}()
	if _, err := f.Write(make([]byte, 64<<10)); err != nil {
		return err
	}
	return f.Sync()
}

// Holder returns the pid written in the lock file of directory path, or 0.
// It says who held the lock when it was last taken: use it for messages
// only.
func Holder(path string) int {
	b, err := os.ReadFile(filepath.Join(path, LockFile))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Path returns the directory's absolute path.
func (d *Dir) Path() string { return d.path }

// Close releases the lock and the directory.
func (d *Dir) Close() {
	if d.lock != nil {
		_ = d.lock.Close() // drops the flock
	}
	if d.dir != nil {
		_ = d.dir.Close()
	}
}

// SocketAddr returns the address to bind a unix socket named name in the
// directory, having removed a socket left there by a process that died:
// safe, since this process holds the lock. The address is valid until
// Close.
func (d *Dir) SocketAddr(name string) (string, error) {
	p := filepath.Join(d.path, name)
	if fi, err := os.Lstat(p); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return "", fmt.Errorf("DATA_DIR %s: %s is in the way of a socket", d.path, p)
		}
		if err := os.Remove(p); err != nil {
			return "", fmt.Errorf("DATA_DIR %s: stale socket: %w", d.path, err)
		}
	}
	return d.addr(name), nil
}

// addr is the path that reaches name in the directory: the path itself when
// a socket address holds it, else through the open directory.
func (d *Dir) addr(name string) string {
	if p := filepath.Join(d.path, name); len(p) <= MaxSocketPath {
		return p
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", d.dir.Fd(), name)
}

// Listen listens on a unix socket named name in the directory, reachable
// only by the directory's owner (socket mode 0600, in a 0700 directory).
// Closing the listener removes the socket.
func (d *Dir) Listen(name string) (net.Listener, error) {
	addr, err := d.SocketAddr(name)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("DATA_DIR %s: listen on %s: %w", d.path, name, err)
	}
	if err := os.Chmod(addr, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("DATA_DIR %s: %s: %w", d.path, name, err)
	}
	return ln, nil
}

// Dial connects to the unix socket named name in the directory.
func (d *Dir) Dial(ctx context.Context, name string) (net.Conn, error) {
	var nd net.Dialer
	return nd.DialContext(ctx, "unix", d.addr(name))
}

// Dial connects to the unix socket named name in directory path, which
// this process need not hold (a command reaching the server that does).
func Dial(ctx context.Context, path, name string) (net.Conn, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	addr := filepath.Join(path, name)
	if len(addr) > MaxSocketPath {
		dir, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer dir.Close()
		addr = fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), name)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "unix", addr)
}
