package main

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"gatehouse/storage"
)

// growth compares the session scenario on a database of growth-big
// sessions with one of growth-small, each beside its raw look-up. Each
// size has its own database and server, seeded first (big, then small),
// so that the four measurements run back to back and see the same noise.
// It then times one pass of the sweeper at each size.
func (b *bench) growth(ctx context.Context, res *results, _ *population) error {
	cfg := b.cfg
	sizes := [2]int{cfg.growthSmall, cfg.growthBig}
	var served [2]serving
	var sets [2]sessionSet
	defer func() { // stop the detached server; the current one stops later
		for _, s := range served {
			if s.server != nil && s.server != b.server {
				prev := b.attach(s)
				b.stopServer()
				b.attach(prev)
			}
		}
	}()
	for _, i := range []int{1, 0} {
		if err := b.useDatabase(ctx, fmt.Sprintf("%s_%d", growthDB, sizes[i])); err != nil {
			return err
		}
		served[i] = serving{b.server, b.gql, b.store, b.db}
		owners, err := seedUsers(ctx, b.store, "growth-user", 100, 4)
		if err != nil {
			return fmt.Errorf("seed growth users: %w", err)
		}
		t0 := time.Now()
		sets[i], err = seedSessionsBulk(ctx, b.store, owners, sizes[i], sessionTTL)
		if err != nil {
			return fmt.Errorf("seed growth sessions: %w", err)
		}
		if i == 1 {
			res.growthSeed = time.Since(t0)
			b.progress("seeded %d sessions in %v", sizes[i], res.growthSeed.Round(time.Millisecond))
		}
		if err := b.indexed(ctx); err != nil {
			return err
		}
		b.attach(serving{}) // detach: the next useDatabase must not stop it
	}

	c := cfg.growthConc
	raws, sessions := [2]op{}, [2]op{}
	for i := range sizes {
		b.attach(served[i])
		raws[i] = rawLookup(b.collection(), sets[i].ids, uniform(len(sets[i].ids)))
		sessions[i] = b.gqlOp(sessionQuery, bearers(sets[i].tokens), sessionWant, nil)
		// A new database is new SQLite connections and statements in the
		// engine: warm them up unmeasured.
		warm := window{warmup: cfg.span / 2, max: cfg.maxRequests}
		for _, do := range []op{raws[i], sessions[i]} {
			if r := drive(ctx, c, warm, do); r.errors > 0 {
				return fmt.Errorf("growth warm-up: %d errors (first: %s)", r.errors, r.firstErr)
			}
		}
	}
	for i, n := range sizes {
		b.attach(served[i])
		label := fmt.Sprintf("%d sessions", n)
		raw, err := b.load(ctx, res, "growth: raw look-up, "+label, c, cfg.span, raws[i])
		if err != nil {
			return err
		}
		sess, err := b.load(ctx, res, "growth: session, "+label, c, cfg.span, sessions[i])
		if err != nil {
			return err
		}
		sess.vs = ratio(sess, raw, "raw look-up")
		res.growthRaw[i], res.growthSession[i] = raw, sess
	}
	small, big := res.growthSession[0], res.growthSession[1]
	big.vs += fmt.Sprintf("; %.2f× at %d", ratioOf(big.res.rate(), small.res.rate()), cfg.growthSmall)
	rs, rb := res.growthRaw[0], res.growthRaw[1]
	rb.vs = fmt.Sprintf("%.2f× at %d", ratioOf(rb.res.rate(), rs.res.rate()), cfg.growthSmall)
	if big.use.db.writes > 0 {
		res.notes = append(res.notes, fmt.Sprintf("Seeding the big growth database took %v: some of its sessions "+
			"were due for a touch during its measurement (%d writes).", res.growthSeed.Round(time.Second), big.use.db.writes))
	}
	// Time the sweeper, then drop both databases: the memory phase should
	// not open them.
	for i, n := range sizes {
		b.attach(served[i])
		if err := b.sweep(ctx, res, b.collection(), n); err != nil {
			return err
		}
		if err := b.store.Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", b.db, err)
		}
	}
	return nil
}

// sweep times one pass of the server's sweeper (storage's
// DeleteExpiredSessions: a DeleteMany on expiresAt ≤ now) over n sessions,
// none of them expired, as every SWEEP_INTERVAL would.
func (b *bench) sweep(ctx context.Context, res *results, coll *mongo.Collection, n int) error {
	var took time.Duration
	var err error
	use, merr := b.measure(ctx, func() {
		t0 := time.Now()
		_, err = coll.DeleteMany(ctx, bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: time.Now()}}}})
		took = time.Since(t0)
	})
	if err == nil {
		err = merr
	}
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	res.sweeps = append(res.sweeps, sweepCost{sessions: n, took: took, cpuEngine: use.cpuEngine})
	b.progress("sweep over %d sessions: %v (engine CPU %.2fs)", n, took.Round(time.Millisecond), use.cpuEngine)
	return nil
}

// memory runs the heaviest session load repeatedly on gatehouse as one
// process, its engine inside, the way `go run .` deploys it: the memory
// target is about that process. Skipped with MONGODB_URI.
func (b *bench) memory(ctx context.Context, res *results, pop *population) error {
	if b.engine == nil {
		res.notes = append(res.notes, "Memory of the one-process deployment not measured: MONGODB_URI is set.")
		return nil
	}
	// Last chance to reach the main database: mark its sessions seen.
	st, err := storage.Open(ctx, b.uri, mainDB, storage.Options{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	pop.seen = time.Time{}
	err = freshen(ctx, st, pop, res.touchInterval)
	_ = st.Close(ctx)
	if err != nil {
		return err
	}
	if err := b.oneProcess(ctx, mainDB); err != nil {
		return err
	}
	c := maxOf(b.cfg.conc)
	op := b.gqlOp(sessionQuery, bearers(pop.all.tokens), sessionWant, nil)
	// Warm up unmeasured: a new process opens its connections and grows
	// its heap and the engine's page cache to their steady size first (with
	// a warm-up of one second, RSS went 58, 62, 63, 65, 65, 65, 65, 66 MiB
	// over eight 2-second runs: settling, then flat).
	if r := drive(ctx, c, window{warmup: 2 * b.cfg.span, max: b.cfg.maxRequests}, op); r.errors > 0 {
		return fmt.Errorf("memory warm-up: %d errors (first: %s)", r.errors, r.firstErr)
	}
	for i := 1; i <= b.cfg.memoryRuns; i++ {
		r, err := b.load(ctx, res, fmt.Sprintf("one process: session, run %d", i), c, b.cfg.span, op)
		if err != nil {
			return err
		}
		res.oneProcess = append(res.oneProcess, r)
	}
	return nil
}
