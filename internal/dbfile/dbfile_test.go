package dbfile_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/dbfile"
	"gatehouse/internal/embedded"
	"gatehouse/storage"
)

// engineFile starts the engine in a fresh directory, lets storage create
// gatehouse's collections with one user in them, and returns the database
// file while the engine still runs on it.
func engineFile(t *testing.T) (file string, e *embedded.Server) {
	t.Helper()
	dir := t.TempDir()
	e, err := embedded.Start(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := storage.Open(ctx, e.URI(), "gatehouse", storage.Options{Dialer: e.Dialer()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	if err := st.CreateUser(ctx, &storage.User{Key: "ada", ID: "u1", Name: "Ada", PasswordHash: "$2a$04$x", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "gatehouse.sqlite"), e
}

// A copy of a database the engine serves holds its collections and its
// layout version, is owner-only, passes Inspect, and never replaces a file
// unless asked to.
func TestCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, _ := engineFile(t)
	dst := filepath.Join(t.TempDir(), "backup.sqlite")
	info, err := dbfile.Copy(ctx, src, dst, false)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Gatehouse() || info.Collections["users"] != 1 || info.Layout != storage.LayoutVersion {
		t.Errorf("copy holds %+v, want gatehouse's collections, 1 user, layout %d", info, storage.LayoutVersion)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the copy: %v, %v; want mode 0600", fi.Mode(), err)
	}
	again, err := dbfile.Inspect(ctx, dst)
	if err != nil || again.Collections["users"] != 1 {
		t.Errorf("Inspect the copy: %+v, %v", again, err)
	}
	if _, err := dbfile.Copy(ctx, src, dst, false); !errors.Is(err, fs.ErrExist) {
		t.Errorf("copy over an existing file: %v, want ErrExist", err)
	}
	if _, err := dbfile.Copy(ctx, src, dst, true); err != nil {
		t.Errorf("copy over an existing file with replace: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// A collection the engine was creating or dropping at the instant of the
// copy (a table without a catalog row, a row without its settings) is
// left out of the copy, so the engine can create it again there.
func TestCopyLeavesOutHalfCollections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, _ := engineFile(t)
	db, err := sql.Open("sqlite", "file:"+src+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE "orphan_00000001" (_ferretdb_sjson TEXT NOT NULL CHECK(_ferretdb_sjson != '')) STRICT`,
		`CREATE TABLE "half_00000002" (_ferretdb_sjson TEXT NOT NULL CHECK(_ferretdb_sjson != '')) STRICT`,
		`INSERT INTO _ferretdb_collections (name, table_name, settings) VALUES ('half', 'half_00000002', '{}')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "backup.sqlite")
	info, err := dbfile.Copy(ctx, src, dst, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := info.Collections["half"]; ok || !info.Gatehouse() {
		t.Errorf("the copy's collections: %v, want gatehouse's and not half", info.Collections)
	}
	cp, err := sql.Open("sqlite", "file:"+dst+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	var n int
	if err := cp.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name IN ('orphan_00000001', 'half_00000002')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("half collections' tables in the copy: %d, %v; want 0", n, err)
	}
}

// Inspect and CheckDir refuse a file that is not SQLite, an empty one, and
// a SQLite database that is not the engine's, naming the file.
func TestStrayFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	plain := filepath.Join(dir, "notes.sqlite")
	if err := os.WriteFile(plain, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.sqlite")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.sqlite")
	db, err := sql.Open("sqlite", "file:"+other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	for file, want := range map[string]error{plain: dbfile.ErrNotSQLite, empty: dbfile.ErrNotSQLite, other: dbfile.ErrNotEngine} {
		if _, err := dbfile.Inspect(ctx, file); !errors.Is(err, want) {
			t.Errorf("Inspect %s: %v, want %v", filepath.Base(file), err, want)
		}
	}
	for _, file := range []string{plain, other} {
		one := t.TempDir()
		if err := os.Rename(file, filepath.Join(one, filepath.Base(file))); err != nil {
			t.Fatal(err)
		}
		_, err := dbfile.CheckDir(ctx, one)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(one, filepath.Base(file))) || !strings.Contains(err.Error(), "move it out of DATA_DIR") {
			t.Errorf("CheckDir with %s: %v, want an error naming the file and saying to move it", filepath.Base(file), err)
		}
	}
	// What the engine leaves when it cannot create a database: removed.
	removed, err := dbfile.CheckDir(ctx, dir)
	if err != nil || len(removed) != 1 || removed[0] != empty {
		t.Errorf("CheckDir with an empty *.sqlite: %v, %v; want it removed", removed, err)
	}
	if _, err := os.Stat(empty); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the empty file after CheckDir: %v", err)
	}
}

// At start, CheckDir refuses a database of the engine with a trigger or a
// view in it, naming it, and removes the copies a crashed backup or
// restore left in the directory.
func TestStrayForeignSchemaAndLeftovers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, e := engineFile(t)
	e.Close()
	dir := filepath.Dir(src)
	for _, name := range []string{".backup-123.tmp", ".restore-456.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dbfile.CheckDir(ctx, dir); err != nil {
		t.Fatalf("CheckDir of the engine's own database: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(left) != 0 {
		t.Errorf("left over copies after CheckDir: %v", left)
	}
	db, err := sql.Open("sqlite", "file:"+src)
	if err != nil {
		t.Fatal(err)
	}
	var users string
	if err := db.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = 'users'`).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TRIGGER backdoor AFTER UPDATE ON "` + users + `" BEGIN SELECT 1; END`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	_, err = dbfile.CheckDir(ctx, dir)
	if !errors.Is(err, dbfile.ErrForeign) || !strings.Contains(err.Error(), `trigger "backdoor"`) || !strings.Contains(err.Error(), src) {
		t.Errorf("CheckDir with a trigger: %v, want ErrForeign naming the trigger and the file", err)
	}
}

// Install checks the directory it writes in, once opened, against the
// DATA_DIR the copy comes from: a path whose directory is (or, by a
// symbolic link swapped in, becomes) DATA_DIR is refused, with nothing
// written there, over a file or not.
func TestInstallRefusesDataDirByHandle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, _ := engineFile(t)
	data := filepath.Dir(src)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	name, err := dbfile.Snapshot(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := os.ReadFile(name)
	_ = os.Remove(name)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(data)
	for _, dst := range []string{filepath.Join(link, "gatehouse.sqlite"), filepath.Join(link, "copy.sqlite"), filepath.Join(data, "copy.sqlite")} {
		if _, err := dbfile.InstallReplacing(ctx, strings.NewReader(string(snap)), int64(len(snap)), dst, data); err == nil || !strings.Contains(err.Error(), "is in DATA_DIR") {
			t.Errorf("InstallReplacing %s: %v, want refused as in DATA_DIR", dst, err)
		}
		if _, err := dbfile.Install(ctx, strings.NewReader(string(snap)), int64(len(snap)), dst, data); err == nil || !strings.Contains(err.Error(), "is in DATA_DIR") {
			t.Errorf("Install %s: %v, want refused as in DATA_DIR", dst, err)
		}
	}
	if after, _ := os.ReadDir(data); len(after) != len(before) {
		t.Errorf("DATA_DIR held %d entries, now %d: %v", len(before), len(after), after)
	}
	// Elsewhere the same bytes are installed, and checked through the open file.
	dst := filepath.Join(t.TempDir(), "copy.sqlite")
	if info, err := dbfile.Install(ctx, strings.NewReader(string(snap)), int64(len(snap)), dst, data); err != nil || info.Collections["users"] != 1 {
		t.Errorf("Install elsewhere: %+v, %v", info, err)
	}
}
