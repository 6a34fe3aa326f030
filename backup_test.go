package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/dbfile"
	"gatehouse/internal/testlog"
	"gatehouse/storage"
)

// command runs gatehouse with args in this process, with env as its whole
// environment and stdin, and returns its output.
func command(env map[string]string, stdin string, args ...string) (string, error) {
	var out testlog.Buffer
	err := run(context.Background(), append([]string{"gatehouse"}, args...), func(k string) string { return env[k] }, strings.NewReader(stdin), &out)
	return out.String(), err
}

// acked is a session whose writes the server acknowledged: its token and
// the last data value it answered for.
type acked struct {
	user, token string
	value       int
}

// A backup taken while clients log in and update their sessions' data,
// through the running server, restored into a fresh DATA_DIR: a server on
// it knows every session acknowledged before the backup began, each with
// at least the data last acknowledged by then, and the restored files are
// owner-only.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	t.Parallel()
	env := procEnv(t)
	p := startProc(t, env)
	g := &gatehouse{t: t, url: p.url}
	users := []string{"ana", "ben", "cai"}
	for _, u := range users {
		signIn(t, g, "register", u)
	}

	var mu sync.Mutex
	var done []acked // acknowledged, in the order of the answers
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() { // logs in, then updates the new session's data a few times, and again
			defer wg.Done()
			c := freshClient()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := post(c, g.url, "", loginMutation, map[string]any{"u": u, "p": password, "d": map[string]any{"n": 0}})
				if err != nil || r.token("login") == "" {
					t.Errorf("login %s under load: %+v, %v", u, r, err)
					return
				}
				tok := r.token("login")
				mu.Lock()
				done = append(done, acked{user: u, token: tok})
				mu.Unlock()
				for v := 1; v <= 5; v++ {
					r, err := post(c, g.url, tok, `mutation($d: JSONObject!) { updateSessionData(data: $d) { data } }`, map[string]any{"d": map[string]any{"n": v}})
					if err != nil || len(r.Errors) > 0 {
						t.Errorf("updateSessionData under load: %+v, %v", r, err)
						return
					}
					mu.Lock()
					done = append(done, acked{user: u, token: tok, value: v})
					mu.Unlock()
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, 30*time.Second, "the clients have written", func() bool { mu.Lock(); defer mu.Unlock(); return len(done) >= 30 })

	file := filepath.Join(t.TempDir(), "backup.sqlite")
	mu.Lock()
	before := append([]acked(nil), done...)
	mu.Unlock()
	out, err := command(env, "", "backup", file)
	if err != nil {
		t.Fatalf("backup under load: %v\n%s", err, out)
	}
	mu.Lock()
	during := len(done) - len(before)
	mu.Unlock()
	t.Logf("%d writes acknowledged before the backup, %d while it ran", len(before), during)
	if !strings.Contains(out, "through the process that owns DATA_DIR") || !strings.Contains(out, "backup written to "+file) {
		t.Errorf("backup output:\n%s", out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the backup file: %v, %v; want mode 0600", fi, err)
	}
	if !strings.Contains(p.out.String(), "backup over the admin socket") {
		waitFor(t, 5*time.Second, "the server logs the backup", func() bool { return strings.Contains(p.out.String(), "backup over the admin socket") })
	}

	renv := procEnv(t)
	renv["DATA_DIR"] = filepath.Join(renv["DATA_DIR"], "restored") // does not exist yet
	if out, err := command(renv, "", "restore", file); err != nil || !strings.Contains(out, "restored "+file) {
		t.Fatalf("restore into a fresh DATA_DIR: %v\n%s", err, out)
	}
	checkOwnerOnly(t, renv["DATA_DIR"])
	r := &gatehouse{t: t, url: startProc(t, renv).url}
	last := map[string]acked{} // by token: the last value acknowledged before the backup
	for _, a := range before {
		last[a.token] = a
	}
	for tok, a := range last {
		res, err := post(http.DefaultClient, r.url, tok, `{ me { username } session { data } }`, nil)
		if err != nil || len(res.Errors) > 0 || res.field("session") == nil {
			t.Errorf("%s's session acknowledged before the backup, on the restored data: %+v, %v", a.user, res, err)
			continue
		}
		n, _ := res.field("session")["data"].(map[string]any)["n"].(float64)
		if name, _ := res.field("me")["username"].(string); name != a.user || int(n) < a.value {
			t.Errorf("restored session of %s: me %q, data n=%v; want %s and n >= %d", a.user, name, n, a.user, a.value)
		}
	}
	t.Logf("%d sessions checked on the restored data", len(last))
}

// setLayout writes version v into the meta document of the gatehouse
// database file, as a gatehouse of that layout would have.
func setLayout(t *testing.T, file string, v int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = 'meta'`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(fmt.Sprintf(`UPDATE %q SET _ferretdb_sjson = json_set(_ferretdb_sjson, '$.version', ?) WHERE _ferretdb_sjson->'$._id' = '"layout"'`, table), v)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("set the layout version: %v, %d rows", err, n)
	}
}

// newBackup returns a backup of a DATA_DIR where user signed up, taken
// with no server running.
func newBackup(t *testing.T, user string) string {
	t.Helper()
	env := testEnv(t)
	g := start(t, env)
	signIn(t, g, "register", user)
	g.stop()
	file := filepath.Join(t.TempDir(), user+".sqlite")
	if out, err := command(env, "", "backup", file); err != nil || strings.Contains(out, "through the process") {
		t.Fatalf("backup with no server: %v\n%s", err, out)
	}
	return file
}

// restore refuses what it must, saying why, and touches nothing when it
// does: a running server (naming its pid), live data without -force (with
// it, the old data is kept aside), a file that is not a database, a
// database that is not gatehouse's or is of a newer layout; backup and
// restore both refuse with MONGODB_URI.
func TestRestoreRefusals(t *testing.T) {
	t.Parallel()
	file := newBackup(t, "dora")

	env := procEnv(t)
	p := startProc(t, env)
	signIn(t, &gatehouse{t: t, url: p.url}, "register", "emil")
	want := fmt.Sprintf("DATA_DIR %s is in use by another gatehouse process (pid %d)", env["DATA_DIR"], p.cmd.Process.Pid)
	if _, err := command(env, "", "restore", "-force", file); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "stop it") {
		t.Errorf("restore beside a running server: %v, want %q and to stop it", err, want)
	}
	p.signal(os.Interrupt)
	p.wait(30 * time.Second)

	if _, err := command(env, "", "restore", file); err == nil || !strings.Contains(err.Error(), "already holds a database (gatehouse.sqlite)") || !strings.Contains(err.Error(), "-force") {
		t.Errorf("restore over live data: %v, want a refusal that names -force", err)
	}
	out, err := command(env, "", "restore", "-force", file)
	if err != nil {
		t.Fatalf("restore -force: %v\n%s", err, out)
	}
	aside, _ := filepath.Glob(filepath.Join(env["DATA_DIR"], "before-restore-*", "gatehouse.sqlite"))
	if len(aside) != 1 || !strings.Contains(out, filepath.Dir(aside[0])) {
		t.Fatalf("restore -force kept %v aside; output:\n%s", aside, out)
	}
	g := start(t, env)
	if tok, _ := signIn(t, g, "login", "dora"); me(t, g, tok) != "dora" {
		t.Error("the restored user cannot sign in")
	}
	if r, err := post(http.DefaultClient, g.url, "", loginMutation, map[string]any{"u": "emil", "p": password}); err != nil || r.code() != "UNAUTHENTICATED" {
		t.Errorf("a user of the replaced data after restore: %+v, %v", r, err)
	}
	g.stop()
	checkOwnerOnly(t, env["DATA_DIR"])
	// The old data, kept aside, is whole: a DATA_DIR of it serves emil.
	old := testEnv(t)
	if err := os.Rename(aside[0], filepath.Join(old["DATA_DIR"], "gatehouse.sqlite")); err != nil {
		t.Fatal(err)
	}
	if tok, _ := signIn(t, start(t, old), "login", "emil"); tok == "" {
		t.Error("the data kept aside does not serve its user")
	}

	dir := t.TempDir()
	plain := filepath.Join(dir, "notes.sqlite")
	if err := os.WriteFile(plain, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.sqlite")
	if db, err := sql.Open("sqlite", "file:"+other); err != nil {
		t.Fatal(err)
	} else if _, err := db.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	} else {
		_ = db.Close()
	}
	newer := filepath.Join(dir, "newer.sqlite")
	if b, err := os.ReadFile(file); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(newer, b, 0o600); err != nil {
		t.Fatal(err)
	}
	setLayout(t, newer, storage.LayoutVersion+1)
	fresh := map[string]string{"DATA_DIR": filepath.Join(t.TempDir(), "data")}
	for f, want := range map[string]string{
		plain: plain + ": not a SQLite database, so not a gatehouse backup",
		other: other + ": a SQLite database, but not one of the embedded engine's",
		newer: fmt.Sprintf("%s has layout version %d, newer than this gatehouse knows (%d)", newer, storage.LayoutVersion+1, storage.LayoutVersion),
	} {
		if _, err := command(fresh, "", "restore", f); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("restore %s: %v, want %q", filepath.Base(f), err, want)
		}
	}
	if _, err := os.Stat(fresh["DATA_DIR"]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused restore made DATA_DIR: %v", err)
	}

	mongo := map[string]string{"MONGODB_URI": "mongodb://127.0.0.1:1/", "TOTP_KEY": testTOTPKey, "DATA_DIR": fresh["DATA_DIR"]}
	for cmd, tool := range map[string]string{"backup": "mongodump", "restore": "mongorestore"} {
		target := filepath.Join(dir, cmd+".sqlite")
		if cmd == "restore" {
			target = file
		}
		if _, err := command(mongo, "", cmd, target); err == nil || !strings.Contains(err.Error(), "MONGODB_URI is set") || !strings.Contains(err.Error(), tool) {
			t.Errorf("%s with MONGODB_URI: %v, want a refusal naming %s", cmd, err, tool)
		}
	}
	if _, err := os.Stat(fresh["DATA_DIR"]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a command refused for MONGODB_URI made DATA_DIR: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "backup.sqlite")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a backup refused for MONGODB_URI wrote a file: %v", err)
	}
}

// `gatehouse backup` works beside `gatehouse db` too (through its admin
// socket), refuses to replace a file without -force, and refuses a FILE
// in DATA_DIR.
func TestBackupThroughGatehouseDB(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := startProc(t, map[string]string{"DATA_DIR": dir}, "db")
	env := testEnv(t)
	env["MONGODB_URI"], env["TOTP_KEY"] = db.url, testTOTPKey
	signIn(t, start(t, env), "register", "fina")

	cmdEnv := map[string]string{"DATA_DIR": dir}
	file := filepath.Join(t.TempDir(), "db.sqlite")
	out, err := command(cmdEnv, "", "backup", file)
	if err != nil || !strings.Contains(out, "through the process that owns DATA_DIR") || !strings.Contains(out, "users: 1") {
		t.Fatalf("backup beside gatehouse db: %v\n%s", err, out)
	}
	if _, err := command(cmdEnv, "", "backup", file); err == nil || !strings.Contains(err.Error(), "exists") || !strings.Contains(err.Error(), "-force") {
		t.Errorf("backup over an existing file: %v, want a refusal naming -force", err)
	}
	if out, err := command(cmdEnv, "", "backup", "-force", file); err != nil {
		t.Errorf("backup -force over an existing file: %v\n%s", err, out)
	}
	if _, err := command(cmdEnv, "", "backup", filepath.Join(dir, "b.sqlite")); err == nil || !strings.Contains(err.Error(), "is in DATA_DIR") {
		t.Errorf("backup into DATA_DIR: %v, want a refusal", err)
	}
	info, err := dbfile.Inspect(context.Background(), file)
	if err != nil || info.Collections["users"] != 1 {
		t.Errorf("the backup: %+v, %v", info, err)
	}
	// The user commands still go through db.sock, not the admin socket.
	if out, err := command(cmdEnv, "gorm's password\n", "user", "add", "gorm"); err != nil || !strings.Contains(out, "through `gatehouse db`") {
		t.Errorf("user add beside gatehouse db: %v\n%s", err, out)
	}
}
