package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gatehouse/internal/datadir"
	"gatehouse/internal/dbfile"
	"gatehouse/internal/embedded"
	"gatehouse/storage"
)

// runBackupCommand runs `gatehouse backup [-force] FILE` or `gatehouse
// restore [-force] FILE` (args[0] says which) on the embedded database of
// cfg: DATA_DIR/<MONGODB_DATABASE>.sqlite.
func runBackupCommand(ctx context.Context, cfg *config, args []string, stdout io.Writer, log *slog.Logger) error {
	force, name, err := parseBackupArgs(args)
	if err != nil {
		return err
	}
	if cfg.mongoURI != "" {
		tool := "mongodump --uri=... --db=" + cfg.mongoDB + " --archive=FILE"
		if args[0] == "restore" {
			tool = "mongorestore --uri=... --archive=FILE"
		}
		return fmt.Errorf("%s: MONGODB_URI is set, so the data is in MongoDB, not in DATA_DIR: use MongoDB's own tools (%s, or your provider's backups); "+
			"gatehouse %s works on the embedded database only", args[0], tool, args[0])
	}
	file, err := filepath.Abs(name)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	dir, err := filepath.Abs(cfg.dataDir)
	if err != nil {
		return fmt.Errorf("%s: DATA_DIR: %w", args[0], err)
	}
	if args[0] == "backup" {
		return backup(ctx, cfg, dir, file, force, stdout, log)
	}
	return restore(ctx, cfg, dir, file, force, stdout, log)
}

// parseBackupArgs reads `backup|restore [-force] FILE`; a mistake is a
// *usageError.
func parseBackupArgs(args []string) (force bool, file string, err error) {
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.BoolVar(&force, "force", false, "")
	err = flags.Parse(args[1:])
	switch {
	case err != nil:
		return false, "", &usageError{err: fmt.Errorf("%s: %w", args[0], err), usage: usageOf(args[0])}
	case flags.NArg() != 1 || flags.Arg(0) == "":
		return false, "", &usageError{err: fmt.Errorf("%s: want one FILE", args[0]), usage: usageOf(args[0])}
	}
	return force, flags.Arg(0), nil
}

// backupRequest asks the server that owns DATA_DIR for a copy of a
// database, on its admin socket. The server answers with the copy's
// bytes; it never writes the caller's FILE (the caller may see another
// file system than the server, as under systemd's PrivateTmp=).
type backupRequest struct {
	Database string `json:"database"`
}

// backup writes a consistent copy of the database to file: the copy is
// made by the server (or `gatehouse db`) that owns DATA_DIR, or, while
// none does, by this process holding DATA_DIR; this process writes file.
func backup(ctx context.Context, cfg *config, dir, file string, force bool, stdout io.Writer, log *slog.Logger) error {
	if err := checkBackupFile(dir, file, force); err != nil {
		return fmt.Errorf("backup: %w", backupError(file, err))
	}
	src := filepath.Join(dir, cfg.mongoDB+".sqlite")
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("backup: DATA_DIR %s holds no database %s (%v): check DATA_DIR and MONGODB_DATABASE", dir, filepath.Base(src), err)
	}
	req := backupRequest{Database: cfg.mongoDB}
	var info *dbfile.Info
	deadline := time.Now().Add(ownerWait)
	for {
		d, err := datadir.Open(dir, log)
		var inUse *datadir.InUseError
		if err == nil {
			info, err = dbfile.Copy(ctx, src, file, force)
			d.Close()
		} else if errors.As(err, &inUse) {
			if c, derr := datadir.Dial(ctx, dir, adminSocket); derr == nil {
				_ = c.Close()
				log.Info("backup: through the process that owns DATA_DIR", "dir", dir, "pid", inUse.PID)
				info, err = requestBackup(ctx, dir, req, file, force)
			} else if time.Now().Before(deadline) {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
				continue
			} else {
				err = fmt.Errorf("%w; it did not answer on %s within %v", err, filepath.Join(dir, adminSocket), ownerWait)
			}
		}
		if err != nil {
			return fmt.Errorf("backup: %w", backupError(file, err))
		}
		break
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup written to %s (%d bytes, owner-only; checked: %s)\n", file, fi.Size(), describe(info))
	return nil
}

// checkBackupFile refuses a FILE whose directory is DATA_DIR (the same
// directory, however named: through a symbolic link too), where the engine
// would open it, or which dbfile.CheckTarget refuses.
func checkBackupFile(dir, file string, force bool) error {
	parent, err := os.Stat(filepath.Dir(file)) // follows symbolic links
	if err != nil {
		return err
	}
	if data, err := os.Stat(dir); err == nil && os.SameFile(parent, data) {
		return fmt.Errorf("%s is in DATA_DIR, where the engine would open it as a database of its own at the next start: write it elsewhere", file)
	}
	return dbfile.CheckTarget(file, force)
}

// backupError adds to err what to do about the usual causes.
func backupError(file string, err error) error {
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s exists: choose another name, or give -force to replace it", file)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w (the directory of %s must exist)", err, file)
	}
	return err
}

// describe says what a database holds, for the commands' output.
func describe(info *dbfile.Info) string {
	return fmt.Sprintf("users: %d, sessions: %d, layout version %d", info.Collections["users"], info.Collections["sessions"], info.Layout)
}

// requestBackup asks the process that owns dir for a copy of the
// database, on its admin socket, and installs the bytes it answers with
// in file (dbfile.Install: no more than the size it announces, and
// nothing left behind if it stops short).
func requestBackup(ctx context.Context, dir string, req backupRequest, file string, force bool) (*dbfile.Info, error) {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return datadir.Dial(ctx, dir, adminSocket)
		},
	}}
	defer c.CloseIdleConnections()
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://gatehouse/backup", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	res, err := c.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		return nil, errors.New(strings.TrimSpace(string(msg)))
	}
	if res.ContentLength < 0 {
		return nil, errors.New("admin socket: the server announced no size for the copy")
	}
	install := dbfile.Install
	if force {
		install = dbfile.InstallReplacing
	}
	info, err := install(ctx, res.Body, res.ContentLength, file, dir)
	if err != nil && errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: the server stopped sending the copy (did it stop?); nothing was written to %s", err, file)
	}
	return info, err
}

// handleBackup serves backup requests on the admin socket of the process
// that owns dir: a server, or `gatehouse db`. The copy is made here
// (dbfile.Snapshot, in dir, while the engine serves) and its bytes are the
// answer, with their size; the requester writes them where it wants.
func handleBackup(dir string, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req backupRequest
		// The database is a name (as MONGODB_DATABASE), never a path.
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(&req); err != nil || !databaseName.MatchString(req.Database) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		began := time.Now()
		snap, err := dbfile.Snapshot(r.Context(), filepath.Join(dir, req.Database+".sqlite"))
		var f *os.File
		var fi os.FileInfo
		if err == nil {
			defer os.Remove(snap)
			f, err = os.Open(snap)
		}
		if err == nil {
			defer f.Close()
			fi, err = f.Stat()
		}
		if err != nil {
			log.Warn("backup over the admin socket failed", "database", req.Database, "err", err)
			http.Error(w, datadir.Explain(dir, err).Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.sqlite3")
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		if _, err := io.Copy(w, f); err != nil {
			log.Warn("backup over the admin socket: the copy was not sent whole", "database", req.Database, "err", err)
			return
		}
		log.Info("backup over the admin socket", "database", req.Database, "bytes", fi.Size(), "took", time.Since(began).Round(time.Millisecond))
	}
}

// serveBackupOnly serves backups, and nothing else, on the admin socket
// of `gatehouse db` (its instances' user commands go through db.sock).
func serveBackupOnly(e *embedded.Server, log *slog.Logger) (stop func(), err error) {
	ln, err := e.Listen(adminSocket)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /backup", handleBackup(e.Dir(), log))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// restore puts the backup in file in place of DATA_DIR's database, holding
// DATA_DIR (so never under a running server). A database already there is
// replaced only with force, and then kept aside in a directory of its own
// in DATA_DIR, with its journal. The file is checked before DATA_DIR is
// touched, and its copy in DATA_DIR again, before it is moved into place:
// what is installed is what was checked.
func restore(ctx context.Context, cfg *config, dir, file string, force bool, stdout io.Writer, log *slog.Logger) error {
	if _, err := checkRestorable(ctx, file); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	d, err := datadir.Open(dir, log)
	var inUse *datadir.InUseError
	if errors.As(err, &inUse) {
		return fmt.Errorf("restore: %w; stop it, then restore again", err)
	} else if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer d.Close()

	target := filepath.Join(dir, cfg.mongoDB+".sqlite")
	var live []string // the database and its journal
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if _, err := os.Lstat(target + suffix); err == nil {
			live = append(live, target+suffix)
		}
	}
	if len(live) > 0 && !force {
		return fmt.Errorf("restore: DATA_DIR %s already holds a database (%s): restore replaces it only with -force, which keeps it aside in DATA_DIR", dir, filepath.Base(live[0]))
	}
	tmp, err := copyInto(dir, file)
	if err != nil {
		return fmt.Errorf("restore: %w", datadir.Explain(dir, err))
	}
	defer os.Remove(tmp) // after the rename, a no-op
	info, err := checkRestorable(ctx, tmp)
	if err != nil {
		return fmt.Errorf("restore: %s, as copied into DATA_DIR: %w", file, err)
	}
	aside := ""
	if len(live) > 0 {
		aside = filepath.Join(dir, "before-restore-"+time.Now().UTC().Format("20060102T150405.000Z"))
		if err := os.Mkdir(aside, 0o700); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	for _, f := range live {
		if err := os.Rename(f, filepath.Join(aside, filepath.Base(f))); err != nil {
			return fmt.Errorf("restore: keep the old database aside: %w", err)
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restored %s into %s (%s)\n", file, target, describe(info))
	if aside != "" {
		fmt.Fprintf(stdout, "the database it replaced is kept in %s\n", aside)
	}
	if info.Layout < storage.LayoutVersion {
		fmt.Fprintf(stdout, "the next start migrates it from layout version %d to %d\n", info.Layout, storage.LayoutVersion)
	}
	return nil
}

// checkRestorable checks that file is a gatehouse backup this gatehouse
// can serve (dbfile.Inspect: intact, its size its header's, the engine's
// schema and nothing else) and returns what it holds.
func checkRestorable(ctx context.Context, file string) (*dbfile.Info, error) {
	info, err := dbfile.Inspect(ctx, file)
	switch {
	case errors.Is(err, dbfile.ErrNotSQLite), errors.Is(err, dbfile.ErrNotEngine):
		return nil, fmt.Errorf("%w, so not a gatehouse backup", err)
	case err != nil:
		return nil, err
	case !info.Gatehouse():
		return nil, fmt.Errorf("%s is a database of the embedded engine, but not gatehouse's (it has no users and sessions collections)", file)
	case info.Layout > storage.LayoutVersion:
		return nil, fmt.Errorf("%s has layout version %d, newer than this gatehouse knows (%d): it was made by a newer gatehouse; restore it with that version (or a newer one)",
			file, info.Layout, storage.LayoutVersion)
	}
	return info, nil
}

// copyInto copies file to a new owner-only temporary file in dir (named
// after dbfile.RestorePattern, so the engine never opens it), synced: as
// many bytes as file's header says it has, and only if it has that many
// (a sparse file would be copied dense).
func copyInto(dir, file string) (string, error) {
	in, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", err
	}
	size, err := dbfile.HeaderSize(in)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != size {
		return "", fmt.Errorf("%s: %d bytes, but its header says %d: not a database file as SQLite writes it (sparse, cut short or with bytes appended)", file, fi.Size(), size)
	}
	out, err := os.CreateTemp(dir, dbfile.RestorePattern)
	if err != nil {
		return "", err
	}
	err = out.Chmod(0o600)
	if err == nil {
		_, err = io.CopyN(out, in, size)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(out.Name())
		return "", err
	}
	return out.Name(), nil
}

// syncDir flushes a directory's entries (renames) to the disk.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// warnOtherDatabases warns of the database files in dir other than
// database's: the engine opens them all, and a backup kept there is one
// (and is changed by being opened).
func warnOtherDatabases(dir, database string, log *slog.Logger) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	for _, f := range files {
		if filepath.Base(f) != database+".sqlite" {
			log.Warn("DATA_DIR holds another database, which the engine opens too; if it is a backup, move it out of DATA_DIR", "path", f)
		}
	}
}
