package main

import (
	"context"
	"fmt"
	"time"

	"gatehouse/storage"
)

// memoryDB holds the sessions of the one-process phase's memory runs.
var memoryDB = mainDB + "_memory"

// oneProcessPhase measures gatehouse the way `go run .` runs it: one
// process with its engine inside, whose session cache is on (it is the
// data's only writer). At each concurrency, side by side: the ceiling,
// {__typename}, a request that reads no session, then session and me on
// the main database's sessions. Then the memory runs: session over every
// one of growth-big sessions, picked uniformly, so that the cache churns
// at its budget, repeated to see RSS growth. Skipped with MONGODB_URI.
func (b *bench) oneProcessPhase(ctx context.Context, res *results, pop *population) error {
	if b.engine == nil {
		res.notes = append(res.notes, "The one-process deployment was not measured: MONGODB_URI is set.")
		return nil
	}
	// Last chance to reach the databases, through the standalone engine:
	// mark the main database's sessions seen, and seed the memory runs'.
	big, err := b.seedMemory(ctx, pop, res.touchInterval)
	if err != nil {
		return err
	}

	if err := b.oneProcess(ctx, mainDB); err != nil {
		return err
	}
	ceilingOp := b.gqlOp(typenameQuery, nil, typenameWant, nil)
	sessionOp := b.gqlOp(sessionQuery, bearers(pop.all.tokens), sessionWant, nil)
	meOp := b.gqlOp(meQuery, bearers(pop.all.tokens), meWant, nil)
	for _, c := range b.cfg.conc {
		if res.ceiling[c], err = b.loadCached(ctx, res, "one process: {__typename}", c, ceilingOp); err != nil {
			return err
		}
		if res.cachedSession[c], err = b.loadCached(ctx, res, "one process: session", c, sessionOp); err != nil {
			return err
		}
		if res.cachedMe[c], err = b.loadCached(ctx, res, "one process: me", c, meOp); err != nil {
			return err
		}
		for _, r := range []*row{res.cachedSession[c], res.cachedMe[c]} {
			r.vs = fmt.Sprintf("%s; %s", ratio(r, res.ceiling[c], "{__typename}"), r.vs)
		}
	}

	if err := b.oneProcess(ctx, memoryDB); err != nil {
		return err
	}
	c := maxOf(b.cfg.conc)
	op := b.gqlOp(sessionQuery, bearers(big.tokens), sessionWant, nil)
	// Warm up unmeasured: a new process opens its connections, fills its
	// cache and grows its heap and the engine's page cache to their steady
	// size first (with a warm-up of one second, RSS went 58, 62, 63, 65,
	// 65, 65, 65, 66 MiB over eight 2-second runs: settling, then flat).
	if err := b.fillCache(ctx, c, op); err != nil {
		return err
	}
	res.memorySessions = len(big.tokens)
	for i := 1; i <= b.cfg.memoryRuns; i++ {
		r, err := b.loadCached(ctx, res, fmt.Sprintf("one process, %d sessions: session, run %d", len(big.tokens), i), c, op)
		if err != nil {
			return err
		}
		res.oneProcess = append(res.oneProcess, r)
	}
	// Where the memory is: the Go runtime's (heap, of it the live heap
	// after the last collection, and what the runtime holds from the OS)
	// and the cache's estimate; RSS beyond the runtime's is the engine's
	// SQLite, which allocates outside the Go heap.
	v, err := b.gql.metrics(ctx, "go_memstats_heap_inuse_bytes", "go_memstats_sys_bytes", "gatehouse_session_cache_bytes", "go_memstats_next_gc_bytes")
	if err != nil {
		return err
	}
	res.notes = append(res.notes, fmt.Sprintf("After the memory runs the one process's Go runtime held %.0f MiB from the OS, "+
		"its heap %.0f MiB in use (next collection at %.0f MiB), the session cache %.1f MiB by its estimate; "+
		"the rest of its RSS is the embedded engine's SQLite, outside the Go heap.", mib(uint64(v[1])), mib(uint64(v[0])), mib(uint64(v[3])), v[2]/(1<<20)))
	return nil
}

// seedMemory marks the main database's sessions seen and seeds growth-big
// sessions, of growthPerUser users each, into memoryDB, through a store of
// the bench's own on the standalone engine.
func (b *bench) seedMemory(ctx context.Context, pop *population, touchInterval time.Duration) (sessionSet, error) {
	var big sessionSet
	// The main database last: its sessions are due for a touch (a write)
	// a minute after they are marked seen, and the scenarios must end
	// before.
	for _, db := range []string{memoryDB, mainDB} {
		st, err := storage.Open(ctx, b.uri, db, storage.Options{Timeout: 30 * time.Second})
		if err != nil {
			return big, err
		}
		if db == mainDB {
			pop.seen = time.Time{}
			err = freshen(ctx, st, pop, touchInterval)
		} else {
			big, err = b.seedSessionsOf(ctx, st, "memory-user", b.cfg.growthBig)
			if err == nil {
				err = waitIDIndexes(ctx, b.data, db)
			}
		}
		_ = st.Close(ctx)
		if err != nil {
			return big, err
		}
	}
	return big, nil
}

// seedSessionsOf seeds n sessions, growthPerUser per user, last seen
// growthSeenAhead from now.
func (b *bench) seedSessionsOf(ctx context.Context, st *storage.Store, prefix string, n int) (sessionSet, error) {
	t0 := time.Now()
	owners, err := seedUsers(ctx, st, prefix, (n+growthPerUser-1)/growthPerUser, 4)
	if err != nil {
		return sessionSet{}, fmt.Errorf("seed %s: %w", prefix, err)
	}
	set, err := seedSessionsBulk(ctx, st, owners, n, time.Now().Add(growthSeenAhead), sessionTTL)
	if err != nil {
		return set, fmt.Errorf("seed %s sessions: %w", prefix, err)
	}
	b.progress("seeded %d sessions of %d users in %v", n, len(owners), time.Since(t0).Round(time.Millisecond))
	return set, nil
}

// loadCached is load, with the share of session reads the server's cache
// answered meanwhile in the row's vs (read from its metrics).
func (b *bench) loadCached(ctx context.Context, res *results, name string, conc int, do op) (*row, error) {
	names := []string{"gatehouse_session_cache_hits_total", "gatehouse_session_cache_misses_total"}
	before, err := b.gql.metrics(ctx, names...)
	if err != nil {
		return nil, err
	}
	r, err := b.load(ctx, res, name, conc, b.cfg.span, do)
	if err != nil {
		return nil, err
	}
	after, err := b.gql.metrics(ctx, names...)
	if err != nil {
		return nil, err
	}
	hits, misses := after[0]-before[0], after[1]-before[1]
	r.hitRate = ratioOf(hits, hits+misses)
	r.vs = fmt.Sprintf("cache hits %.1f%% of %.0f session reads", 100*r.hitRate, hits+misses)
	if hits+misses == 0 {
		r.vs = "no session read"
	}
	return r, nil
}

// fillCache runs do at c, unmeasured, until the server's session cache
// has stopped growing (by less than 1% in a span), so that the memory runs
// measure a cache at its budget; at least 2 spans, at most 60.
func (b *bench) fillCache(ctx context.Context, c int, do op) error {
	var prev float64
	for i := range 60 {
		if r := drive(ctx, c, window{warmup: b.cfg.span, max: b.cfg.maxRequests}, do); r.errors > 0 {
			return fmt.Errorf("memory warm-up: %d errors (first: %s)", r.errors, r.firstErr)
		}
		v, err := b.gql.metrics(ctx, "gatehouse_session_cache_bytes")
		if err != nil {
			return err
		}
		if i > 0 && v[0] <= prev*1.01 {
			b.progress("session cache full after %d warm-up spans: %.1f MiB", i+1, v[0]/(1<<20))
			return nil
		}
		prev = v[0]
	}
	return nil
}
