package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"gatehouse/internal/wirelock"
)

// Why the WAL grows without a bound under FerretDB v1, and what keeps it
// bounded here.
//
// FerretDB runs an update (and a findAndModify) as a query, whose rows it
// leaves open (it stops after the first document), then a write on another
// SQLite connection, and closes the query only after the write commits. The
// checkpoint SQLite runs at that commit can copy the WAL into the database
// only up to the snapshot of that still-open query, so it always stops just
// short of the last commit, and a WAL that is never wholly copied is never
// started again from its beginning: it grows by every write, for as long as
// writes keep coming. No setting of FerretDB's changes that order.
//
// So the engine's disk is kept here, on a connection of its own: when the
// WAL passes half its limit, a passive checkpoint copies what it can while
// requests run, then, with writes held back at the relay for that moment
// (reads pass), a TRUNCATE checkpoint copies the rest, which is a few
// pages, and empties the WAL. Databases use incremental auto-vacuum, and the
// pages that ended sessions and dropped collections leave are given back to
// the file system once they are a quarter of the file.

// DefaultWALLimit is the size a database's WAL is kept under unless
// LimitDisk says otherwise.
const DefaultWALLimit = 64 << 20

// DefaultMinFree is the free space on DATA_DIR's file system under which
// DiskFull reports the disk full, unless LimitDisk says otherwise.
const DefaultMinFree = 16 << 20

// Intervals of the disk's upkeep: the WAL sizes and free space are read
// often (a stat each), the free pages of each database more rarely.
const (
	walInterval    = 100 * time.Millisecond
	vacuumInterval = 5 * time.Second
	// checkpointWait bounds how long the TRUNCATE checkpoint waits for
	// reads that hold an older snapshot, writes held back meanwhile; past
	// it the checkpoint is tried again at the next interval.
	checkpointWait = 250 * time.Millisecond
)

// DiskStats is the engine's use of its disk, summed over the databases in
// the data directory.
type DiskStats struct {
	FileBytes int64 // the database files
	WALBytes  int64 // their write-ahead logs
	FreeBytes int64 // free space on the data directory's file system, for unprivileged users
	// LastCheckpoint and LastVacuum are when a WAL was last emptied and
	// when free pages were last given back (zero: not yet).
	LastCheckpoint, LastVacuum time.Time
}

// DiskFullError is DiskFull's answer: the free space is under the
// minimum, or the engine was refused a write for want of space.
type DiskFullError struct{ err error }

func (e *DiskFullError) Error() string { return "embedded: disk full: " + e.err.Error() }
func (e *DiskFullError) Unwrap() error { return e.err }

// disk keeps the engine's files bounded (see above) and watches the free
// space under them.
type disk struct {
	dir   string
	relay *wirelock.Relay
	log   *slog.Logger

	walLimit, minFree atomic.Int64

	mu    sync.Mutex
	stats DiskStats
	full  error // why the disk is full, or nil

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newDisk(dir string, relay *wirelock.Relay, log *slog.Logger) *disk {
	d := &disk{dir: dir, relay: relay, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	d.walLimit.Store(DefaultWALLimit)
	d.minFree.Store(DefaultMinFree)
	return d
}

// run keeps the disk until close.
func (d *disk) run() {
	defer close(d.done)
	t := time.NewTicker(walInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-d.stop; cancel() }()
	var lastVacuum time.Time
	for {
		vacuum := time.Since(lastVacuum) >= vacuumInterval
		if vacuum {
			lastVacuum = time.Now()
		}
		d.pass(ctx, vacuum)
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
	}
}

func (d *disk) close() {
	d.once.Do(func() { close(d.stop) })
	<-d.done
}

// pass checks every database once: it empties the WALs over half their
// limit and, when vacuum is set, gives back free pages; then it measures.
func (d *disk) pass(ctx context.Context, vacuum bool) {
	files, _ := filepath.Glob(filepath.Join(d.dir, "*.sqlite"))
	var fullErr error
	for _, f := range files {
		err := d.keep(ctx, f, vacuum)
		if isFull(err) {
			fullErr = &DiskFullError{err}
		} else if errors.Is(err, errBusy) {
			d.log.Debug("database upkeep", "file", f, "err", err)
		} else if err != nil && ctx.Err() == nil && fileExists(f) {
			d.log.Warn("database upkeep", "file", f, "err", err)
		}
	}
	var s DiskStats
	for _, f := range files {
		s.FileBytes += fileSize(f)
		s.WALBytes += fileSize(f + "-wal")
	}
	var st unix.Statfs_t
	if err := unix.Statfs(d.dir, &st); err == nil {
		s.FreeBytes = int64(st.Bavail) * int64(st.Bsize)
		if min := d.minFree.Load(); s.FreeBytes < min && fullErr == nil {
			fullErr = &DiskFullError{fmt.Errorf("%s has %d bytes free, under %d", d.dir, s.FreeBytes, min)}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s.LastCheckpoint, s.LastVacuum = d.stats.LastCheckpoint, d.stats.LastVacuum
	d.stats = s
	if (d.full == nil) != (fullErr == nil) {
		if fullErr != nil {
			d.log.Error("DATA_DIR's disk is full: not ready until space returns", "err", fullErr)
		} else {
			d.log.Info("DATA_DIR's disk has space again")
		}
	}
	d.full = fullErr
}

// keep bounds one database file's WAL and, with vacuum, its free pages.
func (d *disk) keep(ctx context.Context, file string, vacuum bool) error {
	limit := d.walLimit.Load()
	if !fileExists(file + "-wal") {
		// Not open in WAL mode (yet): a file FerretDB is creating, whose
		// journal mode a connection of ours must not pin.
		return nil
	}
	if !vacuum && fileSize(file+"-wal") <= limit/2 {
		return nil // the common case: one stat, no connection
	}
	db, err := openFile(file, checkpointWait)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if vacuum {
		if err := d.vacuum(ctx, conn, file); err != nil {
			return err
		}
	}
	if fileSize(file+"-wal") > limit/2 {
		return d.checkpoint(ctx, conn)
	}
	return nil
}

// errBusy is a TRUNCATE checkpoint that a read holding an older snapshot
// kept from finishing; the next pass tries again.
var errBusy = errors.New("embedded: checkpoint: a read holds an older snapshot")

// checkpoint empties the WAL of conn's database: what it can while
// requests run, the rest with writes held back.
func (d *disk) checkpoint(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		return fmt.Errorf("embedded: checkpoint: %w", err)
	}
	var busy, logged, copied int
	var err error
	var held time.Duration
	d.relay.Exclusive(func() {
		start := time.Now()
		err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &copied)
		held = time.Since(start)
	})
	d.log.Debug("WAL checkpoint", "writes held", held, "busy", busy != 0, "err", err)
	if err != nil {
		return fmt.Errorf("embedded: checkpoint: %w", err)
	}
	if busy != 0 {
		return errBusy
	}
	d.mu.Lock()
	d.stats.LastCheckpoint = time.Now()
	d.mu.Unlock()
	return nil
}

// vacuum gives the free pages of conn's database back to the file system
// once they are at least a quarter of the file (and 1 MiB), a bounded
// number of pages per write so that the WAL stays within its limit.
func (d *disk) vacuum(ctx context.Context, conn *sql.Conn, file string) error {
	var mode, pageSize, pages, free int64
	for _, p := range []struct {
		name string
		v    *int64
	}{{"auto_vacuum", &mode}, {"page_size", &pageSize}, {"page_count", &pages}, {"freelist_count", &free}} {
		if err := conn.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(p.v); err != nil {
			return fmt.Errorf("embedded: %s: %w", p.name, err)
		}
	}
	if mode != autoVacuumIncremental || free*pageSize < 1<<20 || free*4 < pages {
		return nil
	}
	limit := d.walLimit.Load()
	step := max(64, limit/4/pageSize)
	for ; free > 0; free -= step {
		if err := incrementalVacuumStep(ctx, conn, step); err != nil {
			return err
		}
		if fileSize(file+"-wal") > limit/2 {
			if err := d.checkpoint(ctx, conn); err != nil {
				return err
			}
		}
	}
	// The file shrinks when the checkpoint copies the vacuum's last commit.
	if err := d.checkpoint(ctx, conn); err != nil {
		return err
	}
	d.mu.Lock()
	d.stats.LastVacuum = time.Now()
	d.mu.Unlock()
	return nil
}

// incrementalVacuumStep gives back up to pages free pages, in one write.
// SQLite frees one page per step of the statement: it is stepped to its
// end as a query (an Exec would step it once).
func incrementalVacuumStep(ctx context.Context, conn *sql.Conn, pages int64) error {
	rows, err := conn.QueryContext(ctx, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, pages))
	if err == nil {
		for rows.Next() {
		}
		err = rows.Close()
	}
	if err != nil {
		return fmt.Errorf("embedded: incremental vacuum: %w", err)
	}
	return nil
}

// autoVacuumIncremental is PRAGMA auto_vacuum's value for INCREMENTAL.
const autoVacuumIncremental = 2

// incrementalVacuum converts the databases of dir made before gatehouse set
// incremental auto-vacuum (FerretDB's default is none), once: a VACUUM
// rewrites the file, so it runs at start, before any client.
func incrementalVacuum(dir string, log *slog.Logger) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	for _, f := range files {
		db, err := openFile(f, 10*time.Second)
		if err != nil {
			log.Warn("database not converted to incremental auto-vacuum", "file", f, "err", err)
			continue
		}
		var mode int
		err = db.QueryRow(`PRAGMA auto_vacuum`).Scan(&mode)
		if err == nil && mode != autoVacuumIncremental {
			start := time.Now()
			_, err = db.Exec(`PRAGMA auto_vacuum = INCREMENTAL; VACUUM`)
			if err == nil {
				log.Info("database converted to incremental auto-vacuum (once)", "file", f, "took", time.Since(start).Round(time.Millisecond))
			}
		}
		_ = db.Close()
		if err != nil { // the database works without: its free pages stay in the file
			log.Warn("database not converted to incremental auto-vacuum: its free pages will stay in the file", "file", f, "err", err)
		}
	}
}

// openFile opens an existing database file (never creating one: FerretDB
// may have just dropped it) with one connection that waits up to busy for
// locks.
func openFile(file string, busy time.Duration) (*sql.DB, error) {
	u := url.URL{Scheme: "file", Opaque: file, RawQuery: fmt.Sprintf("mode=rw&_pragma=busy_timeout(%d)", busy.Milliseconds())}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", file, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// isFull reports whether err is SQLite's "database or disk is full".
func isFull(err error) bool {
	var c interface{ Code() int }
	return errors.As(err, &c) && c.Code()&0xff == 13 // SQLITE_FULL
}

func fileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
