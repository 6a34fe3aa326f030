// Package dbtest gives tests a real database: one embedded FerretDB per test
// binary, and a fresh database per test, dropped when the test ends.
//
// With MONGODB_URI set, tests run against that server instead, so the same
// suite proves gatehouse on real MongoDB.
package dbtest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/embedded"
	"gatehouse/storage"
)

var (
	once    sync.Once
	server  *embedded.Server
	uri     string
	initErr error
)

// Main runs a package's tests with the shared database server and stops it
// afterwards. Call it from TestMain: os.Exit(dbtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if server != nil {
		server.Close()
	}
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	return code
}

var dir string

// URI returns the address of the shared server, starting it on first use,
// and the embedded server (nil when MONGODB_URI is used).
func URI(t testing.TB) (string, *embedded.Server) {
	t.Helper()
	once.Do(func() {
		if uri = os.Getenv("MONGODB_URI"); uri != "" {
			return
		}
		dir, initErr = os.MkdirTemp("", "gatehouse-test-")
		if initErr != nil {
			return
		}
		server, initErr = embedded.Start(dir, nil)
		if initErr == nil {
			uri = server.URI()
		}
	})
	if initErr != nil {
		t.Fatalf("dbtest: start database: %v", initErr)
	}
	return uri, server
}

// Options returns opts with the embedded server's in-process dialer set,
// so that clients get its atomic writes (see package wirelock), as the
// server's own do.
func Options(t testing.TB, opts storage.Options) storage.Options {
	t.Helper()
	if _, srv := URI(t); srv != nil {
		opts.Dialer = srv.Dialer()
	}
	return opts
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// Name returns a database name unique to the test.
func Name(t testing.TB) string {
	n := unsafe.ReplaceAllString(t.Name(), "_")
	if len(n) > 40 {
		n = n[len(n)-40:]
	}
	return fmt.Sprintf("t%d_%s", time.Now().UnixNano()%1e9, n)
}

// SessionCache is the session cache of the stores Open returns: the
// server's default.
const SessionCache = 8 << 20

// Open returns a store on a fresh database, prepared the way the server
// prepares it (with the embedded engine's _id indexes), and dropped with its
// connections closed when the test ends. As the only store on its
// database, it caches sessions as the embedded server does (SessionCache).
func Open(t testing.TB) *storage.Store {
	t.Helper()
	return open(t, Name(t), storage.Options{SessionCache: SessionCache})
}

// OpenNamed is Open with the database name chosen by the caller, and no
// session cache, since other stores may share the database; it does not
// drop the database first.
func OpenNamed(t testing.TB, name string) *storage.Store {
	t.Helper()
	return open(t, name, storage.Options{})
}

func open(t testing.TB, name string, opts storage.Options) *storage.Store {
	t.Helper()
	uri, srv := URI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := storage.Open(ctx, uri, name, Options(t, opts))
	// On a busy machine the shared server can take longer than one
	// operation's timeout (5 s) to answer a new client: Open is tried
	// again until the 30 seconds are up.
	for err != nil && ctx.Err() == nil {
		t.Logf("dbtest: open %s: %v; trying again", name, err)
		time.Sleep(100 * time.Millisecond)
		st, err = storage.Open(ctx, uri, name, Options(t, opts))
	}
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", name, err)
	}
	if srv != nil {
		if err := srv.IndexIDs(ctx, name); err != nil {
			t.Fatalf("dbtest: index %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.Drop(ctx); err != nil {
			t.Errorf("dbtest: drop %s: %v", name, err)
		}
		_ = st.Close(ctx)
	})
	return st
}
