package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse/storage"
)

// exitOf runs argv (the gatehouse binary, or a command that execs it) with
// exactly env, as user uid unless it is -1, and returns its output once it
// exits, failing the test if it is still running after a minute.
func exitOf(t *testing.T, env map[string]string, uid int, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%v still ran after a minute; output:\n%s", argv, out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("%v: %v, want it to run and exit 1; output:\n%s", argv, err, out)
	}
	return string(out)
}

// refusal checks that a start was refused with a message that holds every
// one of wants, and no stack trace.
func refusal(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: the refusal does not say %q:\n%s", what, w, out)
		}
	}
	if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") {
		t.Errorf("%s: a stack trace:\n%s", what, out)
	}
}

// dataDirWithData returns a DATA_DIR in which a server has run.
func dataDirWithData(t *testing.T) map[string]string {
	t.Helper()
	env := testEnv(t)
	g := start(t, env)
	signIn(t, g, "register", "hana")
	g.stop()
	return env
}

// Every refusal to start names the file or setting at fault and what to
// do, without a stack trace: a stray *.sqlite file in DATA_DIR (not
// SQLite; SQLite but not the engine's), DATA_DIR a file, DATA_DIR of
// another user's making that this one may not enter, a read-only DATA_DIR,
// a full disk, and a database of a newer layout. A gatehouse backup in
// DATA_DIR is served, with a warning.
func TestStartRefusalsSayWhatToFix(t *testing.T) {
	t.Parallel()
	start1 := func(env map[string]string) error {
		_, err := command(env, "")
		return err
	}

	env := testEnv(t)
	stray := filepath.Join(env["DATA_DIR"], "backup-2025.sqlite")
	if err := os.WriteFile(stray, []byte("-- a dump, not a database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refusal(t, "a text file named *.sqlite", fmt.Sprint(start1(env)), stray+" is not a SQLite database", "move it out of DATA_DIR")
	if _, err := os.Stat(stray); err != nil {
		t.Errorf("the stray file after the refusal: %v", err)
	}
	if err := os.Remove(stray); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(env["DATA_DIR"], "app.sqlite")
	setUpSQLite(t, other)
	refusal(t, "a SQLite file of another program", fmt.Sprint(start1(env)), other+" is a SQLite database, but not one of the embedded engine's", "move it out of DATA_DIR")

	backupEnv := dataDirWithData(t)
	file := filepath.Join(t.TempDir(), "kept.sqlite")
	if out, err := command(backupEnv, "", "backup", file); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	kept := filepath.Join(backupEnv["DATA_DIR"], "kept.sqlite")
	if err := os.Rename(file, kept); err != nil {
		t.Fatal(err)
	}
	g := start(t, backupEnv)
	if !strings.Contains(g.out.String(), `msg="DATA_DIR holds another database, which the engine opens too; if it is a backup, move it out of DATA_DIR" path=`+kept) {
		t.Errorf("a backup in DATA_DIR: no warning naming it:\n%s", g.out)
	}
	g.stop()

	notDir := testEnv(t)
	notDir["DATA_DIR"] = filepath.Join(notDir["DATA_DIR"], "file")
	if err := os.WriteFile(notDir["DATA_DIR"], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	refusal(t, "DATA_DIR a file", fmt.Sprint(start1(notDir)), "DATA_DIR "+notDir["DATA_DIR"], "DATA_DIR must be a directory")

	newer := dataDirWithData(t)
	setLayout(t, filepath.Join(newer["DATA_DIR"], "gatehouse.sqlite"), storage.LayoutVersion+1)
	refusal(t, "a newer layout", fmt.Sprint(start1(newer)), "MONGODB_DATABASE gatehouse",
		fmt.Sprintf("layout version %d, newer than this gatehouse knows (%d)", storage.LayoutVersion+1, storage.LayoutVersion),
		"run that version (or a newer one), or restore a backup")
}

// The refusals that need another user or a mount, as child processes: a
// DATA_DIR this user may not enter, a read-only one, a full disk. They
// need root (as CI runs), to switch user and to mount in a mount
// namespace of their own (unshare).
func TestStartRefusalsOfTheFileSystem(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run as another user and to mount a read-only and a full file system")
	}
	// The binary, which another user may run. (Not a copy: writing an
	// executable while other tests fork fails its exec with ETXTBSY.)
	bin := binary(t)
	for _, p := range []string{bin, filepath.Dir(bin)} {
		if err := os.Chmod(p, 0o755); err != nil { // built under the umask 077 of the tests' DATA_DIRs
			t.Fatal(err)
		}
	}
	env := procEnv(t) // DATA_DIR: root's, 0700
	env["DATA_DIR"] = filepath.Join(env["DATA_DIR"], "data")
	refusal(t, "a DATA_DIR of root, as nobody", exitOf(t, env, 65534, bin),
		"DATA_DIR "+env["DATA_DIR"], "this process (uid 65534) may not read and write there", "chown")

	ro := dataDirWithData(t)
	refusal(t, "a read-only DATA_DIR", exitOf(t, ro, -1, "unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$2" "$2" && mount -o remount,bind,ro "$2" && exec "$1"`, "sh", bin, ro["DATA_DIR"]),
		"DATA_DIR "+ro["DATA_DIR"], "read-only file system: mount it read-write, or set DATA_DIR to a writable directory")

	full := procEnv(t)
	mnt := full["DATA_DIR"]
	full["DATA_DIR"] = filepath.Join(mnt, "data")
	refusal(t, "a full disk", exitOf(t, full, -1, "unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o size=512k tmpfs "$2" && { dd if=/dev/zero of="$2/fill" bs=4k 2>/dev/null; exec "$1"; }`, "sh", bin, mnt),
		"DATA_DIR "+full["DATA_DIR"], "the file system of DATA_DIR is full: free space on it")
}

// setUpSQLite makes file a SQLite database that is not the engine's.
func setUpSQLite(t *testing.T, file string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE notes (text)`); err != nil {
		t.Fatal(err)
	}
}
