package main

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"gatehouse/storage"
)

// growth measures the session scenario on a database of growth-small
// sessions, then of growth-big, each beside its raw look-up, and times one
// pass of the sweeper at each size.
func (b *bench) growth(ctx context.Context, res *results, _ *population) error {
	cfg := b.cfg
	if err := b.useDatabase(ctx, growthDB); err != nil {
		return err
	}
	owners, err := seedUsers(ctx, b.store, "growth-user", 100, 4)
	if err != nil {
		return fmt.Errorf("seed growth users: %w", err)
	}
	coll := b.raw.Database(b.db).Collection(sessionsCollection)
	set, err := seedSessionsBulk(ctx, b.store, coll, owners, cfg.growthSmall, sessionTTL)
	if err != nil {
		return fmt.Errorf("seed growth sessions: %w", err)
	}
	if err := b.indexed(ctx); err != nil {
		return err
	}
	c := cfg.growthConc
	// A new database is new SQLite connections and statements in the
	// engine: warm them up unmeasured, so that the small size is not
	// measured cold and the big one warm.
	rawOp := rawLookup(coll, set.ids, uniform(len(set.ids)))
	sessionOp := b.gqlOp(sessionQuery, bearers(set.tokens), sessionWant, nil)
	warm := window{warmup: cfg.span / 2, max: cfg.maxRequests}
	for _, do := range []op{rawOp, sessionOp} {
		if r := drive(ctx, c, warm, do); r.errors > 0 {
			return fmt.Errorf("growth warm-up: %d errors (first: %s)", r.errors, r.firstErr)
		}
	}
	for i, n := range []int{cfg.growthSmall, cfg.growthBig} {
		if i == 1 {
			t0 := time.Now()
			more, err := seedSessionsBulk(ctx, b.store, coll, owners, n-cfg.growthSmall, sessionTTL)
			if err != nil {
				return fmt.Errorf("seed growth sessions: %w", err)
			}
			res.growthSeed = time.Since(t0)
			b.progress("seeded %d more sessions in %v", n-cfg.growthSmall, res.growthSeed.Round(time.Millisecond))
			set.tokens = append(set.tokens, more.tokens...)
			set.ids = append(set.ids, more.ids...)
		}
		label := fmt.Sprintf("%d sessions", n)
		raw, err := b.load(ctx, res, "growth: raw look-up, "+label, c, cfg.span,
			rawLookup(coll, set.ids, uniform(len(set.ids))))
		if err != nil {
			return err
		}
		sess, err := b.load(ctx, res, "growth: session, "+label, c, cfg.span,
			b.gqlOp(sessionQuery, bearers(set.tokens), sessionWant, nil))
		if err != nil {
			return err
		}
		sess.vs = ratio(sess, raw, "raw look-up")
		res.growthRaw[i], res.growthSession[i] = raw, sess
		if err := b.sweep(ctx, res, coll, n); err != nil {
			return err
		}
	}
	small, big := res.growthSession[0], res.growthSession[1]
	big.vs += fmt.Sprintf("; %.2f× at %d", ratioOf(big.res.rate(), small.res.rate()), cfg.growthSmall)
	rs, rb := res.growthRaw[0], res.growthRaw[1]
	rb.vs = fmt.Sprintf("%.2f× at %d", ratioOf(rb.res.rate(), rs.res.rate()), cfg.growthSmall)
	if big.use.db.writes > 0 {
		res.notes = append(res.notes, fmt.Sprintf("Seeding the growth database took %v: some of its sessions "+
			"were due for a touch during the big measurement (%d writes).", res.growthSeed.Round(time.Second), big.use.db.writes))
	}
	// The growth database has served its purpose; the memory phase should
	// not open it.
	if err := b.store.Drop(ctx); err != nil {
		return fmt.Errorf("drop %s: %w", growthDB, err)
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
	// Warm up unmeasured: a new process opens its connections first.
	if r := drive(ctx, c, window{warmup: b.cfg.span / 2, max: b.cfg.maxRequests}, op); r.errors > 0 {
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
