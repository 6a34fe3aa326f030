// Package dbfile reads, copies and checks the embedded engine's SQLite
// database files directly, without the engine: the consistent copy behind
// `gatehouse backup`, the checks of `gatehouse restore`, and the check at
// start that every *.sqlite file in DATA_DIR is one the engine can open.
//
// It knows two things of FerretDB v1's SQLite layout: a database file has
// a table _ferretdb_collections (collection name, table name, settings),
// and a collection's documents are JSON in the column _ferretdb_sjson of
// its table. Tests in this package and in internal/embedded run against
// files the real engine wrote, so an upgrade that changes either fails
// them.
package dbfile

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// catalog is the engine's table of collections in every database file.
const catalog = "_ferretdb_collections"

var (
	// ErrNotSQLite means the file is not a SQLite database at all.
	ErrNotSQLite = errors.New("not a SQLite database")
	// ErrNotEngine means the file is a SQLite database but not one of the
	// embedded engine's (it has no _ferretdb_collections table).
	ErrNotEngine = errors.New("a SQLite database, but not one of the embedded engine's (no " + catalog + " table)")
)

// Info is what a database file holds.
type Info struct {
	// Collections maps each collection's name to its number of documents.
	Collections map[string]int64
	// Layout is the version in gatehouse's meta document "layout", 0 if
	// there is none (a database of a gatehouse older than the meta
	// collection, or not gatehouse's).
	Layout int
}

// Gatehouse reports whether the file holds gatehouse's collections.
func (i *Info) Gatehouse() bool {
	_, users := i.Collections["users"]
	_, sessions := i.Collections["sessions"]
	return users && sessions
}

// Copy writes a consistent copy of the database file src to dst and
// returns what it holds: Snapshot, then Install. An existing dst is
// replaced only if replace is true (otherwise the error wraps
// fs.ErrExist).
func Copy(ctx context.Context, src, dst string, replace bool) (*Info, error) {
	if err := CheckTarget(dst, replace); err != nil {
		return nil, err
	}
	snap, err := Snapshot(ctx, src)
	if err != nil {
		return nil, err
	}
	defer os.Remove(snap)
	f, err := os.Open(snap)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return install(ctx, f, fi.Size(), dst, filepath.Dir(src), replace)
}

// SnapshotPattern is the name of Snapshot's files (os.CreateTemp's
// pattern): the engine never opens them (they do not end in .sqlite), and
// CheckDir removes those a crash left.
const SnapshotPattern = ".backup-*.tmp"

// RestorePattern is the name of the copies `gatehouse restore` checks in
// DATA_DIR before it moves one into place; CheckDir removes those a crash
// left.
const RestorePattern = ".restore-*.tmp"

// Snapshot makes a consistent copy of the database file src in a new
// owner-only file of src's directory (named after SnapshotPattern) and
// returns its path; the caller removes it. The copy is SQLite's VACUUM
// INTO, run on a connection of Snapshot's own: it reads src in one
// transaction, so it is the database as one instant left it, while
// writers of src carry on. It is tidied (a collection the engine was
// creating at that instant is left out).
func Snapshot(ctx context.Context, src string) (_ string, err error) {
	if _, err := os.Stat(src); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(src), SnapshotPattern)
	if err != nil {
		return "", err
	}
	_ = tmp.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	// VACUUM INTO wants a file that does not exist or is empty; an empty
	// file made here is owner-only from the start, whatever the umask.
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return "", err
	}
	if err := vacuumInto(ctx, src, tmp.Name()); err != nil {
		return "", err
	}
	if err := tidy(ctx, tmp.Name()); err != nil {
		return "", err
	}
	return tmp.Name(), nil
}

// CheckTarget says whether dst may be written by Install: a name that is
// free, or (with replace) a regular file. A directory, a FIFO, a symbolic
// link or any other file that is not regular is refused; an existing file
// without replace is an error that wraps fs.ErrExist.
func CheckTarget(dst string, replace bool) error {
	root, err := os.OpenRoot(filepath.Dir(dst))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // Install says so, naming the directory
	} else if err != nil {
		return err
	}
	defer root.Close()
	return checkTarget(root, dst, filepath.Base(dst), replace)
}

// checkTarget is CheckTarget for the name in root that dst names.
func checkTarget(root *os.Root, dst, name string, replace bool) error {
	fi, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory: give the name of a file (in it, or elsewhere)", dst)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s exists and is not a regular file (%s): choose another name", dst, fi.Mode().Type())
	case !replace:
		return fmt.Errorf("%s: %w", dst, fs.ErrExist)
	}
	return nil
}

// Install writes the size bytes of a database that r yields to dst: to a
// temporary owner-only file beside dst, which is synced and checked
// (Inspect) and only then moved to dst (over an existing file only if
// replace is true, see CheckTarget). If r ends early, or fails, nothing is
// left behind and the error says how much of size came.
//
// dst's directory is opened once, refused if it is notIn (the DATA_DIR the
// copy comes from, where the engine would open it as a database), and
// every step after that works in the directory so opened: swapping the
// path's directories meanwhile (for a symbolic link to DATA_DIR) cannot
// move the file anywhere else.
func Install(ctx context.Context, r io.Reader, size int64, dst, notIn string) (_ *Info, err error) {
	return install(ctx, r, size, dst, notIn, false)
}

// InstallReplacing is Install that may replace an existing regular file.
func InstallReplacing(ctx context.Context, r io.Reader, size int64, dst, notIn string) (*Info, error) {
	return install(ctx, r, size, dst, notIn, true)
}

func install(ctx context.Context, r io.Reader, size int64, dst, notIn string, replace bool) (_ *Info, err error) {
	root, err := os.OpenRoot(filepath.Dir(dst))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	here, err := root.Stat(".")
	if err != nil {
		return nil, err
	}
	if data, err := os.Stat(notIn); err == nil && os.SameFile(here, data) {
		return nil, fmt.Errorf("%s is in DATA_DIR, where the engine would open it as a database of its own at the next start: write it elsewhere", dst)
	}
	name := filepath.Base(dst)
	if err := checkTarget(root, dst, name, replace); err != nil {
		return nil, err
	}
	tmpName := "." + name + ".tmp-" + rand.Text()
	tmp, err := root.OpenFile(tmpName, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = tmp.Close()
		if err != nil {
			_ = root.Remove(tmpName)
		}
	}()
	n, err := io.Copy(tmp, io.LimitReader(r, size))
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("received %d of %d bytes: %w", n, size, err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	// Inspected through the open file itself, not by a name another
	// process could point elsewhere.
	info, err := Inspect(ctx, fmt.Sprintf("/proc/self/fd/%d", tmp.Fd()))
	if err != nil {
		return nil, fmt.Errorf("the copy: %w", err)
	}
	if err := checkTarget(root, dst, name, replace); err != nil {
		return nil, err
	}
	if replace {
		err = root.Rename(tmpName, name)
	} else if err = root.Link(tmpName, name); err == nil { // fails if dst appeared meanwhile
		err = root.Remove(tmpName)
	}
	if err != nil {
		return nil, err
	}
	dir, err := root.Open(".")
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return info, dir.Sync()
}

// HeaderSize returns the size the header of the database file in r
// says it has: its page count times its page size. Its error wraps
// ErrNotSQLite if r holds no SQLite header, or no valid page count.
func HeaderSize(r io.ReaderAt) (int64, error) {
	var h [100]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("shorter than a header, so %w", ErrNotSQLite)
		}
		return 0, err
	}
	if string(h[:16]) != "SQLite format 3\x00" {
		return 0, ErrNotSQLite
	}
	pageSize := int64(binary.BigEndian.Uint16(h[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	// The page count is valid only where the change counter equals the
	// version-valid-for number (SQLite 3.7.0 and later write both).
	if binary.BigEndian.Uint32(h[24:28]) != binary.BigEndian.Uint32(h[92:96]) || pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return 0, fmt.Errorf("no valid page count or size in the header, so %w", ErrNotSQLite)
	}
	return int64(binary.BigEndian.Uint32(h[28:32])) * pageSize, nil
}

func vacuumInto(ctx context.Context, src, dst string) error {
	db, err := sql.Open("sqlite", fileURI(src, "_pragma=busy_timeout(10000)"))
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("copy %s: %w", src, explain(err))
	}
	return nil
}

// tidy leaves out of a fresh copy what a collection being created or
// dropped at the instant of the copy left half done: the engine creates a
// collection in three statements (its table, its catalog row with settings
// "{}", then its settings with the _id index) and drops one in two (the
// row, then the table), outside any transaction. Such a collection is empty
// (documents go in only once it is created), and a half one would make the
// engine fail to create it again: its table name is taken.
func tidy(ctx context.Context, file string) error {
	db, err := sql.Open("sqlite", fileURI(file, ""))
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `DELETE FROM `+catalog+` WHERE settings = '{}'`); err != nil {
		return fmt.Errorf("tidy the copy: %w", explain(err))
	}
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
		AND name != '`+catalog+`' AND name NOT IN (SELECT table_name FROM `+catalog+`)`)
	if err != nil {
		return fmt.Errorf("tidy the copy: %w", explain(err))
	}
	var orphans []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			_ = rows.Close()
			return err
		}
		orphans = append(orphans, t)
	}
	_ = rows.Close()
	for _, t := range orphans {
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`DROP TABLE %q`, t)); err != nil {
			return fmt.Errorf("tidy the copy: %w", explain(err))
		}
	}
	return nil
}

// Inspect checks that file is an intact database of the engine and
// returns what it holds. It opens file read-only and immutable (no lock,
// no journal, nothing written beside it), so it is only for files no
// process writes: a backup, a copy. The errors wrap ErrNotSQLite or
// ErrNotEngine, or say what integrity_check found.
func Inspect(ctx context.Context, file string) (*Info, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file, so %w", file, ErrNotSQLite)
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("%s: empty, so %w", file, ErrNotSQLite)
	}
	db, err := sql.Open("sqlite", fileURI(file, "mode=ro&immutable=1"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var problems []string
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, explain(err))
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("%s: %w", file, explain(err))
		}
		problems = append(problems, p)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, explain(err))
	}
	if len(problems) != 1 || problems[0] != "ok" {
		return nil, fmt.Errorf("%s: damaged (integrity_check: %s)", file, strings.Join(problems, "; "))
	}
	var pages, pageSize int64
	if err := db.QueryRowContext(ctx, `SELECT page_count, page_size FROM pragma_page_count(), pragma_page_size()`).Scan(&pages, &pageSize); err != nil {
		return nil, fmt.Errorf("%s: %w", file, explain(err))
	}
	if pages*pageSize != fi.Size() {
		return nil, fmt.Errorf("%s: %d bytes, but its header says %d pages of %d bytes (%d): not a database file as SQLite writes it (sparse, cut short or with bytes appended)",
			file, fi.Size(), pages, pageSize, pages*pageSize)
	}
	tables, err := collections(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := shape(ctx, db, tables, false); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	info := &Info{Collections: map[string]int64{}}
	for name, table := range tables {
		var n int64
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM %q`, table)).Scan(&n); err != nil {
			return nil, fmt.Errorf("%s: count %s: %w", file, name, explain(err))
		}
		info.Collections[name] = n
	}
	if meta, ok := tables["meta"]; ok {
		err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT _ferretdb_sjson->>'$.version' FROM %q WHERE _ferretdb_sjson->'$._id' = '"layout"'`, meta)).Scan(&info.Layout)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%s: layout version: %w", file, explain(err))
		}
	}
	return info, nil
}

// collections returns the engine's catalog of a database: collection name
// to table name. Its error wraps ErrNotSQLite or ErrNotEngine.
func collections(ctx context.Context, db *sql.DB) (map[string]string, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '`+catalog+`'`).Scan(&n)
	if err != nil {
		return nil, explain(err)
	} else if n == 0 {
		return nil, ErrNotEngine
	}
	rows, err := db.QueryContext(ctx, `SELECT name, table_name FROM `+catalog)
	if err != nil {
		return nil, explain(err)
	}
	defer rows.Close()
	tables := map[string]string{}
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			return nil, explain(err)
		}
		tables[name] = table
	}
	return tables, rows.Err()
}

// ErrForeign means a database of the engine holds what the engine never
// creates: a trigger or a view (code that runs on the engine's writes), or
// a table or an index that is no collection's.
var ErrForeign = errors.New("holds what the embedded engine never creates")

// shape checks that the schema of db is the engine's (FerretDB v1.24's
// SQLite backend): its catalog, a table for each collection in it (the
// tables map, collection to table), indexes on those named after their
// table, and SQLite's own tables and indexes. With live, tables and
// indexes are let be, and only triggers and views refused: the engine
// leaves a table that is no collection's (with its indexes) when it stops
// while creating or dropping a collection (Snapshot's tidy leaves it out
// of copies). The error wraps ErrForeign and names what it found.
func shape(ctx context.Context, db *sql.DB, tables map[string]string, live bool) error {
	ours := map[string]bool{catalog: true}
	for _, t := range tables {
		ours[t] = true
	}
	rows, err := db.QueryContext(ctx, `SELECT type, name, tbl_name FROM sqlite_schema`)
	if err != nil {
		return explain(err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var typ, name, table string
		if err := rows.Scan(&typ, &name, &table); err != nil {
			return explain(err)
		}
		internal := strings.HasPrefix(name, "sqlite_")
		switch {
		case live && (typ == "table" || typ == "index"):
		case typ == "table" && (ours[name] || internal):
		case typ == "index" && ours[table] && (strings.HasPrefix(name, table+"_") || strings.HasPrefix(name, "sqlite_autoindex_"+table+"_")):
		case typ == "index" || typ == "trigger":
			found = append(found, fmt.Sprintf("%s %q on %q", typ, name, table))
		case typ == "table":
			found = append(found, fmt.Sprintf("table %q, which is no collection's", name))
		default:
			found = append(found, fmt.Sprintf("%s %q", typ, name))
		}
	}
	if err := rows.Err(); err != nil {
		return explain(err)
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: %s; it is not a database gatehouse wrote, or it was changed since", ErrForeign, strings.Join(found, ", "))
	}
	return nil
}

// CheckDir checks that every *.sqlite file in dir is a database of the
// engine, which opens all of them at start and fails on any other with a
// message that does not say which file it was. The error names the file
// and says what to do. An empty *.sqlite file holds nothing, and is what
// the engine leaves when it cannot create a database (a full disk): it is
// removed, and returned in removed; so are the files of Snapshot and of
// restore (RestorePattern) a crash left (not returned). Call CheckDir while holding dir (it
// opens the files as the engine would, so a database left with a journal
// by a crash is recovered here rather than by the engine).
func CheckDir(ctx context.Context, dir string) (removed []string, err error) {
	left, _ := filepath.Glob(filepath.Join(dir, SnapshotPattern))
	restores, _ := filepath.Glob(filepath.Join(dir, RestorePattern))
	left = append(left, restores...)
	for _, f := range left { // a crash's: nobody else holds dir
		_ = os.Remove(f)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if fi, err := os.Lstat(f); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			if err := os.Remove(f); err != nil {
				return removed, fmt.Errorf("DATA_DIR %s: %s is empty and cannot be removed: %w", dir, f, err)
			}
			removed = append(removed, f)
			continue
		}
		err := checkFile(ctx, f)
		if errors.Is(err, ErrForeign) {
			return removed, fmt.Errorf("DATA_DIR %s: %s %w: move it out of DATA_DIR, and restore a backup (`gatehouse restore -force FILE`)", dir, f, err)
		} else if errors.Is(err, ErrNotSQLite) || errors.Is(err, ErrNotEngine) {
			return removed, fmt.Errorf("DATA_DIR %s: %s is %w; the embedded engine opens every *.sqlite file in DATA_DIR as a database: "+
				"move it out of DATA_DIR (keep backups elsewhere; `gatehouse restore FILE` puts one back)", dir, f, err)
		} else if err != nil {
			return removed, fmt.Errorf("DATA_DIR %s: %s cannot be opened: %w", dir, f, err)
		}
	}
	return removed, nil
}

func checkFile(ctx context.Context, file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file, so %w", ErrNotSQLite)
	}
	db, err := sql.Open("sqlite", fileURI(file, "_pragma=busy_timeout(10000)"))
	if err != nil {
		return err
	}
	defer db.Close()
	tables, err := collections(ctx, db)
	if err != nil {
		return err
	}
	return shape(ctx, db, tables, true)
}

// explain turns SQLite's "file is not a database" into ErrNotSQLite.
func explain(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB {
		return ErrNotSQLite
	}
	return err
}

// fileURI is the SQLite URI of the file at path, with query q.
func fileURI(path, q string) string {
	return (&url.URL{Scheme: "file", Opaque: uriEscaper.Replace(path), RawQuery: q}).String()
}

// uriEscaper escapes what ends a SQLite URI's path, or escapes in it.
var uriEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// syncFile flushes the file (or directory) at path to the disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
