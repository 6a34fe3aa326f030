package main

import (
	"context"
	"fmt"
	"time"

	"gatehouse/auth"
	"gatehouse/storage"
)

// growthPerUser is how many sessions each user of a growth database
// holds: the server's default cap (MAX_SESSIONS_PER_USER), so that a
// bigger database is more users, as it would be in production.
const growthPerUser = 100

// fewSessions is how many sessions the growth phase's own users hold: a
// user with a few sessions among many of other users.
const fewSessions = 3

// growthSeenAhead is how far ahead of seeding the growth databases'
// sessions are last seen. Seeding 10⁵ sessions takes most of a minute, and
// a session last seen over a minute before its request is touched (a
// write): the session scenarios would measure the touches of the sessions
// seeded first, at one size only. The writes check measures touches.
const growthSeenAhead = 5 * time.Minute

// deleteConc is the concurrency of deleteOtherSessions: one client, so
// that a measured call runs alone, not beside another client's
// preparation (its sessions to end) or call, whose writes it would wait
// for in the engine's one writer.
const deleteConc = 1

// sweepRounds is how many times the sweep is timed at each size, the
// sizes' order alternating: one pass is a single call, which the machine's
// noise moves more than a load of two seconds.
const sweepRounds = 5

// growthData is one database of the growth phase and what it holds.
type growthData struct {
	served   serving
	others   sessionSet      // the sessions of other users, growthPerUser each
	lister   sessionSet      // one user's fewSessions sessions
	keepers  []*storage.User // a user per client of deleteOtherSessions
	kept     []string        // each keeper's bearer header: the session it keeps
	expirers []*storage.User // the owners of the sweeps' expired sessions
}

// growth compares, on a database of growth-big sessions and one of
// growth-small, what should not cost more with other users' data: the
// session scenario (beside its raw look-up), the sessions of a user with a
// few, and deleteOtherSessions of such a user. Each size has its own
// database and server, seeded first (big, then small), so that the
// measurements run back to back and see the same noise. It then times the
// sweeper deleting the same number of expired sessions at each size.
func (b *bench) growth(ctx context.Context, res *results, _ *population) error {
	cfg := b.cfg
	sizes := [2]int{cfg.growthSmall, cfg.growthBig}
	var dbs [2]growthData
	defer func() { // close the detached stores and servers; the current ones close later
		for _, d := range dbs {
			if d.served.store != nil && d.served.store != b.store {
				prev := b.attach(d.served)
				b.stopServer()
				b.attach(prev)
			}
		}
	}()
	for _, i := range []int{1, 0} {
		if err := b.useDatabase(ctx, fmt.Sprintf("%s_%d", growthDB, sizes[i])); err != nil {
			return err
		}
		dbs[i].served = serving{b.server, b.gql, b.store, b.db}
		t0 := time.Now()
		if err := b.seedGrowth(ctx, &dbs[i], sizes[i]); err != nil {
			return err
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
	type growthOps struct{ raw, session, list, reseed, deleteOthers op }
	var ops [2]growthOps
	for i := range sizes {
		d := &dbs[i]
		b.attach(d.served)
		ops[i] = growthOps{
			raw:          rawLookup(b.collection(), d.others.ids, uniform(len(d.others.ids))),
			session:      b.gqlOp(sessionQuery, bearers(d.others.tokens), sessionWant, nil),
			list:         b.gqlOp(sessionsQuery, bearers(d.lister.tokens), sessionsWant, countIDs(fewSessions)),
			reseed:       reseed(b.store, d.keepers),
			deleteOthers: b.deleteOthersOp(d.kept),
		}
		// A new database is new SQLite connections and statements in the
		// engine: warm them up unmeasured.
		warm := window{warmup: cfg.span / 2, max: cfg.maxRequests}
		o := ops[i]
		for _, x := range []struct {
			c        int
			prep, do op
		}{{c, nil, o.raw}, {c, nil, o.session}, {c, nil, o.list}, {deleteConc, o.reseed, o.deleteOthers}} {
			if r := drivePrepared(ctx, x.c, warm, x.prep, x.do); r.errors > 0 {
				return fmt.Errorf("growth warm-up: %d errors (first: %s)", r.errors, r.firstErr)
			}
		}
	}
	for i, n := range sizes {
		b.attach(dbs[i].served)
		label := fmt.Sprintf("%d sessions", n)
		raw, err := b.load(ctx, res, "growth: raw look-up, "+label, c, cfg.span, ops[i].raw)
		if err != nil {
			return err
		}
		sess, err := b.load(ctx, res, "growth: session, "+label, c, cfg.span, ops[i].session)
		if err != nil {
			return err
		}
		sess.vs = ratio(sess, raw, "raw look-up")
		list, err := b.load(ctx, res, fmt.Sprintf("growth: sessions (%d listed), %s", fewSessions, label), c, cfg.span, ops[i].list)
		if err != nil {
			return err
		}
		// Each call needs sessions to end: its client's user gets
		// fewSessions new ones before it, outside its time. A closed loop
		// of login and deleteOtherSessions would measure bcrypt instead
		// (a hash takes longer than the call).
		del, err := b.loadPrepared(ctx, res, fmt.Sprintf("growth: deleteOtherSessions (%d), %s", fewSessions, label),
			deleteConc, cfg.warmup, cfg.span, ops[i].reseed, ops[i].deleteOthers)
		if err != nil {
			return err
		}
		// Every call has ended its sessions: each user's list should hold
		// its kept session alone.
		ids, err := idsListed(ctx, b.store, dbs[i].keepers)
		if err != nil {
			return err
		}
		res.growthLeft[i] = ids - len(dbs[i].keepers)
		del.vs = fmt.Sprintf("%d sessions seeded before each call, untimed; %d ended ones left in the users' lists",
			fewSessions, res.growthLeft[i])
		res.growthRaw[i], res.growthSession[i], res.growthList[i], res.growthDelete[i] = raw, sess, list, del
	}
	for _, x := range [][2]*row{res.growthRaw, res.growthSession, res.growthList, res.growthDelete} {
		vs := fmt.Sprintf("%.2f× at %d", ratioOf(x[1].res.rate(), x[0].res.rate()), cfg.growthSmall)
		if x[1].vs != "" {
			vs = x[1].vs + "; " + vs
		}
		x[1].vs = vs
	}
	if big := res.growthSession[1]; big.use.db.writes > 0 {
		res.notes = append(res.notes, fmt.Sprintf("Seeding the big growth database took %v: some of its sessions "+
			"were due for a touch during its measurement (%d writes).", res.growthSeed.Round(time.Second), big.use.db.writes))
	}

	// The sweeps are the bench's own calls: stop the servers, whose
	// sweepers (every minute) could take the expired sessions first, and
	// whose idle CPU would be noise.
	for i := range dbs {
		dbs[i].served.server.stop()
		dbs[i].served.server = nil
	}
	for r := range sweepRounds {
		for _, i := range [][]int{{0, 1}, {1, 0}}[r%2] {
			b.attach(dbs[i].served)
			if err := b.sweep(ctx, res, dbs[i].expirers, sizes[i]); err != nil {
				return err
			}
		}
	}
	// Drop both databases: the one-process phase should not open them.
	for i := range dbs {
		b.attach(dbs[i].served)
		if err := b.store.Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", b.db, err)
		}
	}
	return nil
}

// seedGrowth fills a growth database: n sessions of users with
// growthPerUser each, then the phase's own users: one with fewSessions
// sessions, one per deleteOtherSessions client with the session it keeps,
// and the owners of the sweeps' expired sessions (who hold nothing else,
// so that a sweep deletes the same at each size). Each user's sessions go
// in with one CreateSessions call.
func (b *bench) seedGrowth(ctx context.Context, d *growthData, n int) error {
	cfg := b.cfg
	seen := time.Now().Add(growthSeenAhead)
	owners, err := seedUsers(ctx, b.store, "growth-user", (n+growthPerUser-1)/growthPerUser, 4)
	if err != nil {
		return fmt.Errorf("seed growth users: %w", err)
	}
	if d.others, err = seedSessionsBulk(ctx, b.store, owners, n, seen, sessionTTL); err != nil {
		return fmt.Errorf("seed growth sessions: %w", err)
	}
	own, err := seedUsers(ctx, b.store, "growth-own", 1+deleteConc, 4)
	if err != nil {
		return fmt.Errorf("seed growth users: %w", err)
	}
	if d.lister, err = seedSessionsBulk(ctx, b.store, own[:1], fewSessions, seen, sessionTTL); err != nil {
		return fmt.Errorf("seed growth sessions: %w", err)
	}
	d.keepers = own[1:]
	kept, err := seedSessionsBulk(ctx, b.store, d.keepers, len(d.keepers), seen, sessionTTL) // one each
	if err != nil {
		return fmt.Errorf("seed growth sessions: %w", err)
	}
	d.kept = bearers(kept.tokens)
	d.expirers, err = seedUsers(ctx, b.store, "growth-expired", (cfg.growthExpired+growthPerUser-1)/growthPerUser, 4)
	if err != nil {
		return fmt.Errorf("seed growth users: %w", err)
	}
	return nil
}

// reseed gives client w's user fewSessions new sessions, one at a time as
// logins would make them, for its next deleteOtherSessions to end.
func reseed(st *storage.Store, keepers []*storage.User) op {
	return func(ctx context.Context, w, _ int) error {
		now := time.Now().UTC().Truncate(time.Millisecond)
		for range fewSessions {
			if _, err := st.CreateSession(ctx, newSession(keepers[w], auth.NewToken(), now, now.Add(sessionTTL))); err != nil {
				return err
			}
		}
		return nil
	}
}

// deleteOthersOp sends deleteOtherSessions with client w's kept session,
// and wants it to end exactly the fewSessions that reseed gave.
func (b *bench) deleteOthersOp(kept []string) op {
	gql, want := b.gql, deletedWant(fewSessions)
	return func(ctx context.Context, w, _ int) error {
		return gql.post(ctx, deleteOthers, kept[w], want, nil)
	}
}

// sweep seeds growth-expired sessions that expired an hour ago (their
// expiry file's span has ended) and times one pass of storage's
// DeleteExpiredSessions, the server's sweeper, over them and the live
// sessions of the current database; then a second pass, with nothing due.
// The expired sessions are owned round-robin by owners: a sweep deletes
// them in that order, a few at a time, so the deletions in flight are of
// different users' sessions, as with the expired sessions of many users.
// live is how many sessions of other users the database holds.
func (b *bench) sweep(ctx context.Context, res *results, owners []*storage.User, live int) error {
	seen := time.Now().UTC().Truncate(time.Millisecond).Add(-2 * sessionTTL)
	expired := make([]*storage.Session, b.cfg.growthExpired)
	for k := range expired {
		expired[k] = newSession(owners[k%len(owners)], auth.NewToken(), seen, seen.Add(sessionTTL))
	}
	if err := b.store.CreateSessions(ctx, expired); err != nil {
		return fmt.Errorf("seed expired sessions: %w", err)
	}
	if err := b.indexed(ctx); err != nil { // their expiry file is a new collection
		return err
	}
	for _, due := range []int{len(expired), 0} {
		before, err := b.store.CountSessions(ctx)
		if err != nil {
			return err
		}
		var deleted int64
		var took time.Duration
		use, merr := b.measure(ctx, func() {
			t0 := time.Now()
			deleted, err = b.store.DeleteExpiredSessions(ctx, time.Now(), nil)
			took = time.Since(t0)
		})
		if err == nil {
			err = merr
		}
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		after, err := b.store.CountSessions(ctx)
		if err != nil {
			return err
		}
		left, err := idsListed(ctx, b.store, owners)
		if err != nil {
			return err
		}
		res.sweeps = append(res.sweeps, sweepCost{live: live, due: due, deleted: deleted, gone: before - after, left: left,
			took: took, cpuEngine: use.cpuEngine, db: use.db})
		b.progress("sweep of %d due beside %d sessions: deleted %d (%d gone, %d left listed) in %v (engine CPU %.2fs, DB reads %d, writes %d)",
			due, live, deleted, before-after, left, took.Round(time.Millisecond), use.cpuEngine, use.db.reads, use.db.writes)
	}
	return nil
}

// idsListed returns how many session ids the lists of users hold in all.
func idsListed(ctx context.Context, st *storage.Store, users []*storage.User) (int, error) {
	n := 0
	for _, u := range users {
		ids, err := st.SessionIDsOfUser(ctx, u.ID)
		if err != nil {
			return 0, err
		}
		n += len(ids)
	}
	return n, nil
}
