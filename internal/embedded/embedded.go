// Package embedded runs FerretDB, a MongoDB wire-protocol server backed by
// SQLite, inside the gatehouse process. It is the zero-configuration database
// for development and small deployments; production points MONGODB_URI at
// MongoDB instead.
//
// The engine is private to the process: it holds DATA_DIR's lock (see
// internal/datadir), listens only on a unix socket in the owner-only
// DATA_DIR, never on TCP, and every client reaches it through one
// [wirelock.Relay], which serialises the writes to each document (FerretDB
// v1's updates are not atomic): the process's own driver through
// [Server.Dialer], other local processes through [Server.Serve] on a
// socket of [Server.Listen].
//
// The package also repairs one performance trap of FerretDB v1 on SQLite: its
// own _id index is built on an expression (_ferretdb_sjson->"_id") that differs
// from the one its queries use (_ferretdb_sjson->'$._id'), so every
// {_id: x} look-up scans the whole table. [Server.IndexIDs] adds an index on
// the expression the queries use.
package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", the one FerretDB uses

	"gatehouse/internal/datadir"
	"gatehouse/internal/dbfile"
	"gatehouse/internal/wirelock"
)

// idExpr is the SQL expression FerretDB's SQLite backend filters on when a
// query is exactly {_id: <string or ObjectID>}.
const idExpr = `_ferretdb_sjson->'$._id'`

// engineSocket is the name of FerretDB's own socket in DATA_DIR; only the
// relay connects to it.
const engineSocket = "ferretdb.sock"

// inProcessURI is the connection string of a driver whose dialer is the
// relay: its host names nothing.
const inProcessURI = "mongodb://embedded/"

// SocketURI returns the connection string of the unix socket at path (the
// path, percent-encoded, is the host), for the clients of a socket that
// Serve serves. The path must end in ".sock" and fit in a socket address
// (datadir.MaxSocketPath).
func SocketURI(path string) string { return "mongodb://" + url.PathEscape(path) + "/" }

// sqlitePragmas are set on every SQLite connection of the engine (FerretDB
// adds journal_mode(wal)): its own busy timeout, first, so that the next
// pragma waits for locks too; incremental auto-vacuum, which new
// databases take and older ones get at start (see disk.go); and a page
// cache of 1 MiB instead of 2. FerretDB keeps many connections open, each
// with its cache outside the Go heap: beside 10⁵ sessions they took
// 62 MiB of the one process's RSS at 2 MiB, 39 at 512 KiB. The file's
// pages stay in the kernel's cache, and the session cache answers the
// hottest reads.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=auto_vacuum(incremental)&_pragma=cache_size(-1024)"

// newMu serialises ferretdb.New, which writes a package variable (its
// version's Package): two engines of one process (tests) start in turn.
var newMu sync.Mutex

var errNoCollections = errors.New("embedded: no collections yet")

// Server is a running embedded FerretDB and the relay in front of it.
type Server struct {
	dir    *datadir.Dir
	relay  *wirelock.Relay
	disk   *disk
	cancel context.CancelFunc
	done   chan struct{}
}

// Start takes data directory dir for this process (datadir.Open: owner-only,
// locked; an *datadir.InUseError while another process holds it), checks
// that every *.sqlite file in it is a database of the engine
// (dbfile.CheckDir: the error names the one that is not) and starts
// FerretDB with its SQLite files there, listening on a unix socket in it.
// An error caused by a full or read-only disk says so (datadir.Explain).
// Logs at error level and above go to logger (nil discards), and so do the
// warnings of the modes fixed in dir. Close must be called to stop it.
func Start(dir string, logger *slog.Logger) (_ *Server, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d, err := datadir.Open(dir, logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = datadir.Explain(d.Path(), err) // a full or read-only disk
			d.Close()
		}
	}()
	// FerretDB opens every *.sqlite file in the directory, and fails on one
	// that is not its own without naming it.
	removed, err := dbfile.CheckDir(context.Background(), d.Path())
	for _, f := range removed {
		logger.Warn("DATA_DIR: removed an empty database file (a database the engine could not create, on a full disk?)", "path", f)
	}
	if err != nil {
		return nil, err
	}
	addr, err := d.SocketAddr(engineSocket)
	if err != nil {
		return nil, err
	}
	// FerretDB v1 does not release its backend when it cannot listen, so
	// find out first whether it can (closing the listener removes it).
	ln, err := net.Listen("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded: listen: %w", err)
	}
	_ = ln.Close()
	upkeepLog := logger
	// FerretDB logs every non-ok reply (a duplicate key, a missing index) at
	// lower levels; only its own failures interest us.
	logger = slog.New(levelFilter{logger.Handler(), slog.LevelError})

	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: addr},
		Handler:   "sqlite",
		SQLiteURL: (&url.URL{Scheme: "file", Opaque: d.Path() + "/", RawQuery: sqlitePragmas}).String(),
		Logger:    logger,
	})
	newMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("embedded: start ferretdb: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{dir: d, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = f.Run(ctx) // always nil; returns once ctx is cancelled
	}()
	// MongoDBURI blocks until the listener is bound.
	_ = f.MongoDBURI()
	if err := os.Chmod(addr, 0o600); err != nil {
		s.Close()
		return nil, fmt.Errorf("embedded: %w", err)
	}
	s.relay = wirelock.New(func(ctx context.Context) (net.Conn, error) { return d.Dial(ctx, engineSocket) })
	incrementalVacuum(d.Path(), upkeepLog) // before any client: it rewrites the files
	s.disk = newDisk(d.Path(), s.relay, upkeepLog)
	go s.disk.run()
	return s, nil
}

// URI returns the connection string of the process's own driver, whose
// dialer is Dialer: its host names nothing (the engine has no port).
func (s *Server) URI() string { return inProcessURI }

// Dialer returns the in-process way to the engine that makes its
// single-document writes atomic (see package wirelock): give it to the
// driver, with any host in the URI.
func (s *Server) Dialer() *wirelock.Relay { return s.relay }

// Listen listens on a unix socket named name in the data directory,
// reachable by its owner only, for Serve or for an administration API.
func (s *Server) Listen(name string) (net.Listener, error) { return s.dir.Listen(name) }

// Serve relays the connections ln accepts to the engine until ln is
// closed.
func (s *Server) Serve(ln net.Listener) error { return s.relay.Serve(ln) }

// Dir returns the data directory's absolute path.
func (s *Server) Dir() string { return s.dir.Path() }

// Close closes every client connection, stops the engine, closes its
// SQLite files and releases the data directory.
func (s *Server) Close() {
	if s.disk != nil {
		s.disk.close()
	}
	if s.relay != nil {
		_ = s.relay.Close()
	}
	s.cancel()
	<-s.done
	s.dir.Close()
}

// LimitDisk sets the size each database's WAL is kept under (walLimit,
// DefaultWALLimit until set) and the free space under which DiskFull
// reports the disk full (minFree, DefaultMinFree until set).
func (s *Server) LimitDisk(walLimit, minFree int64) {
	s.disk.walLimit.Store(walLimit)
	s.disk.minFree.Store(minFree)
}

// Disk returns the engine's use of its disk, as last measured (every
// 100 ms).
func (s *Server) Disk() DiskStats {
	s.disk.mu.Lock()
	defer s.disk.mu.Unlock()
	return s.disk.stats
}

// DiskFull returns why the data directory's disk is full, or nil: its free
// space was under the minimum when last measured, or the engine's upkeep
// was refused for want of space.
func (s *Server) DiskFull() error {
	s.disk.mu.Lock()
	defer s.disk.mu.Unlock()
	return s.disk.full
}

// IndexIDs makes {_id: x} look-ups on every collection of database db use an
// index. It is idempotent; call it after the collections exist (FerretDB
// creates a collection's table lazily, and dropping a collection drops the
// index with it).
func (s *Server) IndexIDs(ctx context.Context, db string) error {
	sqlDB, err := s.open(db)
	if err != nil {
		return err
	}
	defer sqlDB.Close()

	tables, err := collectionTables(ctx, sqlDB)
	if err != nil {
		return err
	}
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, IDIndexName(t), t, idExpr)
		if _, err := sqlDB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("embedded: index %s: %w", t, err)
		}
	}
	return nil
}

// IndexAll runs IndexIDs on every database in the data directory that has
// collections. A standalone engine (gatehouse db) calls it periodically,
// since its clients create databases and collections on their own.
func (s *Server) IndexAll(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(s.dir.Path(), "*.sqlite"))
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	for _, f := range files {
		db := strings.TrimSuffix(filepath.Base(f), ".sqlite")
		if err := s.IndexIDs(ctx, db); err != nil && !errors.Is(err, errNoCollections) {
			return err
		}
	}
	return nil
}

// IDIndexName is the name of the SQLite index IndexIDs creates on table.
func IDIndexName(table string) string { return table + "_gatehouse_id" }

// QueryPlan returns SQLite's plan for the statement FerretDB runs to find
// one document by _id in collection coll of database db. Tests use it to
// prove the index is used, so a FerretDB upgrade that changes the storage
// layout fails loudly instead of turning look-ups into scans.
func (s *Server) QueryPlan(ctx context.Context, db, coll string) (string, error) {
	sqlDB, err := s.open(db)
	if err != nil {
		return "", err
	}
	defer sqlDB.Close()

	var table string
	err = sqlDB.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, coll).Scan(&table)
	if err != nil {
		return "", fmt.Errorf("embedded: table of %s: %w", coll, err)
	}
	rows, err := sqlDB.QueryContext(ctx,
		fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE %s = ?`, table, idExpr), `"x"`)
	if err != nil {
		return "", fmt.Errorf("embedded: explain: %w", err)
	}
	defer rows.Close()
	var plan string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			return "", fmt.Errorf("embedded: explain: %w", err)
		}
		plan += detail + "\n"
	}
	return plan, rows.Err()
}

func (s *Server) open(db string) (*sql.DB, error) {
	file := filepath.Join(s.dir.Path(), db+".sqlite")
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("embedded: database %s: %w", db, err)
	}
	u := url.URL{Scheme: "file", Opaque: file, RawQuery: "_pragma=busy_timeout(10000)"}
	sqlDB, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", db, err)
	}
	return sqlDB, nil
}

func collectionTables(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		return nil, fmt.Errorf("embedded: list collections: %w", err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("embedded: list collections: %w", err)
		}
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("embedded: list collections: %w", err)
	}
	if len(tables) == 0 {
		return nil, errNoCollections
	}
	return tables, nil
}

// levelFilter passes records at or above min to the wrapped handler.
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (h levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFilter) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFilter{h.Handler.WithAttrs(as), h.min}
}

func (h levelFilter) WithGroup(name string) slog.Handler {
	return levelFilter{h.Handler.WithGroup(name), h.min}
}
