package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gatehouse/internal/datadir"
	"gatehouse/internal/dbfile"
)

// The "FILE is in DATA_DIR" refusal holds for DATA_DIR under any name (a
// symbolic link to it), before anything is written: the server's database
// and lock file stay as they were, and the server still serves. FILE may
// not be a directory (said so) or a FIFO.
func TestBackupRefusesDataDirByIdentity(t *testing.T) {
	t.Parallel()
	env := procEnv(t)
	p := startProc(t, env)
	g := &gatehouse{t: t, url: p.url}
	signIn(t, g, "register", "hana")
	dir := env["DATA_DIR"]
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	lock, _ := os.ReadFile(filepath.Join(dir, "gatehouse.lock"))
	for _, args := range [][]string{
		{"backup", "-force", filepath.Join(link, "gatehouse.sqlite")},
		{"backup", "-force", filepath.Join(link, "gatehouse.lock")},
		{"backup", filepath.Join(link, "copy.sqlite")},
	} {
		if _, err := command(env, "", args...); err == nil || !strings.Contains(err.Error(), "is in DATA_DIR") {
			t.Errorf("%v: %v, want a refusal: it is in DATA_DIR", args, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "copy.sqlite")); err == nil {
		t.Error("a backup refused for DATA_DIR was written there")
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "gatehouse.lock")); !bytes.Equal(now, lock) {
		t.Errorf("the lock file changed: %q, was %q", now, lock)
	}
	if tok, _ := signIn(t, g, "login", "hana"); me(t, g, tok) != "hana" {
		t.Error("the server does not serve its user after the refused backups")
	}

	out := t.TempDir()
	if _, err := command(env, "", "backup", "-force", out); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("backup -force over a directory: %v, want a refusal saying it is a directory", err)
	}
	fifo := filepath.Join(out, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := command(env, "", "backup", "-force", fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("backup -force over a FIFO: %v, want a refusal", err)
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// The server never writes a file it is named on its admin socket (it may
// see another file system than the operator, as under PrivateTmp=): it
// answers a backup request with the copy's bytes and their size, and
// leaves no file of its own in DATA_DIR.
func TestBackupServerSendsTheCopy(t *testing.T) {
	t.Parallel()
	env := procEnv(t)
	p := startProc(t, env)
	signIn(t, &gatehouse{t: t, url: p.url}, "register", "ines")
	dir := env["DATA_DIR"]
	named := filepath.Join(t.TempDir(), "named.sqlite")
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return datadir.Dial(ctx, dir, adminSocket)
		},
	}}
	defer c.CloseIdleConnections()
	// What a client of the earlier protocol sent: a path, and force.
	body := fmt.Sprintf(`{"database":"gatehouse","file":%q,"force":true}`, named)
	res, err := c.Post("http://gatehouse/backup", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || res.ContentLength != int64(len(got)) {
		t.Fatalf("backup request: %d, %d bytes announced, %d read, %v", res.StatusCode, res.ContentLength, len(got), err)
	}
	if _, err := os.Lstat(named); err == nil {
		t.Errorf("the server wrote %s", named)
	}
	copyFile := filepath.Join(t.TempDir(), "sent.sqlite")
	if err := os.WriteFile(copyFile, got, 0o600); err != nil {
		t.Fatal(err)
	}
	if info, err := dbfile.Inspect(context.Background(), copyFile); err != nil || info.Collections["users"] != 1 {
		t.Errorf("the bytes sent: %+v, %v; want a database with 1 user", info, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".backup-*")); len(left) != 0 {
		t.Errorf("the server left its copy in DATA_DIR: %v", left)
	}
}

// A server that stops in the middle of sending the copy: backup fails,
// saying so, and leaves nothing where FILE would be.
func TestBackupServerDiesMidStream(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := datadir.Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.WriteFile(filepath.Join(dir, "gatehouse.sqlite"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := d.Listen(adminSocket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1<<20))
		_, _ = w.Write(make([]byte, 64<<10))
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack() // and close: the server "died"
		_ = conn.Close()
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	out := t.TempDir()
	file := filepath.Join(out, "b.sqlite")
	_, err = command(map[string]string{"DATA_DIR": dir}, "", "backup", file)
	if err == nil || !strings.Contains(err.Error(), "of 1048576 bytes") || !strings.Contains(err.Error(), "stopped sending") {
		t.Errorf("backup from a server that stops mid-stream: %v, want an error saying so", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("files left behind: %v", left)
	}
}

// restore refuses a backup with what the engine never creates (a trigger
// that would set every password: a backdoor; a view; a table or an index
// of no collection), naming it, and a file whose size is not its
// header's (a sparse file grown with truncate); DATA_DIR is not made.
func TestRestoreRefusesForeignSchemaAndSize(t *testing.T) {
	t.Parallel()
	file := newBackup(t, "jon")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	variant := func(name string, q func(users string) string) string {
		f := filepath.Join(dir, name+".sqlite")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+f)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var users string
		if err := db.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = 'users'`).Scan(&users); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(q(users)); err != nil {
			t.Fatal(err)
		}
		return f
	}
	trigger := variant("trigger", func(u string) string {
		return fmt.Sprintf(`CREATE TRIGGER backdoor AFTER INSERT ON %q BEGIN UPDATE %[1]q SET _ferretdb_sjson = json_set(_ferretdb_sjson, '$.passwordHash', 'x'); END`, u)
	})
	view := variant("view", func(u string) string { return fmt.Sprintf(`CREATE VIEW v AS SELECT * FROM %q`, u) })
	table := variant("table", func(string) string { return `CREATE TABLE extra (x)` })
	index := variant("index", func(u string) string { return fmt.Sprintf(`CREATE INDEX sneaky ON %q (_ferretdb_sjson)`, u) })
	sparse := filepath.Join(dir, "sparse.sqlite")
	if err := os.WriteFile(sparse, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 1<<30); err != nil {
		t.Fatal(err)
	}
	fresh := map[string]string{"DATA_DIR": filepath.Join(t.TempDir(), "data")}
	for f, want := range map[string]string{
		trigger: `trigger "backdoor"`,
		view:    `view "v"`,
		table:   `table "extra", which is no collection's`,
		index:   `index "sneaky"`,
		sparse:  "1073741824 bytes, but its header says",
	} {
		if _, err := command(fresh, "", "restore", f); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("restore %s: %v, want %q", filepath.Base(f), err, want)
		}
	}
	if _, err := os.Stat(fresh["DATA_DIR"]); err == nil {
		t.Error("a refused restore made DATA_DIR")
	}
}
