package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", to check the engine's indexes

	"gatehouse/auth"
	"gatehouse/internal/embedded"
	"gatehouse/storage"
)

// The database is filled directly through storage, as the server would fill
// it, without spending a bcrypt hash or an HTTP request per row.

// benchPassword is every seeded user's password.
const benchPassword = "bench password 0123456789"

// listed is how many sessions the user of the "sessions" scenario has.
const listed = 10

// seedUsers creates n users named bench-user-<i>, all with one password
// hash at cost (the hash is computed once: every login still pays a full
// bcrypt comparison at that cost).
func seedUsers(ctx context.Context, st *storage.Store, prefix string, n, cost int) ([]*storage.User, error) {
	hash, err := auth.HashPassword(benchPassword, cost)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	users := make([]*storage.User, n)
	for i := range users {
		name, key, err := auth.NormalizeUsername(fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			return nil, err
		}
		users[i] = &storage.User{Key: key, ID: auth.NewID(), Name: name, PasswordHash: hash, CreatedAt: now}
	}
	return users, parallel(ctx, n, func(ctx context.Context, i int) error {
		return st.CreateUser(ctx, users[i])
	})
}

// sessionSet is the credentials of seeded sessions.
type sessionSet struct {
	tokens []string // bearer tokens
	ids    []string // the sessions' ids (their _id)
	owners []string // the ids of their users
}

// seedSessions creates n sessions owned round-robin by owners, last seen
// now, expiring after ttl, with real tokens.
func seedSessions(ctx context.Context, st *storage.Store, owners []*storage.User, n int, ttl time.Duration) (sessionSet, error) {
	set := sessionSet{tokens: make([]string, n), ids: make([]string, n), owners: make([]string, n)}
	now := time.Now().UTC().Truncate(time.Millisecond)
	err := parallel(ctx, n, func(ctx context.Context, i int) error {
		u := owners[i%len(owners)]
		tok := auth.NewToken()
		set.tokens[i], set.ids[i], set.owners[i] = tok.String(), tok.SessionID, u.ID
		_, err := st.CreateSession(ctx, newSession(u, tok, now, now.Add(ttl)))
		return err
	})
	return set, err
}

// newSession is a session as a login from the bench would make it.
func newSession(u *storage.User, tok auth.Token, seen, expires time.Time) *storage.Session {
	return auth.NewSession(u, tok, `{"theme":"dark"}`, auth.Client{UserAgent: "gatehouse-bench", IP: "127.0.0.1"}, seen, expires)
}

const bulkBatch = 1000

// seedSessionsBulk is seedSessions, last seen at seen, through storage's
// bulk insert (one CreateSession costs the engine a SQLite transaction,
// about 2 ms, so 100,000 would take minutes), two batches in flight (the
// engine converts documents on one core per request; SQLite writes one
// transaction at a time). The sessions go to owners in blocks, not
// round-robin, and a batch holds the blocks of whole owners: so a batch
// writes few users' lists of sessions, and no two batches in flight write
// the same list (the relay would make one wait).
func seedSessionsBulk(ctx context.Context, st *storage.Store, owners []*storage.User, n int, seen time.Time, ttl time.Duration) (sessionSet, error) {
	set := sessionSet{tokens: make([]string, n), ids: make([]string, n), owners: make([]string, n)}
	seen = seen.UTC().Truncate(time.Millisecond)
	per := (n + len(owners) - 1) / len(owners) // sessions per owner
	sessions := make([]*storage.Session, n)
	for i := range sessions {
		tok := auth.NewToken()
		u := owners[i/per]
		set.tokens[i], set.ids[i], set.owners[i] = tok.String(), tok.SessionID, u.ID
		sessions[i] = newSession(u, tok, seen, seen.Add(ttl))
	}
	size := max(1, bulkBatch/per) * per
	batches := (n + size - 1) / size
	err := parallelN(ctx, 2, batches, func(ctx context.Context, b int) error {
		return st.CreateSessions(ctx, sessions[b*size:min((b+1)*size, n)])
	})
	return set, err
}

// seedWorkers is how many inserts are in flight while seeding: enough to
// keep the engine busy, few enough not to queue on its single writer.
const seedWorkers = 8

// parallel calls fn for 0 ≤ i < n on seedWorkers goroutines and returns the
// first error, after which it stops handing out work.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	return parallelN(ctx, seedWorkers, n, fn)
}

// parallelN is parallel on the given number of goroutines.
func parallelN(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return nil
}

// waitIDIndexes waits until the engine has indexed _id on every collection
// of database db. A standalone engine (gatehouse db) adds the index within a
// second of a collection's creation; until then every look-up by _id scans
// the table, which would make every number below meaningless.
func waitIDIndexes(ctx context.Context, dataDir, db string) error {
	file := filepath.Join(dataDir, db+".sqlite")
	u := url.URL{Scheme: "file", Opaque: file, RawQuery: "_pragma=busy_timeout(10000)"}
	sqlDB, err := sql.Open("sqlite", u.String())
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer sqlDB.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing, err := unindexed(ctx, sqlDB)
		if err == nil && len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("database %s: no _id index on %v after 30s (err: %v)", db, missing, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// unindexed returns the collection tables that lack the _id index.
func unindexed(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		return nil, err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		return []string{"(no collections yet)"}, nil
	}
	var missing []string
	for _, t := range tables {
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`,
			embedded.IDIndexName(t)).Scan(&n)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			missing = append(missing, t)
		}
	}
	return missing, nil
}
